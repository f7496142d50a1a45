import LifelineWire

/// Writes a stream in the client's API, whatever the upstream spoke.
enum ClientStreamEncoder {
    case openai(OpenAIStreamEncoder)
    case anthropic(AnthropicStreamEncoder)

    init(api: WireProtocol, id: String, model: String, created: Int, includeUsage: Bool) {
        switch api {
        // Bedrock is an upstream protocol only; no client reads it.
        case .openai, .bedrock: self = .openai(OpenAIStreamEncoder(id: id, model: model, created: created, includeUsage: includeUsage))
        case .anthropic: self = .anthropic(AnthropicStreamEncoder(id: id, model: model))
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
        }
    }

    mutating func finish() -> [UInt8] {
        switch self {
        case .openai(let encoder):
            return encoder.finish()
        case .anthropic(var encoder):
            defer { self = .anthropic(encoder) }
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
        }
    }
}
