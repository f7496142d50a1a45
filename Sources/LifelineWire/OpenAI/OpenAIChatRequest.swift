/// OpenAI Chat Completions requests: decoding with validation, and encoding for upstreams.
public enum OpenAIChatRequest {
    /// Fields read into `ChatRequest`; any other field is forwarded as passthrough.
    static let modelledKeys: Set<String> = [
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed", "n",
        "stream", "stream_options", "tools", "tool_choice", "response_format", "logprobs", "top_logprobs", "user",
    ]

    public static func decode(_ body: JSONValue) throws(RequestError) -> ChatRequest {
        guard let object = body.objectValue else {
            throw RequestError("The request body must be a JSON object, not \(body.typeName).", param: nil)
        }
        let fields = FieldReader(object)
        let model = try fields.requiredString("model")
        guard let rawMessages = try fields.array("messages", minimum: 1) else { throw .missing("messages") }
        try OpenAIChatValidation.validate(fields)

        var system: [String] = []
        var messages: [ChatMessage] = []
        for (index, raw) in rawMessages.enumerated() {
            let path = "messages[\(index)]"
            guard let message = raw.objectValue else { throw .type(path, expected: "an object", got: raw) }
            let reader = FieldReader(message, path: path)
            let role = try reader.requiredString("role")
            switch role {
            case "system", "developer":
                system.append(try textContent(reader))
            case "user":
                messages.append(ChatMessage(role: .user, content: try contentParts(reader, userParts: true)))
            case "assistant":
                var toolCalls: [ToolCall] = []
                for (callIndex, rawCall) in (try reader.array("tool_calls") ?? []).enumerated() {
                    let callPath = reader.name("tool_calls") + "[\(callIndex)]"
                    guard let call = rawCall.objectValue else { throw .type(callPath, expected: "an object", got: rawCall) }
                    let callReader = FieldReader(call, path: callPath)
                    guard let function = try callReader.object("function") else { throw .missing(callReader.name("function")) }
                    let functionReader = FieldReader(function, path: callReader.name("function"))
                    _ = try callReader.enumeration("type", ["function"])
                    toolCalls.append(ToolCall(
                        id: try callReader.requiredString("id"),
                        name: try functionReader.requiredString("name"),
                        arguments: try functionReader.string("arguments") ?? "{}"))
                }
                guard reader.value("content") != nil || !toolCalls.isEmpty || reader.value("refusal") != nil || reader.value("audio") != nil else {
                    throw RequestError("Invalid value for '\(reader.name("content"))': an assistant message needs 'content' unless it has 'tool_calls'.",
                                       param: reader.name("content"))
                }
                let content = reader.value("content") == nil ? [] : try contentParts(reader)
                messages.append(ChatMessage(role: .assistant, content: content, toolCalls: toolCalls))
            case "tool":
                let callID = try reader.requiredString("tool_call_id")
                messages.append(ChatMessage(role: .tool, content: [.text(try textContent(reader))], toolCallID: callID))
            case "function":
                throw .range(reader.name("role"), "the deprecated 'function' role is not supported; use 'tool'")
            default:
                throw .notOneOf(reader.name("role"), role, allowed: ["system", "assistant", "user", "function", "tool", "developer"])
            }
        }

        var request = ChatRequest(model: model, messages: messages, sourceProtocol: .openai)
        request.system = system.isEmpty ? nil : system.joined(separator: "\n\n")
        request.reasoningEffort = try fields.string("reasoning_effort")
        let legacyMaxTokens = try fields.int("max_tokens", in: 1...10_000_000)
        request.maxTokens = try fields.int("max_completion_tokens", in: 1...10_000_000) ?? legacyMaxTokens
        request.temperature = try fields.double("temperature", in: 0...2)
        request.topP = try fields.double("top_p", in: 0...1)
        request.stop = try fields.strings("stop", maximum: 4)
        request.seed = try fields.int("seed")
        request.choiceCount = try fields.int("n", in: 1...128) ?? 1
        request.stream = try fields.bool("stream") ?? false
        if let options = try fields.object("stream_options") {
            guard request.stream else {
                throw RequestError("The 'stream_options' parameter is only allowed when 'stream' is enabled.", param: "stream_options")
            }
            let optionsReader = fields.nested(options, at: "stream_options")
            request.includeUsage = try optionsReader.bool("include_usage") ?? false
            _ = try optionsReader.bool("include_obfuscation")
        }
        request.tools = try tools(fields)
        request.toolChoice = try toolChoice(fields)
        if let format = try fields.object("response_format") {
            let formatReader = fields.nested(format, at: "response_format")
            guard let type = try formatReader.enumeration("type", ["text", "json_schema", "json_object"]) else { throw .missing("response_format.type") }
            if type == "json_schema" {
                guard let schema = try formatReader.object("json_schema") else { throw .missing("response_format.json_schema") }
                let schemaReader = formatReader.nested(schema, at: "response_format.json_schema")
                try OpenAIChatValidation.checkName(try schemaReader.requiredString("name"), param: "response_format.json_schema.name")
                _ = try schemaReader.string("description")
                _ = try schemaReader.object("schema")
                _ = try schemaReader.bool("strict")
            }
            request.responseFormat = .object(format)
        }
        request.logprobs = try fields.bool("logprobs") ?? false
        request.topLogprobs = try fields.int("top_logprobs", in: 0...20)
        if request.topLogprobs != nil, !request.logprobs {
            throw RequestError("'top_logprobs' requires 'logprobs' to be true.", param: "top_logprobs")
        }
        request.user = try fields.string("user")
        request.passthrough = object.filter { !modelledKeys.contains($0.key) }
        return request
    }

