import HTTPTypes
import Hummingbird
import LifelineWire
import NIOCore

/// `POST /v1/messages/count_tokens`: the prompt's token count, in Anthropic's shape.
///
/// The count comes from the first healthy Anthropic-protocol deployment of the model that
/// answers its own `/v1/messages/count_tokens`; when the model has none, or none answers, it is
/// Lifeline's estimate (`TokenEstimate`). `x-lifeline-token-count` says which: `upstream` or
/// `estimate`. Counting sends nothing to a model, so it spends no rate limit or budget.
struct CountTokensEndpoint: Sendable {
    let runtime: GatewayRuntime
    /// Deployments asked before falling back to the estimate.
    static let maximumUpstreamsAsked = 2

    func handle(_ request: Request, context: GatewayRequestContext) async -> Response {
        let gate = AccessGate(runtime: runtime)
        let caller: Caller
        switch gate.authenticate(request) {
        case .failure(let error): return error.response(for: .anthropic)
        case .success(let found): caller = found
        }
        let chat: ChatRequest
        do throws(GatewayError) {
            chat = try Self.decode(try await JSONContentType.readBody(request, limit: runtime.config.server.maxBodyBytes, metrics: runtime.metrics))
        } catch {
            return error.response(for: .anthropic)
        }
        guard let group = runtime.pool.models[chat.model] else {
            return GatewayError.unknownModel(chat.model, usable: caller.usableModels(of: runtime.pool.modelNames)).response(for: .anthropic)
        }
        if !caller.models.isEmpty, !caller.models.contains(chat.model) {
            return GatewayError(status: 403, message: "This API key may not use model '\(chat.model)'.", param: "model",
                                code: "model_not_allowed").response(for: .anthropic)
        }
        let counters = group.attemptOrder().filter { $0.config.protocol == .anthropic }.prefix(Self.maximumUpstreamsAsked)
        for deployment in counters {
            if let count = await deployment.client.countTokens(chat) {
                runtime.metrics.tokenCount(model: chat.model, source: "upstream")
                return Self.answer(count, source: "upstream", deployment: deployment.name)
            }
        }
        runtime.metrics.tokenCount(model: chat.model, source: "estimate")
        return Self.answer(TokenEstimate.promptTokens(for: chat), source: "estimate", deployment: nil)
    }

    /// The body as a Messages request; it carries no `max_tokens`, so one is supplied for decoding.
    static func decode(_ json: JSONValue) throws(GatewayError) -> ChatRequest {
        guard var object = json.objectValue else {
            throw GatewayError(RequestError("The request body must be a JSON object, not \(json.typeName).", param: nil))
        }
        if object["max_tokens"] == nil { object["max_tokens"] = 4096 }
        do {
            return try AnthropicMessagesRequest.decode(.object(object))
        } catch {
            throw GatewayError(error)
        }
    }

    static func answer(_ count: Int, source: String, deployment: String?) -> Response {
        var headers: HTTPFields = [.contentType: "application/json", .lifelineTokenCount: source]
        if let deployment { headers[.lifelineDeployment] = deployment }
        return Response(status: .ok, headers: headers,
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONCoding.encode(["input_tokens": .number(Double(count))]))))
    }
}

extension HTTPField.Name {
    static let lifelineTokenCount = Self("x-lifeline-token-count")!
}
