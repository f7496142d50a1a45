import Hummingbird
import Logging
import OTel
import ServiceLifecycle
import Synchronization
import Tracing

/// OpenTelemetry tracing for the gateway: swift-otel's tracer with its OTLP/HTTP exporter, bootstrapped
/// only when `tracing.otlp_endpoint` is set. With tracing off no span is ever started: the request
/// path checks `RequestRecord.span`, which stays nil.
enum GatewayTracing {
    private static let started = Atomic<Bool>(false)

    /// Bootstraps the process's tracer and returns the service that batches and exports spans (to
    /// run in the gateway's service group, so the last spans are flushed on shutdown); nil when
    /// tracing is off. The tracer is process-wide, so it can be started once per process.
    static func start(_ config: TracingConfig, logger: Logger) throws -> (any Service)? {
        guard let url = config.tracesURL else { return nil }
        guard started.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else {
            throw GatewayStartError(message: "tracing is already running in this process; it starts once per process")
        }
        var otel = OTel.Configuration.default
        otel.serviceName = config.serviceName
        otel.logs.enabled = false
        otel.metrics.enabled = false
        otel.diagnosticLogger = .custom(logger)
        otel.diagnosticLogLevel = .warning
        otel.propagators = [.traceContext]
        // The ratio is validated to 0...1 by the config loader, where the initializer cannot fail.
        otel.traces.sampler = .parentBasedTraceIDRatio(ratio: config.sampleRatio) ?? .parentBasedAlwaysOn
        otel.traces.exporter = .otlp
        otel.traces.otlpExporter.endpoint = url
        otel.traces.otlpExporter.protocol = .httpProtobuf
        // A collector that is down costs an export at most this long (its spans are dropped),
        // and shutdown at most this long for the last flush, instead of OpenTelemetry's 10 s and 30 s.
        otel.traces.otlpExporter.timeout = .seconds(3)
        otel.traces.batchSpanProcessor.exportTimeout = .seconds(3)
        let backend = try OTel.makeTracingBackend(configuration: otel)
        InstrumentationSystem.bootstrap(backend.factory)
        return backend.service
    }

    /// Runs `body` with `span` as the task's current span; without a span, just runs it.
    /// AsyncHTTPClient (whose tracer is the bootstrapped one) starts its own client span for each
    /// HTTP request under the current span and sends that span's `traceparent` upstream, so
    /// propagation needs no code here.
    static func withCurrent<Value>(_ span: (any Span)?, _ body: () async throws(UpstreamFailure) -> Value)
        async throws(UpstreamFailure) -> Value
    {
        guard let span else { return try await body() }
        do {
            return try await InstrumentationContext.$current.withValue(span.context) { try await body() }
        } catch {
            throw UpstreamClient.failure(from: error)
        }
    }
}

/// Hummingbird's `TracingMiddleware` on the inference API (`/v1/…`) only: it starts the request's
/// server span from the client's `traceparent`. Health checks, metrics scrapes and the status page
/// make no spans.
struct InferenceTracingMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    private let tracing = TracingMiddleware<GatewayRequestContext>(recordingHeaders: [.requestID])

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/v1/") else { return try await next(request, context) }
        return try await tracing.handle(request, context: context, next: next)
    }
}
