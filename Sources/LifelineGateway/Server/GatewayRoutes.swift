import Foundation
import Hummingbird
import LifelineWire
import NIOCore
import Synchronization

/// Whether the gateway takes new work: false while starting and once draining has begun.
public final class Readiness: Sendable {
    private let ready = Atomic<Bool>(false)
    public init() {}
    public var isReady: Bool { ready.load(ordering: .relaxed) }
    public func set(_ value: Bool) { ready.store(value, ordering: .relaxed) }
}

/// The gateway's HTTP surface; reads like DESIGN.md's endpoint list.
enum GatewayRoutes {
    static func router(runtime: GatewayRuntime, adminToken: AdminToken, reload: @escaping @Sendable () async -> Response) -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        // First, so the request's span covers every other middleware and sees the final response.
        if runtime.tracing { router.add(middleware: InferenceTracingMiddleware()) }
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: ClientAddressMiddleware(trustedProxies: { runtime.config.auth.trustedProxies }))
        router.add(middleware: HostAllowlistMiddleware(allowlist: HostAllowlist(runtime.config), metrics: runtime.metrics))
        let chat = ChatEndpoint(runtime: runtime)
        let embeddings = EmbeddingsEndpoint(runtime: runtime)
        let countTokens = CountTokensEndpoint(runtime: runtime)
        let responses = ResponsesEndpoint(runtime: runtime)

        router.get("/healthz") { _, _ in jsonResponse(.ok, ["status": "ok"]) }
        router.get("/readyz") { _, _ in
            let instance: JSONValue = ["id": .string(runtime.counters.instance), "leader": .bool(runtime.role.isLeader)]
            return runtime.readiness.isReady ? jsonResponse(.ok, ["status": "ready", "store": runtime.storeHealth.json, "instance": instance])
                : jsonResponse(.serviceUnavailable, ["status": "not_ready", "store": runtime.storeHealth.json, "instance": instance])
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(bytes: runtime.metrics.exposition())))
        }

        router.post("/v1/chat/completions") { request, context in await chat.handle(request, context: context, api: .openai) }
        router.post("/v1/messages") { request, context in await chat.handle(request, context: context, api: .anthropic) }
        router.post("/v1/messages/count_tokens") { request, context in await countTokens.handle(request, context: context) }
        router.post("/v1/responses") { request, context in await responses.create(request, context: context) }
        router.get("/v1/responses/{id}") { request, context in await responses.retrieve(request, context: context) }
        router.delete("/v1/responses/{id}") { request, context in await responses.delete(request, context: context) }
        router.get("/v1/models") { _, _ in jsonResponse(.ok, modelList(runtime.pool)) }
        router.get("/v1/models/{name}") { request, context in
            let name = context.parameters.get("name") ?? ""
            guard runtime.pool.models[name] != nil else {
                // The list is public (`/v1/models`); a key with an allow-list sees only its models.
                let caller = try? AccessGate(runtime: runtime).authenticate(request).get()
                let usable = caller.map { $0.usableModels(of: runtime.pool.modelNames) } ?? runtime.pool.modelNames
                return GatewayError.unknownModel(name, usable: usable).response(for: .openai)
            }
            return jsonResponse(.ok, modelEntry(name))
        }
        router.post("/v1/embeddings") { request, context in await embeddings.handle(request, context: context) }
        AdminRoutes.add(to: router, runtime: runtime, token: adminToken, reload: reload)
        WebUIRoutes.add(to: router)
        StatusRoutes.add(to: router, runtime: runtime)
        SubscriberRoutes.add(to: router, runtime: runtime, adminToken: adminToken)
        // Last, so it wraps only what no route above took.
        router.add(middleware: UnknownRouteMiddleware(catalog: RouteCatalog(router.routes.map { ($0.method.rawValue, $0.path.description) })))
        return router
    }

    /// The model list in a shape both SDKs read: OpenAI's `data[].id` and Anthropic's `display_name`.
    static func modelList(_ pool: DeploymentPool) -> JSONValue {
        let data = pool.modelNames.map(modelEntry)
        return ["object": "list", "data": .array(data), "has_more": false,
                "first_id": data.first?["id"] ?? .null, "last_id": data.last?["id"] ?? .null]
    }

    static func modelEntry(_ name: String) -> JSONValue {
        ["id": .string(name), "object": "model", "created": 1_700_000_000, "owned_by": "lifeline",
         "type": "model", "display_name": .string(name), "created_at": "2023-11-14T22:13:20Z"]
    }
}

func jsonResponse(_ status: HTTPResponse.Status, _ body: JSONValue) -> Response {
    Response(status: status, headers: [.contentType: "application/json"],
             body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONCoding.encode(body))))
}
