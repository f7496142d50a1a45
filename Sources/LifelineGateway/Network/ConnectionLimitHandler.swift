import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Admits a new connection against `ConnectionLimits`, or answers its first request with 503 and
/// `Retry-After` and closes it. A refused connection never reaches the router; it is closed after
/// `refusalGrace` even if no request head arrives.
final class ConnectionLimitHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let refusalGrace = TimeAmount.seconds(2)

    private let limits: ConnectionLimits
    private var client: String?
    private var refusal: ConnectionLimits.Refusal?
    private var answered = false

    init(limits: ConnectionLimits) {
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { admit(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        admit(context: context)
        context.fireChannelActive()
    }

    private func admit(context: ChannelHandlerContext) {
        guard client == nil, refusal == nil else { return }
        // The address without the port: one client, however many connections it opens.
        let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
        if let refused = limits.admit(client: address) {
            // The request head is still read, so that the 503 answers it rather than a reset.
            refusal = refused
            let channel = context.channel
            context.eventLoop.assumeIsolated().scheduleTask(in: Self.refusalGrace) { channel.close(promise: nil) }
            return
        }
        client = address
    }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release()
    }

    private func release() {
        guard let client else { return }
        limits.release(client: client)
        self.client = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let refusal else {
            context.fireChannelRead(data)
            return
        }
        guard case .head = unwrapInboundIn(data), !answered else { return }
        answered = true
        let message = refusal == .maxConnections
            ? "The server has as many connections open as it takes; retry shortly."
            : "This client has as many connections open as the server takes from one address; retry shortly."
        Self.answer(context: context, status: .serviceUnavailable, message: message, retryAfter: 1, type: "overloaded")
    }

    /// Writes a short JSON error with `Connection: close` and closes once it is written.
    static func answer(context: ChannelHandlerContext, status: HTTPResponse.Status, message: String, retryAfter: Int?, type: String) {
        let body = ByteBuffer(string: #"{"error":{"message":"\#(message)","type":"\#(type)","param":null,"code":null}}"#)
        var fields: HTTPFields = [.contentType: "application/json", .contentLength: String(body.readableBytes), .connection: "close"]
        if let retryAfter { fields[.retryAfter] = String(retryAfter) }
        context.write(NIOAny(HTTPResponsePart.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
        context.write(NIOAny(HTTPResponsePart.body(body)), promise: nil)
        let channel = context.channel
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        context.writeAndFlush(NIOAny(HTTPResponsePart.end(nil)), promise: written)
    }
}
