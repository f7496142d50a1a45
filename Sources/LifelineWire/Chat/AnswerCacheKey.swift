import Crypto

/// The exact-match cache key of a chat request: SHA-256 over a canonical JSON of everything that
/// decides the answer, and the caller scope it may be served to.
///
/// Canonical because `JSONCoding` sorts object keys, and because both client APIs decode into
/// one `ChatRequest`: the same conversation asked on either API, streamed or not, has one key.
/// Not in it: `stream`, `stream_options` and what only labels a request (`user`, `metadata`,
/// `store`, `service_tier`). The key is a digest, so an entry never holds the caller's API key.
public enum AnswerCacheKey {
    static let labellingFields: Set<String> = ["stream", "stream_options", "user", "metadata", "store", "service_tier"]

    /// `scope`: whose answers these are (an API key's id, or one shared scope).
    public static func key(for request: ChatRequest, scope: String) -> String {
        let digest = SHA256.hash(data: JSONCoding.encode(canonical(request, scope: scope)))
        // Lower-case hex in one buffer: this runs on every cacheable request.
        var hex: [UInt8] = []
        hex.reserveCapacity(2 * SHA256.Digest.byteCount)
        for byte in digest {
            hex.append(hexDigits[Int(byte >> 4)])
            hex.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// The JSON the key hashes.
    public static func canonical(_ request: ChatRequest, scope: String) -> JSONValue {
        var object: [String: JSONValue] = [
            "scope": .string(scope),
            "model": .string(request.model),
            "messages": .array(request.messages.map(message)),
            "stop": .array(request.stop.map { .string($0) }),
            "tools": .array(request.tools.map { tool in
                .object(["name": .string(tool.name), "description": optional(tool.description), "parameters": tool.parameters])
            }),
        ]
        object["system"] = optional(request.system)
        object["max_tokens"] = request.maxTokens.map { .number(Double($0)) } ?? .null
        object["temperature"] = request.temperature.map { .number($0) } ?? .null
        object["top_p"] = request.topP.map { .number($0) } ?? .null
        object["seed"] = request.seed.map { .number(Double($0)) } ?? .null
        object["n"] = .number(Double(request.choiceCount))
        object["tool_choice"] = request.toolChoice.map(toolChoice) ?? .null
        object["response_format"] = request.responseFormat ?? .null
        object["logprobs"] = .bool(request.logprobs)
        object["top_logprobs"] = request.topLogprobs.map { .number(Double($0)) } ?? .null
        object["reasoning_effort"] = optional(request.reasoningEffort)
        object["thinking_budget"] = request.thinkingBudget.map { .number(Double($0)) } ?? .null
        object["passthrough"] = .object(request.passthrough.filter { !labellingFields.contains($0.key) })
        return .object(object)
    }

    private static func optional(_ text: String?) -> JSONValue { text.map { .string($0) } ?? .null }

    private static func message(_ message: ChatMessage) -> JSONValue {
        .object([
            "role": .string(message.role.rawValue),
            "content": .array(message.content.map { part in
                switch part {
                case .text(let text): .object(["text": .string(text)])
                case .media(let media, let source): .object(["media": media, "source": .string(source.rawValue)])
                }
            }),
            "tool_calls": .array(message.toolCalls.map { call in
                .object(["id": .string(call.id), "name": .string(call.name), "arguments": .string(call.arguments)])
            }),
            "tool_call_id": optional(message.toolCallID),
            "name": optional(message.name),
        ])
    }

    private static func toolChoice(_ choice: ToolChoice) -> JSONValue {
        switch choice {
        case .auto: .string("auto")
        case .none: .string("none")
        case .required: .string("required")
        case .named(let name): .object(["name": .string(name)])
        }
    }
}