    /// Text only: system, developer and tool messages take a string or text parts.
    private static func textContent(_ reader: FieldReader) throws(RequestError) -> String {
        try contentParts(reader, textOnly: true).map { part -> String in
            if case .text(let text) = part { return text }
            return ""
        }.joined()
    }

    private static func contentParts(_ reader: FieldReader, userParts: Bool = false, textOnly: Bool = false) throws(RequestError) -> [ContentPart] {
        guard let value = reader.value("content") else { throw .missing(reader.name("content")) }
        if let text = value.stringValue { return [.text(text)] }
        guard let parts = value.arrayValue else {
            throw .type(reader.name("content"), expected: "a string or an array of content parts", got: value)
        }
        guard !parts.isEmpty else { throw .size(reader.name("content"), of: "array", count: 0, minimum: 1) }
        var result: [ContentPart] = []
        for (index, rawPart) in parts.enumerated() {
            let path = reader.name("content") + "[\(index)]"
            guard let part = rawPart.objectValue else { throw .type(path, expected: "an object", got: rawPart) }
            let partReader = FieldReader(part, path: path)
            let type = try partReader.requiredString("type")
            if textOnly, type != "text" { throw .notOneOf(partReader.name("type"), type, allowed: ["text"]) }
            if userParts { try OpenAIChatValidation.checkUserPart(partReader, type: type) }
            switch type {
            case "text": result.append(.text(try partReader.requiredString("text")))
            case "refusal" where !userParts: _ = try partReader.requiredString("refusal")
            default: result.append(.media(rawPart, source: .openai))
            }
        }
        return result
    }

    private static func tools(_ fields: FieldReader) throws(RequestError) -> [ToolDefinition] {
        var definitions: [ToolDefinition] = []
        for (index, raw) in (try fields.array("tools") ?? []).enumerated() {
            let path = "tools[\(index)]"
            guard let tool = raw.objectValue else { throw .type(path, expected: "an object", got: raw) }
            let reader = FieldReader(tool, path: path)
            let type = try reader.requiredString("type")
            guard type == "function" else { throw .range(reader.name("type"), "only 'function' tools are supported") }
            guard let function = try reader.object("function") else { throw .missing(reader.name("function")) }
            let functionReader = FieldReader(function, path: reader.name("function"))
            let name = try functionReader.requiredString("name")
            try OpenAIChatValidation.checkName(name, param: functionReader.name("name"))
            _ = try functionReader.bool("strict")
            definitions.append(ToolDefinition(
                name: name,
                description: try functionReader.string("description"),
                parameters: try functionReader.object("parameters").map(JSONValue.object) ?? ["type": "object", "properties": [:]]))
        }
        return definitions
    }

    private static func toolChoice(_ fields: FieldReader) throws(RequestError) -> ToolChoice? {
        guard let value = fields.value("tool_choice") else { return nil }
        switch value {
        case .string("auto"): return .auto
        case .string("none"): return ToolChoice.none
        case .string("required"): return .required
        case .string(let other):
            throw .notOneOf("tool_choice", other, allowed: ["none", "auto", "required"])
        case .object(let object):
            let reader = fields.nested(object, at: "tool_choice")
            switch try reader.enumeration("type", ["function", "allowed_tools", "custom"]) {
            case "allowed_tools":
                guard let allowed = try reader.object("allowed_tools") else { throw .missing("tool_choice.allowed_tools") }
                let mode = try reader.nested(allowed, at: "tool_choice.allowed_tools").enumeration("mode", ["auto", "required"])
                return mode == "required" ? .required : .auto
            case "custom":
                throw .range("tool_choice.type", "only 'function' tools are supported")
            default:
                guard let function = try reader.object("function") else { throw .missing("tool_choice.function") }
                return .named(try reader.nested(function, at: "tool_choice.function").requiredString("name"))
            }
        default:
            throw .type("tool_choice", expected: "a string or an object", got: value)
        }
    }

