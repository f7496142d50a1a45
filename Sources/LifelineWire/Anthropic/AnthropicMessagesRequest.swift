/// Anthropic Messages requests: decoding with validation, and encoding for upstreams.
public enum AnthropicMessagesRequest {
    static let modelledKeys: Set<String> = [
        "model", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences", "stream", "tools", "tool_choice",
    ]
    /// Anthropic requires `max_tokens`; an OpenAI request without one gets this.
    public static let defaultMaxTokens = 4096

    public static func decode(_ body: JSONValue) throws(RequestError) -> ChatRequest {
        guard let object = body.objectValue else {
            throw RequestError("The request body must be a JSON object, not \(body.typeName).", param: nil)
        }
        let fields = FieldReader(object)
        let model = try fields.requiredString("model")
        guard let maxTokens = try fields.int("max_tokens", in: 1...10_000_000) else { throw .missing("max_tokens") }
        guard let rawMessages = try fields.array("messages") else { throw .missing("messages") }
        guard !rawMessages.isEmpty else { throw .range("messages", "expected at least one message") }

        var messages: [ChatMessage] = []
        for (index, raw) in rawMessages.enumerated() {
            let path = "messages[\(index)]"
            guard let message = raw.objectValue else { throw .type(path, expected: "an object", got: raw) }
            let reader = FieldReader(message, path: path)
            let role = try reader.requiredString("role")
            guard role == "user" || role == "assistant" else {
                throw .range(reader.name("role"), "expected 'user' or 'assistant', but got '\(role)'")
            }
            messages += try decodeMessage(reader, assistant: role == "assistant")
        }

        var request = ChatRequest(model: model, messages: messages, sourceProtocol: .anthropic)
        request.maxTokens = maxTokens
        if let system = fields.value("system") {
            if let text = system.stringValue {
                request.system = text
            } else if let blocks = system.arrayValue {
                var texts: [String] = []
                for (index, block) in blocks.enumerated() {
                    guard let text = block["text"]?.stringValue else { throw .missing("system[\(index)].text") }
                    texts.append(text)
                }
                request.system = texts.joined(separator: "\n\n")
            } else {
                throw .type("system", expected: "a string or an array of text blocks", got: system)
            }
        }
        request.temperature = try fields.double("temperature", in: 0...1)
        request.topP = try fields.double("top_p", in: 0...1)
        request.stop = try fields.strings("stop_sequences", maximum: 8192)
        request.stream = try fields.bool("stream") ?? false
        request.includeUsage = true
        for (index, raw) in (try fields.array("tools") ?? []).enumerated() {
            let path = "tools[\(index)]"
            guard let tool = raw.objectValue else { throw .type(path, expected: "an object", got: raw) }
            let reader = FieldReader(tool, path: path)
            request.tools.append(ToolDefinition(
                name: try reader.requiredString("name"),
                description: try reader.string("description"),
                parameters: try reader.object("input_schema").map(JSONValue.object) ?? ["type": "object", "properties": [:]]))
        }
        if let choice = try fields.object("tool_choice") {
            let reader = FieldReader(choice, path: "tool_choice")
            switch try reader.requiredString("type") {
            case "auto": request.toolChoice = .auto
            case "any": request.toolChoice = .required
            case "none": request.toolChoice = ToolChoice.none
            case "tool": request.toolChoice = .named(try reader.requiredString("name"))
            case let other: throw .range("tool_choice.type", "expected auto, any, tool or none, but got '\(other)'")
            }
        }
        request.passthrough = object.filter { !modelledKeys.contains($0.key) }
        return request
    }

    /// One Anthropic message becomes one or more Lifeline messages: tool results are messages of their own.
    private static func decodeMessage(_ reader: FieldReader, assistant: Bool) throws(RequestError) -> [ChatMessage] {
        guard let content = reader.value("content") else { throw .missing(reader.name("content")) }
        if let text = content.stringValue { return [.text(assistant ? .assistant : .user, text)] }
        guard let blocks = content.arrayValue else {
            throw .type(reader.name("content"), expected: "a string or an array of content blocks", got: content)
        }
        var results: [ChatMessage] = []
        var parts: [ContentPart] = []
        var calls: [ToolCall] = []
        for (index, raw) in blocks.enumerated() {
            let path = reader.name("content") + "[\(index)]"
            guard let block = raw.objectValue else { throw .type(path, expected: "an object", got: raw) }
            let blockReader = FieldReader(block, path: path)
            switch try blockReader.requiredString("type") {
            case "text":
                parts.append(.text(try blockReader.requiredString("text")))
            case "tool_use":
                guard assistant else { throw .range(blockReader.name("type"), "tool_use blocks belong to assistant messages") }
                let input = blockReader.value("input") ?? [:]
                calls.append(ToolCall(id: try blockReader.requiredString("id"), name: try blockReader.requiredString("name"),
                                      arguments: JSONCoding.encodeString(input)))
            case "tool_result":
                guard !assistant else { throw .range(blockReader.name("type"), "tool_result blocks belong to user messages") }
                let id = try blockReader.requiredString("tool_use_id")
                var text = ""
                if let value = blockReader.value("content") {
                    if let string = value.stringValue { text = string }
                    else { text = (value.arrayValue ?? []).compactMap { $0["text"]?.stringValue }.joined() }
                }
                results.append(ChatMessage(role: .tool, content: [.text(text)], toolCallID: id))
            case "thinking", "redacted_thinking":
                continue
            default:
                parts.append(.media(raw, source: .anthropic))
            }
        }
        if assistant {
            results.append(ChatMessage(role: .assistant, content: parts, toolCalls: calls))
        } else if !parts.isEmpty || results.isEmpty {
            results.append(ChatMessage(role: .user, content: parts))
        }
        return results
    }

