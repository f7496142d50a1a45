import LifelineCore
import LifelineWire

/// Tries a request's deployments in order until one answers.
///
/// Every attempt after the first is a retry. A retry onto another deployment that is healthy
/// and has room is granted outright; any other must be granted by the model's retry budget
/// (`RetryBudget`). Retries wait a jittered backoff and are counted as failovers. Only failures
/// that another deployment could fix are retried; a request the upstream refused as malformed
/// is not. A deployment at its concurrency limit is waited for, briefly, rather than skipped;
/// when every one stays at its limit the request is shed (503 `overloaded`, reason
/// `deployment_busy`), not reported as an outage. A deployment no connection could be made to
/// saw nothing of the request, so it goes back to the end of the order to be tried again
/// (within `max_attempts` and the retry budget).
struct Failover {
    let group: ModelGroup
    let routing: RoutingConfig
    let metrics: GatewayMetrics
    /// Longest wait for a slot at a busy deployment before a new request's first attempt.
    var slotWait: Double = 2

    enum Phase: String {
        case beforeFirstByte = "before_first_byte"
        case midStream = "mid_stream"
    }

    /// `outcomeLater`: the attempt's success is only its start (a stream opened); the caller
    /// reports the final outcome when the stream ends, so each attempt is counted once.
    /// `failed`: the deployment whose failure this run recovers from (mid-stream).
    func run<Value>(
        _ order: [Deployment], phase: Phase, record: inout RequestRecord, outcomeLater: Bool = false, after failed: Deployment? = nil,
        attempt: (Deployment) async throws(UpstreamFailure) -> Value
    ) async -> Result<(value: Value, deployment: Deployment), GatewayError> {
        var failures: [UpstreamFailure] = []
        var tried = 0
        var refused = false
        var busy = false
        var lastFailed = failed
        var random = SystemRandomNumberGenerator()
        var pending = order[...]
        while let deployment = pending.popFirst() {
            guard tried < routing.maxAttempts, !Task.isCancelled else { break }
            let isRetry = tried > 0 || phase == .midStream
            if isRetry {
                guard group.grantRetry(onto: deployment, after: lastFailed) != .refused else { refused = true; continue }
                let delay = routing.backoff.delay(beforeRetry: max(tried, 1), using: &random)
                if delay > 0 { try? await Task.sleep(for: .seconds(delay)) }
            }
            // A retry waits for room no longer than the deployment takes to start answering. A first
            // attempt does not wait at a busy deployment while one later in its order has room now
            // (the order was made when the request came, and requests that came at once share it).
            // A retry does: its order puts the deployment that just failed last on purpose.
            let wait = isRetry ? Double(deployment.config.timeouts.firstTokenMilliseconds) / 1000 : slotWait
            let asked = group.now
            var grant = await group.admit(deployment, waitingUpTo: 0, priority: record.priority ?? .normal)
            if grant == .busy, wait > 0,
               isRetry || !pending.contains(where: group.hasRoom)
            {
                grant = await group.admit(deployment, waitingUpTo: wait, priority: record.priority ?? .normal)
            }
            if record.firstTokenAt == nil { record.slotWaitSeconds += group.now - asked }
            guard grant == .granted else {
                if grant == .busy { busy = true }
                continue
            }
            if isRetry {
                metrics.failover(model: group.name, phase: phase.rawValue)
                record.failoverPhase = phase.rawValue
                record.event(phase == .midStream ? "resumption" : "failover", [
                    "lifeline.phase": .string(phase.rawValue), "lifeline.deployment": .string(deployment.name),
                    "lifeline.failed_deployment": .string(lastFailed?.name ?? ""),
                ])
            }
            deployment.spendAllowance(estimatedTokens: record.estimatedTokens ?? 0)
            tried += 1
            record.attempts += 1
            let began = group.now
            let span = record.startAttemptSpan(deployment, phase: phase.rawValue, retry: isRetry)
            do {
                // The attempt's span is current while it runs, so its request upstream carries its `traceparent`.
                let value = try await GatewayTracing.withCurrent(span) { () async throws(UpstreamFailure) -> Value in try await attempt(deployment) }
                group.recordLatency(deployment, seconds: group.now - began)
                if !outcomeLater { group.report(deployment, failure: nil) }
                // Its outcome is the answer's or the stream's, known later: the caller (or `finish`) ends it.
                record.attemptSpan = span
                return .success((value, deployment))
            } catch {
                let error = error.at(deployment)
                span?.endAttempt(failure: error, outcome: error.isCancellation || Task.isCancelled ? "client_closed" : nil)
                group.report(deployment, failure: error)
                // The client left: nothing failed, and nothing more is tried for it.
                if error.isCancellation || Task.isCancelled { return .failure(.clientClosed) }
                record.deployment = deployment.name
                record.lastFailure = error.cause
                guard error.isRetryable else { return .failure(Self.clientFault(error)) }
                failures.append(error)
                lastFailed = deployment
                // No connection was had, so the deployment saw nothing: it is tried again after the
                // others (a budgeted retry). A lone deployment too: its connect may have timed out
                // only because this host was short of CPU.
                if !error.reachedUpstream, !pending.contains(where: { $0 === deployment }) { pending.append(deployment) }
            }
        }
        if refused {
            metrics.failover(model: group.name, phase: phase.rawValue, outcome: "refused")
            record.failoverRefused = true
        }
        if Task.isCancelled { return .failure(.clientClosed) }
        // Nothing failed: every deployment that could answer stayed at its concurrency limit for
        // the whole wait. That is Lifeline shedding load, not an upstream outage.
        if failures.isEmpty, !refused, busy, phase == .beforeFirstByte {
            let priority = record.priority ?? .normal
            metrics.shed(reason: "deployment_busy", priority: priority.description)
            record.shedByService = true
            return .failure(GatewayError(
                status: 503, message: "Every deployment of model '\(group.name)' is at its concurrency limit; retry after 1 s.",
                code: "overloaded", retryAfterSeconds: 1))
        }
        return .failure(Self.allFailed(model: group.name, failures: failures, budgetSpent: refused))
    }

    /// An upstream refusal caused by the request itself, passed on with the upstream's words redacted.
    static func clientFault(_ failure: UpstreamFailure) -> GatewayError {
        UpstreamErrorReport.clientFault(failure)
    }

    /// Every attempt failed: 502 when every deployment tried is misconfigured, else 503 with a
    /// Retry-After; in Lifeline's own words, never the upstream's.
    static func allFailed(model: String, failures: [UpstreamFailure], budgetSpent: Bool) -> GatewayError {
        UpstreamErrorReport.allFailed(model: model, failures: failures, budgetSpent: budgetSpent)
    }
}

extension ChatRequest {
    /// Whether the gateway must apply the stop sequences itself: an Anthropic client expects to
    /// learn which sequence matched, and OpenAI, Azure OpenAI, Gemini and Bedrock upstreams do not
    /// say (Converse reports `stop_sequence` as the reason, not the sequence).
    func gatewayAppliesStop(on deployment: Deployment) -> Bool {
        sourceProtocol == .anthropic && [.openai, .azureOpenAI, .gemini, .bedrock].contains(deployment.config.protocol) && !stop.isEmpty
    }

    /// The request as sent to `deployment`.
    func upstreamRequest(for deployment: Deployment) -> ChatRequest {
        guard gatewayAppliesStop(on: deployment) else { return self }
        var request = self
        request.stop = []
        return request
    }
}
