import LifelineWire
import OTel
import Tracing

/// The spans of one inference request, kept on its `RequestRecord`:
///
///     HTTP server span (Hummingbird's TracingMiddleware, which reads the client's `traceparent`)
///     └─ "chat <model>"                   one per request, GenAI attributes, failover/resumption events
///        ├─ "admission"                   the wait for a place under the gateway's concurrency limit
///        └─ "upstream <deployment>"       one per attempt, until its answer or stream ended
///           └─ "POST"                     AsyncHTTPClient's span for the HTTP request, whose `traceparent` goes upstream
///
/// Every function here does nothing when the record has no span: with tracing off none is started.
extension RequestRecord {
    /// Starts the request's span as a child of the task's current context (the HTTP span).
    mutating func startSpan(model: String, api: String, stream: Bool) {
        let span = Tracing.startSpan("chat \(model)", context: InstrumentationContext.current ?? .topLevel, ofKind: .internal)
        span.updateAttributes { attributes in
            attributes["gen_ai.operation.name"] = "chat"
            attributes["gen_ai.request.model"] = model
            attributes["lifeline.client_api"] = api
            attributes["lifeline.stream"] = stream
            if !requestID.isEmpty { attributes["lifeline.request_id"] = requestID }
        }
        self.span = span
        traceID = span.context.otelTraceID
    }

    /// Starts one attempt's span at `deployment`, a child of the request's span.
    func startAttemptSpan(_ deployment: Deployment, phase: String, retry: Bool) -> (any Span)? {
        guard let span else { return nil }
        let attempt = Tracing.startSpan("upstream \(deployment.name)", context: span.context, ofKind: .client)
        attempt.updateAttributes { attributes in
            attributes["gen_ai.operation.name"] = "chat"
            attributes["gen_ai.system"] = deployment.config.protocol.genAISystem
            attributes["gen_ai.request.model"] = deployment.config.model
            attributes["lifeline.deployment"] = deployment.name
            attributes["lifeline.protocol"] = deployment.config.protocol.rawValue
            attributes["lifeline.phase"] = phase
            attributes["lifeline.retry"] = retry
        }
        return attempt
    }

    /// An event on the request's span.
    func event(_ name: String, _ attributes: SpanAttributes) {
        span?.addEvent(SpanEvent(name: name, attributes: attributes))
    }

    /// Ends the attempt span left open by a stream or an answer not yet sent, with its outcome.
    mutating func closeAttemptSpan(failure: UpstreamFailure?, outcome: String? = nil, usage: Usage? = nil, responseModel: String? = nil) {
        guard let attempt = attemptSpan else { return }
        attemptSpan = nil
        if let usage { attempt.recordUsage(usage) }
        if let responseModel { attempt.attributes["gen_ai.response.model"] = responseModel }
        attempt.endAttempt(failure: failure, outcome: outcome)
    }

    /// Ends the request's span (and an attempt still open) with what the client got.
    func endSpans() {
        if let attempt = attemptSpan {
            attempt.endAttempt(failure: nil, outcome: status < 400 ? "success" : status == 499 ? "client_closed" : "failed")
        }
        guard let span else { return }
        span.updateAttributes { attributes in
            attributes["http.response.status_code"] = status
            attributes["lifeline.attempts"] = attempts
            attributes["lifeline.resumptions"] = resumptions
            if let deployment { attributes["lifeline.deployment"] = deployment }
            if let failoverPhase { attributes["lifeline.failover_phase"] = failoverPhase }
            if let system = answeredSystem { attributes["gen_ai.system"] = system }
            if let model = responseModel { attributes["gen_ai.response.model"] = model }
            if let cacheResult { attributes["lifeline.cache"] = cacheResult.rawValue }
        }
        if let usage { span.recordUsage(usage) }
        if status >= 500 { span.setStatus(SpanStatus(code: .error, message: "HTTP \(status)")) }
        span.end()
    }
}

extension Span {
    func recordUsage(_ usage: Usage) {
        updateAttributes { attributes in
            attributes["gen_ai.usage.input_tokens"] = usage.promptTokens
            attributes["gen_ai.usage.output_tokens"] = usage.completionTokens
        }
    }

    /// Ends an attempt: `outcome` is success, or the failure's kind; with the upstream's HTTP status when it answered one.
    func endAttempt(failure: UpstreamFailure?, outcome: String? = nil) {
        updateAttributes { attributes in
            if let failure {
                attributes["lifeline.outcome"] = outcome ?? failure.kind.outcome
                attributes["error.type"] = failure.kind.outcome
                if case .status(let status) = failure.kind { attributes["http.response.status_code"] = status }
            } else {
                let outcome = outcome ?? "success"
                attributes["lifeline.outcome"] = outcome
                if outcome == "success" { attributes["http.response.status_code"] = 200 }
            }
        }
        if let failure, !failure.isCancellation { setStatus(SpanStatus(code: .error, message: failure.kind.outcome)) }
        end()
    }
}

extension UpstreamFailure.Kind {
    /// The attempt's outcome as a span attribute value.
    var outcome: String {
        switch self {
        case .connect: "connect_error"
        case .timeout: "timeout"
        case .status(let status): "http_\(status)"
        case .disconnected: "disconnected"
        case .malformed: "malformed"
        }
    }
}

extension WireProtocol {
    /// `gen_ai.system` as OpenTelemetry's GenAI semantic conventions name the provider.
    var genAISystem: String {
        switch self {
        case .openai: "openai"
        case .anthropic: "anthropic"
        case .gemini: "gcp.gemini"
        case .azureOpenAI: "az.ai.openai"
        case .bedrock: "aws.bedrock"
        }
    }
}
