import LifelineWire

/// Writes a stream in the client's API, whatever the upstream spoke.
enum ClientStreamEncoder {
    case openai(OpenAIStreamEncoder)
    case anthropic(AnthropicStreamEncoder)
    case responses(ResponsesStreamEncoder)

    /// `promptTokens`: what Anthropic's `message_start` announces as the prompt's `input_tokens`.
    init(api: ClientAPI, id: String, model: String, created: Int, includeUsage: Bool, promptTokens: Int = 0) {
        switch api {
        case .openai: self = .openai(OpenAIStreamEncoder(id: id, model: model, created: created, includeUsage: includeUsage))
        case .anthropic: self = .anthropic(AnthropicStreamEncoder(id: id, model: model, promptTokens: promptTokens))
        case .responses(let exchange): self = .responses(ResponsesStreamEncoder(header: exchange.header))
        }
    }

    /// The final response object of a Responses stream, once `finish()` has written it.
    var completedResponse: JSONValue? {
        if case .responses(let encoder) = self { return encoder.completedResponse }
        return nil
    }

    mutating func encode(_ event: ChatEvent) -> [UInt8] {
        switch self {
        case .openai(var encoder):
            defer { self = .openai(encoder) }
            return encoder.encode(event)
        case .anthropic(var encoder):
            defer { self = .anthropic(encoder) }
            return encoder.encode(event)
        case .responses(var encoder):
            defer { self = .responses(encoder) }
            return encoder.encode(event)
        }
    }

    mutating func finish() -> [UInt8] {
        switch self {
        case .openai(let encoder):
            return encoder.finish()
        case .anthropic(var encoder):
            defer { self = .anthropic(encoder) }
            return encoder.finish()
        case .responses(var encoder):
            defer { self = .responses(encoder) }
            return encoder.finish()
        }
    }

    /// An in-band error for a stream that cannot be completed.
    mutating func error(_ error: GatewayError) -> [UInt8] {
        switch self {
        case .openai:
            return SSE.data(JSONCoding.encode(error.body(for: .openai)))
        case .anthropic(var encoder):
            defer { self = .anthropic(encoder) }
            return encoder.error(type: ErrorBody.anthropicType(status: error.status), message: error.message)
        case .responses(var encoder):
            defer { self = .responses(encoder) }
            return encoder.error(code: error.code, message: error.message)
        }
    }
}