    /// The request body for an OpenAI-protocol upstream.
    public static func encode(_ request: ChatRequest, upstreamModel: String, stream: Bool) -> JSONValue {
        var object: [String: JSONValue] = request.sourceProtocol == .openai ? request.passthrough : [:]
        object["model"] = .string(upstreamModel)
        var messages: [JSONValue] = []
        if let system = request.system { messages.append(["role": "system", "content": .string(system)]) }
        for message in request.messages {
            switch message.role {
            case .user:
                messages.append(["role": "user", "content": encodeContent(message.content)])
            case .assistant:
                var entry: [String: JSONValue] = ["role": "assistant", "content": message.content.isEmpty && !message.toolCalls.isEmpty ? .null : .string(message.text)]
                if !message.toolCalls.isEmpty {
                    entry["tool_calls"] = .array(message.toolCalls.map {
                        ["id": .string($0.id), "type": "function", "function": ["name": .string($0.name), "arguments": .string($0.arguments)]]
                    })
                }
                messages.append(.object(entry))
            case .tool:
                messages.append(["role": "tool", "tool_call_id": .string(message.toolCallID ?? ""), "content": .string(message.text)])
            }
        }
        object["messages"] = .array(messages)
        if let maxTokens = request.maxTokens { object["max_tokens"] = .number(Double(maxTokens)) }
        if let temperature = request.temperature { object["temperature"] = .number(temperature) }
        if let topP = request.topP { object["top_p"] = .number(topP) }
        if !request.stop.isEmpty { object["stop"] = .array(request.stop.map(JSONValue.string)) }
        if let seed = request.seed { object["seed"] = .number(Double(seed)) }
        if request.choiceCount != 1 { object["n"] = .number(Double(request.choiceCount)) }
        if stream {
            object["stream"] = true
            object["stream_options"] = ["include_usage": true]
        }
        if !request.tools.isEmpty {
            object["tools"] = .array(request.tools.map { tool in
                var function: [String: JSONValue] = ["name": .string(tool.name), "parameters": tool.parameters]
                if let description = tool.description { function["description"] = .string(description) }
                return ["type": "function", "function": .object(function)]
            })
        }
        // OpenAI takes a tool choice only with tools; Anthropic's reference lets one come alone.
        switch request.tools.isEmpty ? nil : request.toolChoice {
        case .some(.auto): object["tool_choice"] = "auto"
        case .some(.none): object["tool_choice"] = "none"
        case .some(.required): object["tool_choice"] = "required"
        case .some(.named(let name)): object["tool_choice"] = ["type": "function", "function": ["name": .string(name)]]
        case nil: break
        }
        if let format = request.responseFormat { object["response_format"] = format }
        if request.logprobs { object["logprobs"] = true }
        if let top = request.topLogprobs { object["top_logprobs"] = .number(Double(top)) }
        if let user = request.user { object["user"] = .string(user) }
        if request.sourceProtocol != .openai, let budget = request.thinkingBudget {
            object["reasoning_effort"] = .string(ReasoningTranslation.effort(forBudget: budget))
        }
        return .object(object)
    }

    private static func encodeContent(_ parts: [ContentPart]) -> JSONValue {
        if parts.allSatisfy({ if case .text = $0 { true } else { false } }) {
            return .string(parts.map { if case .text(let t) = $0 { t } else { "" } }.joined())
        }
        return .array(parts.compactMap { part -> JSONValue? in
            switch part {
            case .text(let text): return ["type": "text", "text": .string(text)]
            case .media(let value, source: .openai), .media(let value, source: .azureOpenAI): return value
            case .media(let value, source: .anthropic): return AnthropicMedia.toOpenAI(value)
            case .media(let value, source: .gemini): return GeminiMedia.toOpenAI(value)
            case .media(let value, source: .bedrock): return BedrockMedia.toOpenAI(value)
            }
        })
    }
}

/// Converts image parts between the two APIs where both can express them.
enum AnthropicMedia {
    static func toOpenAI(_ block: JSONValue) -> JSONValue? {
        guard block["type"]?.stringValue == "image", let source = block["source"] else { return nil }
        if source["type"]?.stringValue == "url", let url = source["url"]?.stringValue {
            return ["type": "image_url", "image_url": ["url": .string(url)]]
        }
        if let media = source["media_type"]?.stringValue, let data = source["data"]?.stringValue {
            return ["type": "image_url", "image_url": ["url": .string("data:\(media);base64,\(data)")]]
        }
        return nil
    }

    static func fromOpenAI(_ part: JSONValue) -> JSONValue? {
        guard part["type"]?.stringValue == "image_url", let url = part["image_url"]?["url"]?.stringValue else { return nil }
        if url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") {
            let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
            let media = header.split(separator: ";").first.map(String.init) ?? "image/png"
            return ["type": "image", "source": ["type": "base64", "media_type": .string(media), "data": .string(String(url[url.index(after: comma)...]))]]
        }
        return ["type": "image", "source": ["type": "url", "url": .string(url)]]
    }
}
