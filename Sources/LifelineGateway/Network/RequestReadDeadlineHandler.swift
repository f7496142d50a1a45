import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Bounds how long a request may take to arrive: its headers and body within
/// `server.request_read_timeout_s` of its first byte (the first request: of the connection's
/// opening), and, after `body_rate_grace_s`, a body no slower than `min_body_bytes_per_second`.
/// A request past either gets 408 and its connection is closed; a connection whose headers never
/// completed is closed without an answer. The idle timeout alone cannot do this: it is reset by
/// every byte, so a body trickled a byte at a time would hold the connection forever.
///
/// Between requests a keep-alive connection is not reading a request: only the idle timeout
/// applies there. The next request starts at its first byte, which the decoder does not report,
/// so a `RequestStartDetector` in front of the HTTP decoder tells this handler.
final class RequestReadDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    struct Policy: Sendable {
        var timeout: TimeAmount
        var minimumBytesPerSecond: Double
        var grace: TimeAmount

        init(_ server: ServerConfig) {
            timeout = .nanoseconds(Int64(server.requestReadTimeoutSeconds * 1_000_000_000))
            minimumBytesPerSecond = server.minBodyBytesPerSecond
            grace = .nanoseconds(Int64(server.bodyRateGraceSeconds * 1_000_000_000))
        }

        /// How often a request being read is checked: often enough to end it near its deadline.
        var checkInterval: TimeAmount {
            .nanoseconds(max(10_000_000, min(1_000_000_000, min(timeout.nanoseconds, grace.nanoseconds > 0 ? grace.nanoseconds : .max) / 4)))
        }
    }

    private enum Phase {
        /// Between requests (or before the first byte of a pipelined one).
        case waiting
        case reading(started: NIODeadline, body: (started: NIODeadline, bytes: Int)?)
    }

    private let policy: Policy
    private let metrics: GatewayMetrics
    private var phase = Phase.waiting
    private var responseStarted = false
    /// Requests whose response has not ended yet: a 408 may only answer the one being read.
    private var responsesOwed = 0
    private var check: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(policy: Policy, metrics: GatewayMetrics) {
        self.policy = policy
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        try? context.pipeline.syncOperations.addHandler(RequestStartDetector(deadline: self), position: .first)
        startReading()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stopChecking()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopChecking()
        context.fireChannelInactive()
    }

    /// Bytes arrived from the client: a new request starts if none was being read.
    func bytesArrived() {
        if case .waiting = phase { startReading() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            if case .waiting = phase { startReading() }
            if case .reading(let started, _) = phase { phase = .reading(started: started, body: (.now(), 0)) }
            responsesOwed += 1
            if responsesOwed == 1 { responseStarted = false }
        case .body(let buffer):
            if case .reading(let started, let body?) = phase { phase = .reading(started: started, body: (body.started, body.bytes + buffer.readableBytes)) }
        case .end:
            phase = .waiting
            stopChecking()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head: responseStarted = true
        case .end: responsesOwed = max(0, responsesOwed - 1); responseStarted = false
        case .body: break
        }
        context.write(data, promise: promise)
    }

    private func startReading() {
        phase = .reading(started: .now(), body: nil)
        scheduleCheck()
    }

    private func scheduleCheck() {
        guard let context, check == nil else { return }
        check = context.eventLoop.assumeIsolated().scheduleTask(in: policy.checkInterval) { [self] in
            check = nil
            evaluate()
        }
    }

    private func stopChecking() {
        check?.cancel()
        check = nil
    }

    private func evaluate() {
        guard case .reading(let started, let body) = phase, let context else { return }
        let now = NIODeadline.now()
        var reason: String?
        if now - started >= policy.timeout {
            reason = body == nil ? "header_deadline" : "body_deadline"
        } else if let body, policy.minimumBytesPerSecond > 0, now - body.started >= policy.grace {
            let seconds = Double((now - body.started).nanoseconds) / 1_000_000_000
            if Double(body.bytes) / seconds < policy.minimumBytesPerSecond { reason = "body_rate" }
        }
        guard let reason else {
            scheduleCheck()
            return
        }
        phase = .waiting
        metrics.slowRequest(reason: reason)
        if body != nil, responsesOwed == 1, !responseStarted {
            ConnectionLimitHandler.answer(context: context, status: .requestTimeout,
                                          message: "The request took too long to arrive; the connection is closed.",
                                          retryAfter: nil, type: "invalid_request_error")
        } else {
            context.close(promise: nil)
        }
    }
}

/// Sits in front of the HTTP decoder and tells `RequestReadDeadlineHandler` when bytes arrive,
/// so that a request's deadline starts at its first byte, not when its headers are complete.
final class RequestStartDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    // Both handlers live in one pipeline, on one event loop; the pipeline drops both on close.
    private let deadline: RequestReadDeadlineHandler

    init(deadline: RequestReadDeadlineHandler) {
        self.deadline = deadline
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deadline.bytesArrived()
        context.fireChannelRead(data)
    }
}
