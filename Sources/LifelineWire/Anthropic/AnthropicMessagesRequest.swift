/// Anthropic Messages requests: decoding with validation, and encoding for upstreams.
public enum AnthropicMessagesRequest {
    static let modelledKeys: Set<String> = [
        "model", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences", "stream", "tools", "tool_choice",
    ]
    /// Anthropic requires `max_tokens`; an OpenAI request without one gets this.
    public static let defaultMaxTokens = 4096
    /// The user turn sent to an Anthropic upstream for a conversation that has none of its own
    /// (only system or developer text): the shortest text the API accepts, as other gateways send.
    public static let placeholderUserTurn = "."

    /// Block types Anthropic's reference lists for message content; others are refused.
    static let blockTypes = [
        "text", "image", "document", "search_result", "tool_use", "tool_result", "thinking", "redacted_thinking",
        "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
        "bash_code_execution_tool_result", "text_editor_code_execution_tool_result", "mcp_tool_use", "mcp_tool_result",
        "container_upload",
    ]
    static let imageMediaTypes = ["image/jpeg", "image/png", "image/gif", "image/webp"]

    public static func decode(_ body: JSONValue) throws(RequestError) -> ChatRequest {
        guard let object = body.objectValue else {
            throw RequestError("The request body must be a JSON object, not \(body.typeName).", param: nil)
        }
        let fields = FieldReader(object, style: .anthropic)
        let model = try fields.requiredString("model")
        guard let maxTokens = try fields.int("max_tokens", minimum: 1) else { throw .missing("max_tokens", style: .anthropic) }
        guard let rawMessages = try fields.array("messages") else { throw .missing("messages", style: .anthropic) }
        guard !rawMessages.isEmpty else { throw .range("messages", "at least one message is required", style: .anthropic) }

        var messages: [ChatMessage] = []
        for (index, raw) in rawMessages.enumerated() {
            let path = "messages[\(index)]"
            guard let message = raw.objectValue else { throw .type(path, expected: "a valid dictionary", got: raw, style: .anthropic) }
            let reader = fields.nested(message, at: path)
            let role = try reader.requiredString("role")
            guard role == "user" || role == "assistant" else {
                throw .notOneOf(reader.name("role"), role, allowed: ["user", "assistant"], style: .anthropic)
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
                    let path = "system[\(index)]"
                    guard let blockObject = block.objectValue else { throw .type(path, expected: "a valid dictionary", got: block, style: .anthropic) }
                    let reader = fields.nested(blockObject, at: path)
                    _ = try reader.enumeration("type", ["text"])
                    texts.append(try reader.requiredString("text"))
                }
                request.system = texts.joined(separator: "\n\n")
            } else {
                throw .type("system", expected: "a valid string or a valid list", got: system, style: .anthropic)
            }
        }
        request.temperature = try fields.double("temperature", in: 0...1)
        request.topP = try fields.double("top_p", in: 0...1)
        _ = try fields.int("top_k", minimum: 0)
        request.stop = try fields.strings("stop_sequences", maximum: 8192)
        request.stream = try fields.bool("stream") ?? false
        request.includeUsage = true
        _ = try fields.enumeration("service_tier", ["auto", "standard_only"])
        if let metadata = try fields.object("metadata") {
            let reader = fields.nested(metadata, at: "metadata")
            if let extra = metadata.keys.sorted().first(where: { $0 != "user_id" }) {
                throw .range("metadata.\(extra)", "Extra inputs are not permitted", style: .anthropic)
            }
            _ = try reader.string("user_id", maximumLength: 256)
        }
        if let thinking = try fields.object("thinking") {
            let reader = fields.nested(thinking, at: "thinking")
            switch try reader.enumeration("type", ["enabled", "disabled", "adaptive"]) {
            case "enabled":
                guard let budget = try reader.int("budget_tokens", minimum: ReasoningTranslation.minimumBudget) else {
                    throw .missing("thinking.budget_tokens", style: .anthropic)
                }
                guard budget < maxTokens else {
                    throw RequestError("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
                                       param: "max_tokens")
                }
                request.thinkingBudget = budget
            case nil:
                throw .missing("thinking.type", style: .anthropic)
            default:
                break
            }
        }
        for (index, raw) in (try fields.array("tools") ?? []).enumerated() {
            let path = "tools[\(index)]"
            guard let tool = raw.objectValue else { throw .type(path, expected: "a valid dictionary", got: raw, style: .anthropic) }
            let reader = fields.nested(tool, at: path)
            let name = try reader.requiredString("name")
            let custom = (try reader.string("type") ?? "custom") == "custom"
            guard !name.isEmpty, name.count <= 128,
                  name.unicodeScalars.allSatisfy({ ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" || $0 == "-" })
            else {
                throw .range(reader.name("name"), "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'", style: .anthropic)
            }
            let schema = try reader.object("input_schema")
            if custom, schema == nil { throw .missing(reader.name("input_schema"), style: .anthropic) }
            request.tools.append(ToolDefinition(
                name: name,
                description: try reader.string("description"),
                parameters: schema.map(JSONValue.object) ?? ["type": "object", "properties": [:]]))
        }
        if let choice = try fields.object("tool_choice") {
            let reader = fields.nested(choice, at: "tool_choice")
            switch try reader.enumeration("type", ["auto", "any", "tool", "none"]) {
            case "auto": request.toolChoice = .auto
            case "any": request.toolChoice = .required
            case "none": request.toolChoice = ToolChoice.none
            case "tool": request.toolChoice = .named(try reader.requiredString("name"))
            default: throw .missing("tool_choice.type", style: .anthropic)
            }
            _ = try reader.bool("disable_parallel_tool_use")
        }
        request.passthrough = object.filter { !modelledKeys.contains($0.key) }
        return request
    }

    /// One Anthropic message becomes one or more Lifeline messages: tool results are messages of their own.
    private static func decodeMessage(_ reader: FieldReader, assistant: Bool) throws(RequestError) -> [ChatMessage] {
        guard let content = reader.value("content") else { throw .missing(reader.name("content"), style: .anthropic) }
        if let text = content.stringValue { return [.text(assistant ? .assistant : .user, text)] }
        guard let blocks = content.arrayValue else {
            throw .type(reader.name("content"), expected: "a valid string or a valid list", got: content, style: .anthropic)
        }
        var results: [ChatMessage] = []
        var parts: [ContentPart] = []
        var calls: [ToolCall] = []
        for (index, raw) in blocks.enumerated() {
            let path = reader.name("content") + "[\(index)]"
            guard let block = raw.objectValue else { throw .type(path, expected: "a valid dictionary", got: raw, style: .anthropic) }
            let blockReader = reader.nested(block, at: path)
            let type = try blockReader.requiredString("type")
            guard blockTypes.contains(type) else {
                throw .range(blockReader.name("type"), "Input tag '\(type.prefix(64))' found using 'type' does not match any of the expected tags: "
                             + blockTypes.map { "'\($0)'" }.joined(separator: ", "), style: .anthropic)
            }
            switch type {
            case "text":
                parts.append(.text(try blockReader.requiredString("text")))
            case "image":
                try checkImage(blockReader)
                parts.append(.media(raw, source: .anthropic))
            case "tool_use":
                guard assistant else { throw .range(blockReader.name("type"), "tool_use blocks belong to assistant messages", style: .anthropic) }
                let input = try blockReader.object("input") ?? [:]
                calls.append(ToolCall(id: try blockReader.requiredString("id"), name: try blockReader.requiredString("name"),
                                      arguments: JSONCoding.encodeString(.object(input))))
            case "tool_result":
                guard !assistant else { throw .range(blockReader.name("type"), "tool_result blocks belong to user messages", style: .anthropic) }
                let id = try blockReader.requiredString("tool_use_id")
                _ = try blockReader.bool("is_error")
                var text = ""
                if let value = blockReader.value("content") {
                    if let string = value.stringValue { text = string }
                    else if let array = value.arrayValue { text = array.compactMap { $0["text"]?.stringValue }.joined() }
                    else { throw .type(blockReader.name("content"), expected: "a valid string or a valid list", got: value, style: .anthropic) }
                }
                results.append(ChatMessage(role: .tool, content: [.text(text)], toolCallID: id))
            case "thinking":
                guard assistant else { throw .range(blockReader.name("type"), "thinking blocks belong to assistant messages", style: .anthropic) }
                _ = try blockReader.requiredString("thinking")
                // Kept for Anthropic upstreams, which need a turn's thinking back with its tool calls.
                parts.append(.media(raw, source: .anthropic))
            case "redacted_thinking":
                parts.append(.media(raw, source: .anthropic))
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

    /// An image block: a base64 source with a supported media type, or a URL source.
    private static func checkImage(_ reader: FieldReader) throws(RequestError) {
        guard let source = try reader.object("source") else { throw .missing(reader.name("source"), style: .anthropic) }
        let sourceReader = reader.nested(source, at: reader.name("source"))
        switch try sourceReader.enumeration("type", ["base64", "url", "file"]) {
        case "base64":
            guard try sourceReader.enumeration("media_type", imageMediaTypes) != nil else {
                throw .missing(sourceReader.name("media_type"), style: .anthropic)
            }
            _ = try sourceReader.requiredString("data")
        case "url":
            _ = try sourceReader.requiredString("url")
        case "file":
            _ = try sourceReader.requiredString("file_id")
        default:
            throw .missing(sourceReader.name("type"), style: .anthropic)
        }
    }

    /// The request body for an Anthropic-protocol upstream.
    public static func encode(_ request: ChatRequest, upstreamModel: String, stream: Bool) -> JSONValue {
        var object: [String: JSONValue] = request.sourceProtocol == .anthropic ? request.passthrough : [:]
        object["model"] = .string(upstreamModel)
        object["max_tokens"] = .number(Double(request.maxTokens ?? defaultMaxTokens))
        var system = request.system
        if request.sourceProtocol != .anthropic, let instruction = JSONOutputInstruction.text(for: request.responseFormat) {
            system = [system, instruction].compactMap { $0 }.joined(separator: "\n\n")
        }
        if let system { object["system"] = .string(system) }
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
        // Anthropic answers only a conversation that opens with a user turn; a system-only
        // conversation (or one opening with the assistant) gets a minimal one, the system text
        // staying in `system`.
        if messages.first?["role"]?.stringValue != "user" {
            messages.insert(["role": "user", "content": .string(placeholderUserTurn)], at: 0)
        }
        object["messages"] = .array(messages)
        let maxTokens = request.maxTokens ?? defaultMaxTokens
        var thinking = false
        // Forced tool use and thinking do not go together on Anthropic: the tool choice wins.
        let forcedTool = request.toolChoice == .required || { if case .named = request.toolChoice { true } else { false } }()
        if request.sourceProtocol != .anthropic, !forcedTool, let effort = request.reasoningEffort,
           let budget = ReasoningTranslation.budget(forEffort: effort).flatMap({ ReasoningTranslation.fitted(budget: $0, maxTokens: maxTokens) })
        {
            object["thinking"] = ["type": "enabled", "budget_tokens": .number(Double(budget))]
            thinking = true
        }
        thinking = thinking || request.thinkingBudget != nil
        // Extended thinking takes no sampling changes: Anthropic refuses temperature and top_p with it.
        if !thinking, let temperature = request.temperature { object["temperature"] = .number(min(temperature, 1)) }
        if !thinking, let topP = request.topP { object["top_p"] = .number(topP) }
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
