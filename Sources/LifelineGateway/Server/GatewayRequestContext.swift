import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Per-request context: Hummingbird's core storage plus the request id every response echoes.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID = ""
    /// The client's connection, to notice when it closes.
    let channel: (any Channel)?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
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