    /// The request body for an Anthropic-protocol upstream.
    public static func encode(_ request: ChatRequest, upstreamModel: String, stream: Bool) -> JSONValue {
        var object: [String: JSONValue] = request.sourceProtocol == .anthropic ? request.passthrough : [:]
        object["model"] = .string(upstreamModel)
        object["max_tokens"] = .number(Double(request.maxTokens ?? defaultMaxTokens))
        if let system = request.system { object["system"] = .string(system) }
        var messages: [JSONValue] = []
        var pendingResults: [JSONValue] = []
        func flushResults() {
            if !pendingResults.isEmpty { messages.append(["role": "user", "content": .array(pendingResults)]) }
            pendingResults = []
        }
        for message in request.messages {
            switch message.role {
            case .tool:
                pendingResults.append(["type": "tool_result", "tool_use_id": .string(message.toolCallID ?? ""), "content": .string(message.text)])
            case .user:
                let blocks = encodeBlocks(message.content)
                if pendingResults.isEmpty {
                    messages.append(["role": "user", "content": blocks.count == 1 && blocks[0]["type"] == "text" ? blocks[0]["text"]! : .array(blocks)])
                } else {
                    pendingResults += blocks
                    flushResults()
                }
            case .assistant:
                flushResults()
                var blocks = encodeBlocks(message.content).filter { $0["text"]?.stringValue != "" }
                for call in message.toolCalls {
                    let input = (try? JSONCoding.decode(Array(call.arguments.utf8))) ?? [:]
                    blocks.append(["type": "tool_use", "id": .string(call.id), "name": .string(call.name),
                                   "input": input.objectValue != nil ? input : [:]])
                }
                if blocks.isEmpty { blocks = [["type": "text", "text": ""]] }
                messages.append(["role": "assistant", "content": .array(blocks)])
            }
        }
        flushResults()
        object["messages"] = .array(messages)
        if let temperature = request.temperature { object["temperature"] = .number(min(temperature, 1)) }
        if let topP = request.topP { object["top_p"] = .number(topP) }
        if !request.stop.isEmpty { object["stop_sequences"] = .array(request.stop.map(JSONValue.string)) }
        if stream { object["stream"] = true }
        if !request.tools.isEmpty {
            object["tools"] = .array(request.tools.map { tool in
                var entry: [String: JSONValue] = ["name": .string(tool.name), "input_schema": tool.parameters]
                if let description = tool.description { entry["description"] = .string(description) }
                return .object(entry)
            })
        }
        switch request.toolChoice {
        case .some(.auto): object["tool_choice"] = ["type": "auto"]
        case .some(.none): object["tool_choice"] = ["type": "none"]
        case .some(.required): object["tool_choice"] = ["type": "any"]
        case .some(.named(let name)): object["tool_choice"] = ["type": "tool", "name": .string(name)]
        case nil: break
        }
        if let user = request.user, request.sourceProtocol == .openai { object["metadata"] = ["user_id": .string(user)] }
        return .object(object)
    }

    private static func encodeBlocks(_ parts: [ContentPart]) -> [JSONValue] {
        parts.compactMap { part in
            switch part {
            case .text(let text): ["type": "text", "text": .string(text)]
            case .media(let value, source: .anthropic): value
            case .media(let value, source: .openai), .media(let value, source: .azureOpenAI): AnthropicMedia.fromOpenAI(value)
            case .media(let value, source: .gemini): GeminiMedia.toOpenAI(value).flatMap(AnthropicMedia.fromOpenAI)
            case .media(let value, source: .bedrock): BedrockMedia.toAnthropic(value)
            }
        }
    }
}
