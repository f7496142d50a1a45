import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Per-request context: Hummingbird's core storage plus the request id every response echoes
/// and the address of the caller.
public struct GatewayRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID = ""
    /// The client's connection, to notice when it closes.
    let channel: (any Channel)?
    /// The TCP peer (a reverse proxy, when there is one).
    public let remoteAddress: SocketAddress?
    /// Who is calling, as an IP address: the TCP peer, or the client a trusted proxy names in
    /// `X-Forwarded-For` (see `auth.trusted_proxies`). Anything that counts or limits callers by
    /// where they come from uses this, never the header itself.
    public var clientAddress: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
        remoteAddress = source.channel.remoteAddress
        clientAddress = remoteAddress?.ipAddress
    }

    /// Bodies are limited per route by the gateway's own configured limit.
    public var maxUploadSize: Int { .max }
}

/// Echoes the client's `x-request-id`, or makes one, on every response.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    private static let counter = Atomic<UInt64>(0)
    private static let prefix = String(UInt32.random(in: 0...UInt32.max), radix: 16)

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let supplied = request.headers[.requestID].flatMap { $0.count <= 200 && !$0.isEmpty ? $0 : nil }
        let id = supplied ?? "\(Self.prefix)\(String(Self.counter.add(1, ordering: .relaxed).newValue, radix: 16))"
        context.requestID = id
        context.logger[metadataKey: "request_id"] = .string(id)
        do {
            var response = try await next(request, context)
            response.headers[.requestID] = id
            return response
        } catch {
            var response = try (error as? any HTTPResponseError)?.response(from: request, context: context)
                ?? Response(status: .internalServerError)
            response.headers[.requestID] = id
            return response
        }
    }
}

/// Sets `clientAddress` from the TCP peer and, behind a trusted proxy, `X-Forwarded-For`.
struct ClientAddressMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let trustedProxies: @Sendable () -> [IPAddressRange]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let trusted = trustedProxies()
        guard !trusted.isEmpty else { return try await next(request, context) }
        var context = context
        context.clientAddress = ClientAddress.resolve(peer: context.remoteAddress?.ipAddress, forwardedFor: request.headers[values: .forwardedFor],
                                                      trusted: trusted)
        return try await next(request, context)
    }
}

extension HTTPField.Name {
    static let forwardedFor = Self("x-forwarded-for")!
}
