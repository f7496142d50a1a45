import Foundation
import Hummingbird
import LifelineWire
import NIOCore

/// The simulator's Gemini and Azure OpenAI faces: their URLs, error shapes and content-filter
/// refusals, over the same deterministic answers as the OpenAI and Anthropic ones.
extension Simulator {
    /// `POST /v1beta/models/{model}:generateContent`, `…:streamGenerateContent?alt=sse`, and the model list.
    func addGeminiRoutes(to router: Router<BasicRequestContext>) {
        router.get("/v1beta/models") { [self] _, _ in
            jsonResponse(.ok, ["models": .array(models.map { ["name": .string("models/\($0)"), "displayName": .string($0)] })])
        }
        router.post("/v1beta/models/{call}") { [self] request, context in
            let call = context.parameters.get("call") ?? ""
            guard let colon = call.lastIndex(of: ":") else {
                return errorResponse(404, "Method not found: expected models/{model}:generateContent.", api: .gemini)
            }
            let model = String(call[..<colon])
            let stream: Bool
            switch call[call.index(after: colon)...] {
            case "generateContent": stream = false
            case "streamGenerateContent":
                guard request.uri.queryParameters.get("alt") == "sse" else {
                    return errorResponse(400, "The simulator streams only with alt=sse.", api: .gemini)
                }
                stream = true
            default:
                return errorResponse(404, "Method not found: expected generateContent or streamGenerateContent.", api: .gemini)
            }
            return try await complete(request, api: .gemini) { json throws(RequestError) in
                try GeminiRequest.decode(json, model: model, stream: stream)
            }
        }
    }

    /// `POST /openai/deployments/{deployment}/chat/completions?api-version=…` and the newer
    /// `POST /openai/v1/chat/completions`, with their model lists.
    func addAzureRoutes(to router: Router<BasicRequestContext>) {
        router.get("/openai/v1/models") { [self] _, _ in jsonResponse(.ok, modelList()) }
        router.get("/openai/models") { [self] _, _ in jsonResponse(.ok, modelList()) }
        router.post("/openai/deployments/{deployment}/chat/completions") { [self] request, context in
            guard request.uri.queryParameters.get("api-version") != nil else {
                return errorResponse(400, "Missing required query parameter: api-version.", param: "api-version", api: .azureOpenAI)
            }
            let deployment = context.parameters.get("deployment") ?? ""
            return try await complete(request, api: .azureOpenAI) { json throws(RequestError) in
                // The deployment in the URL names the model; the body's `model` is ignored, as Azure does.
                var object = json.objectValue ?? [:]
                object["model"] = .string(deployment)
                return try OpenAIChatRequest.decode(.object(object))
            }
        }
        router.post("/openai/v1/chat/completions") { [self] request, _ in
            try await complete(request, api: .azureOpenAI) { json throws(RequestError) in try OpenAIChatRequest.decode(json) }
        }
    }

    /// The content filter's refusal of a prompt, in each protocol's own way: Azure's 400
    /// `content_filter`, Gemini's answer with `promptFeedback.blockReason` and no candidate,
    /// a 400 naming the filter for OpenAI and Anthropic.
    func contentFilterRefusal(api: WireProtocol, chat: ChatRequest) -> Response {
        switch api {
        case .azureOpenAI:
            return jsonResponse(.badRequest, AzureOpenAIError.contentFilterBody())
        case .gemini:
            let body: JSONValue = ["promptFeedback": ["blockReason": "SAFETY"],
                                   "usageMetadata": ["promptTokenCount": .number(Double(DeterministicText.promptTokens(for: chat))), "totalTokenCount": 0]]
            if chat.stream {
                return Response(status: .ok, headers: [.contentType: "text/event-stream"],
                                body: ResponseBody(byteBuffer: ByteBuffer(bytes: SSE.data(JSONCoding.encode(body)))))
            }
            return jsonResponse(.ok, body)
        case .openai:
            return jsonResponse(.badRequest, ErrorBody.openAI(message: "The prompt was refused by the content filter.", type: "invalid_request_error",
                                                              code: "content_filter"))
        case .anthropic, .bedrock:
            return errorResponse(400, "The prompt was refused by the content filter.", api: api)
        }
    }
}

extension CompletionPlan {
    /// The plan cut short by an output content filter: half its text, then `content_filter`.
    func filtered() -> CompletionPlan {
        var plan = self
        plan.pieces = Array(pieces.prefix(pieces.count / 2))
        plan.toolCalls = []
        plan.finishReason = .contentFilter
        plan.stopSequence = nil
        return plan
    }
}

/// A stream in the simulated protocol's framing.
enum SimulatorStreamEncoder {
    case openai(OpenAIStreamEncoder)
    case anthropic(AnthropicStreamEncoder)
    case gemini(GeminiStreamEncoder)
    case bedrock(BedrockStreamEncoder)

    init(api: WireProtocol, id: String, model: String, created: Int, includeUsage: Bool, promptTokens: Int) {
        switch api {
        case .openai, .azureOpenAI: self = .openai(OpenAIStreamEncoder(id: id, model: model, created: created, includeUsage: includeUsage))
        case .anthropic: self = .anthropic(AnthropicStreamEncoder(id: id, model: model, promptTokens: promptTokens))
        case .gemini: self = .gemini(GeminiStreamEncoder(id: id, model: model))
        case .bedrock: self = .bedrock(BedrockStreamEncoder())
        }
    }

    mutating func start() -> [UInt8] {
        switch self {
        case .anthropic(var encoder):
            defer { self = .anthropic(encoder) }
            return encoder.start()
        case .bedrock(var encoder):
            defer { self = .bedrock(encoder) }
            return encoder.start()
        case .openai, .gemini:
            return []
        }
    }

    mutating func encode(_ event: ChatEvent) -> [UInt8] {
        switch self {
        case .openai(var encoder):
            defer { self = .openai(encoder) }
            return encoder.encode(event)
        case .anthropic(var encoder):
            defer { self = .anthropic(encoder) }
            return encoder.encode(event)
        case .gemini(var encoder):
            defer { self = .gemini(encoder) }
            return encoder.encode(event)
        case .bedrock(var encoder):
            defer { self = .bedrock(encoder) }
            return encoder.encode(event)
        }
    }

    mutating func finish() -> [UInt8] {
        switch self {
        case .openai(let encoder): return encoder.finish()
        case .anthropic(var encoder):
            defer { self = .anthropic(encoder) }
            return encoder.finish()
        case .gemini(let encoder): return encoder.finish()
        case .bedrock(var encoder):
            defer { self = .bedrock(encoder) }
            return encoder.finish()
        }
    }

    /// The protocol's in-band error for `status`, ending a stream that has begun: OpenAI's error
    /// chunk (Azure's error body for Azure), Anthropic's `error` event, Gemini's error chunk,
    /// Bedrock's exception message.
    mutating func error(status: Int, message: String) -> [UInt8] {
        switch self {
        case .openai:
            return SSE.data(JSONCoding.encode(ErrorBody.openAI(message: message, type: ErrorBody.openAIType(status: status))))
        case .anthropic(var encoder):
            defer { self = .anthropic(encoder) }
            return encoder.error(type: ErrorBody.anthropicType(status: status), message: message)
        case .gemini:
            return SSE.data(JSONCoding.encode(GeminiError.body(status: status, message: message)))
        case .bedrock:
            // In a stream Bedrock names exceptions in lower camel case: throttlingException.
            let type = BedrockError.type(forStatus: status)
            return BedrockStreamEncoder.exception(type: type.prefix(1).lowercased() + type.dropFirst(), message: message)
        }
    }
}
