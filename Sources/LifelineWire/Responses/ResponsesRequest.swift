/// One `POST /v1/responses` request: the chat it asks for, and what its answer object echoes and stores.
public struct ResponsesTurn: Sendable, Equatable {
    /// The conversation in Lifeline's terms: instructions as the system prompt, input items as messages.
    public var chat: ChatRequest
    /// Whether the answer is kept for `GET /v1/responses/{id}` and `previous_response_id` (OpenAI's default: true).
    public var store: Bool
    public var previousResponseID: String?
    public var instructions: String?
    /// This turn's input as items; a string input is one user message item.
    public var input: [JSONValue]
    /// Earlier turns' input and output items, from `previous_response_id`; empty without one.
    public private(set) var history: [JSONValue] = []
    /// Request fields the response object echoes back, in OpenAI's response shape.
    public var echoed: [String: JSONValue]

    /// Puts a stored conversation (earlier input and output items) before this turn's input.
    public mutating func continuing(from history: [JSONValue]) throws(RequestError) {
        let earlier: ResponsesRequest.Conversation
        do {
            earlier = try ResponsesRequest.conversation(history, path: "input")
        } catch {
            throw RequestError("The response named by 'previous_response_id' cannot be continued: \(error.message)", param: "previous_response_id")
        }
        let current = try ResponsesRequest.conversation(input, path: "input")
        self.history = history
        chat.messages = earlier.messages + current.messages
        let system = (instructions.map { [$0] } ?? []) + earlier.system + current.system
        chat.system = system.isEmpty ? nil : system.joined(separator: "\n\n")
    }

    /// Everything said up to this turn's answer, as items: what a later turn continues from.
    public func conversation(appending output: [JSONValue]) -> [JSONValue] {
        history + input + output.map(ResponsesRequest.inputItem(fromOutput:))
    }
}

/// OpenAI Responses requests: decoding with validation into a `ChatRequest`.
///
/// Only function tools are supported; hosted tools (web search, files, code) have no upstream
/// counterpart in the chat protocols Lifeline routes to, so they are refused by name.
public enum ResponsesRequest {
    /// Fields read or checked; any other is refused, as OpenAI refuses unknown parameters.
    static let knownKeys: Set<String> = [
        "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "stream", "store",
        "previous_response_id", "tools", "tool_choice", "parallel_tool_calls", "metadata", "user", "text",
        "truncation", "include", "reasoning", "service_tier", "top_logprobs", "stream_options", "background",
        "prompt_cache_key", "safety_identifier", "max_tool_calls",
    ]

    public static func decode(_ body: JSONValue) throws(RequestError) -> ResponsesTurn {
        guard let object = body.objectValue else {
            throw RequestError("The request body must be a JSON object, not \(body.typeName).", param: nil)
        }
        if let unknown = object.keys.sorted().first(where: { !knownKeys.contains($0) }) {
            throw RequestError("Unknown parameter: '\(unknown)'.", param: unknown)
        }
        let fields = FieldReader(object)
        let model = try fields.requiredString("model")
        let input: [JSONValue]
        switch fields.value("input") {
        case nil: throw .missing("input")
        case .string(let text)?: input = [["type": "message", "role": "user", "content": .string(text)]]
        case .array(let items)?:
            guard !items.isEmpty else { throw .range("input", "expected a string or a non-empty array of input items") }
            input = items
        case let other?: throw .type("input", expected: "a string or an array of input items", got: other)
        }
        let instructions = try fields.string("instructions")
        let conversation = try conversation(input, path: "input")
        var chat = ChatRequest(model: model, messages: conversation.messages, sourceProtocol: .openai)
        let system = (instructions.map { [$0] } ?? []) + conversation.system
        chat.system = system.isEmpty ? nil : system.joined(separator: "\n\n")
        chat.maxTokens = try fields.int("max_output_tokens", in: 16...10_000_000)
        chat.temperature = try fields.double("temperature", in: 0...2)
        chat.topP = try fields.double("top_p", in: 0...1)
        chat.stream = try fields.bool("stream") ?? false
        chat.tools = try tools(fields)
        chat.toolChoice = try toolChoice(fields)
        let user = try fields.string("user")
        chat.user = try fields.string("safety_identifier") ?? user
        chat.responseFormat = try responseFormat(fields)

        if try fields.object("stream_options") != nil, !chat.stream {
            throw RequestError("The 'stream_options' parameter is only allowed when 'stream' is enabled.", param: "stream_options")
        }
        if try fields.bool("background") == true {
            throw RequestError("Background responses are not supported by this gateway; send 'background': false.", param: "background")
        }
        let parallelToolCalls = try fields.bool("parallel_tool_calls") ?? true
        let metadata = try self.metadata(fields)
        if let truncation = try fields.string("truncation"), !["auto", "disabled"].contains(truncation) {
            throw .range("truncation", "expected one of auto, disabled, but got '\(truncation)'")
        }
        if let tier = try fields.string("service_tier"), !["auto", "default", "flex", "scale", "priority"].contains(tier) {
            throw .range("service_tier", "expected one of auto, default, flex, scale, priority, but got '\(tier)'")
        }
        for (index, entry) in (try fields.array("include") ?? []).enumerated() where entry.stringValue == nil {
            throw .type("include[\(index)]", expected: "a string", got: entry)
        }
        _ = try fields.object("reasoning")
        _ = try fields.int("top_logprobs", in: 0...20)
        _ = try fields.int("max_tool_calls", in: 1...10_000)
        _ = try fields.string("prompt_cache_key")

        var echoed: [String: JSONValue] = [
            "tools": .array(chat.tools.map(toolObject)),
            "tool_choice": toolChoiceObject(chat.toolChoice),
            "parallel_tool_calls": .bool(parallelToolCalls),
            "temperature": chat.temperature.map(JSONValue.number) ?? 1.0,
            "top_p": chat.topP.map(JSONValue.number) ?? 1.0,
            "max_output_tokens": chat.maxTokens.map { .number(Double($0)) } ?? .null,
            "metadata": .object(metadata),
            "instructions": instructions.map(JSONValue.string) ?? .null,
            "user": user.map(JSONValue.string) ?? .null,
            "truncation": .string(try fields.string("truncation") ?? "disabled"),
            "text": ["format": try fields.object("text")?["format"] ?? ["type": "text"]],
        ]
        let store = try fields.bool("store") ?? true
        echoed["store"] = .bool(store)
        let previous = try fields.string("previous_response_id")
        echoed["previous_response_id"] = previous.map(JSONValue.string) ?? .null
        return ResponsesTurn(chat: chat, store: store, previousResponseID: previous, instructions: instructions, input: input, echoed: echoed)
    }

    /// Input items in chat terms: system and developer messages join the system prompt.
    struct Conversation {
        var system: [String] = []
        var messages: [ChatMessage] = []
    }

    static func conversation(_ items: [JSONValue], path: String) throws(RequestError) -> Conversation {
        var conversation = Conversation()
        for (index, raw) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let item = raw.objectValue else { throw .type(itemPath, expected: "an object", got: raw) }
            let reader = FieldReader(item, path: itemPath)
            // An "easy input message" has a role and no type.
            let type = try reader.string("type") ?? (item["role"] != nil ? "message" : nil)
            switch type {
            case "message"?:
                let role = try reader.requiredString("role")
                let parts = try content(reader, role: role)
                switch role {
                case "system", "developer":
                    conversation.system.append(parts.map { if case .text(let text) = $0 { text } else { "" } }.joined())
                case "user":
                    conversation.messages.append(ChatMessage(role: .user, content: parts))
                case "assistant":
                    conversation.messages.append(ChatMessage(role: .assistant, content: parts))
                default:
                    throw .range(reader.name("role"), "expected one of user, assistant, system, developer, but got '\(role)'")
                }
            case "function_call"?:
                let call = ToolCall(id: try reader.requiredString("call_id"), name: try reader.requiredString("name"),
                                    arguments: try reader.requiredString("arguments"))
                // Calls that follow an assistant message (or each other) belong to that message.
                if let last = conversation.messages.indices.last, conversation.messages[last].role == .assistant {
                    conversation.messages[last].toolCalls.append(call)
                } else {
                    conversation.messages.append(ChatMessage(role: .assistant, content: [], toolCalls: [call]))
                }
            case "function_call_output"?:
                let callID = try reader.requiredString("call_id")
                let output: String
                switch reader.value("output") {
                case nil: throw .missing(reader.name("output"))
                case .string(let text)?: output = text
                case .array?:
                    output = try content(reader, key: "output", role: "user").map { if case .text(let text) = $0 { text } else { "" } }.joined()
                case let other?: throw .type(reader.name("output"), expected: "a string or an array of content parts", got: other)
                }
                conversation.messages.append(ChatMessage(role: .tool, content: [.text(output)], toolCallID: callID))
            case "reasoning"?:
                // Reasoning items carry nothing a chat upstream can take back in; the answer they led to follows them.
                continue
            case let other?:
                throw .range(reader.name("type"), "expected one of message, function_call, function_call_output, reasoning, but got '\(other)'")
            case nil:
                throw .missing(reader.name("type"))
            }
        }
        return conversation
    }

    /// A message's content: a string, or parts whose types fit the role (`output_text` for the assistant).
    private static func content(_ reader: FieldReader, key: String = "content", role: String) throws(RequestError) -> [ContentPart] {
        guard let value = reader.value(key) else { throw .missing(reader.name(key)) }
        if let text = value.stringValue { return [.text(text)] }
        guard let parts = value.arrayValue else {
            throw .type(reader.name(key), expected: "a string or an array of content parts", got: value)
        }
        let allowed = role == "assistant" ? ["output_text", "refusal"] : ["input_text", "input_image"]
        var result: [ContentPart] = []
        for (index, rawPart) in parts.enumerated() {
            let path = reader.name(key) + "[\(index)]"
            guard let part = rawPart.objectValue else { throw .type(path, expected: "an object", got: rawPart) }
            let partReader = FieldReader(part, path: path)
            let type = try partReader.requiredString("type")
            guard allowed.contains(type) else {
                throw .range(partReader.name("type"), "expected one of \(allowed.joined(separator: ", ")) for a\(role == "assistant" ? "n" : "") \(role) message, but got '\(type)'")
            }
            switch type {
            case "refusal": result.append(.text(try partReader.requiredString("refusal")))
            case "input_image":
                guard let url = try partReader.string("image_url") else {
                    throw RequestError("Lifeline accepts images by 'image_url' (a data: or https: URL), not by 'file_id'.", param: partReader.name("image_url"))
                }
                var image: [String: JSONValue] = ["url": .string(url)]
                if let detail = try partReader.string("detail") { image["detail"] = .string(detail) }
                result.append(.media(["type": "image_url", "image_url": .object(image)], source: .openai))
            default: result.append(.text(try partReader.requiredString("text")))
            }
        }
        return result
    }

    /// Function tools in Responses' flat shape: `{type, name, description, parameters, strict}`.
    private static func tools(_ fields: FieldReader) throws(RequestError) -> [ToolDefinition] {
        var definitions: [ToolDefinition] = []
        for (index, raw) in (try fields.array("tools") ?? []).enumerated() {
            let path = "tools[\(index)]"
            guard let tool = raw.objectValue else { throw .type(path, expected: "an object", got: raw) }
            let reader = FieldReader(tool, path: path)
            let type = try reader.requiredString("type")
            guard type == "function" else {
                throw .range(reader.name("type"), "only 'function' tools are supported by this gateway, but got '\(type)'")
            }
            _ = try reader.bool("strict")
            definitions.append(ToolDefinition(
                name: try reader.requiredString("name"),
                description: try reader.string("description"),
                parameters: try reader.object("parameters").map(JSONValue.object) ?? ["type": "object", "properties": [:]]))
        }
        return definitions
    }

    private static func toolChoice(_ fields: FieldReader) throws(RequestError) -> ToolChoice? {
        guard let value = fields.value("tool_choice") else { return nil }
        switch value {
        case .string("auto"): return .auto
        case .string("none"): return ToolChoice.none
        case .string("required"): return .required
        case .object(let object) where object["type"] == "function":
            guard let name = object["name"]?.stringValue else { throw .missing("tool_choice.name") }
            return .named(name)
        default:
            throw .range("tool_choice", "expected 'auto', 'none', 'required' or {\"type\": \"function\", \"name\": …}")
        }
    }

    /// `text.format` as a chat `response_format`.
    private static func responseFormat(_ fields: FieldReader) throws(RequestError) -> JSONValue? {
        guard let text = try fields.object("text") else { return nil }
        guard let format = try FieldReader(text, path: "text").object("format") else { return nil }
        let reader = FieldReader(format, path: "text.format")
        switch try reader.requiredString("type") {
        case "text": return nil
        case "json_object": return ["type": "json_object"]
        case "json_schema":
            var schema: [String: JSONValue] = ["name": .string(try reader.requiredString("name"))]
            guard let body = try reader.object("schema") else { throw .missing(reader.name("schema")) }
            schema["schema"] = .object(body)
            if let strict = try reader.bool("strict") { schema["strict"] = .bool(strict) }
            if let description = try reader.string("description") { schema["description"] = .string(description) }
            return ["type": "json_schema", "json_schema": .object(schema)]
        case let other:
            throw .range("text.format.type", "expected one of text, json_object, json_schema, but got '\(other)'")
        }
    }

    /// `metadata`: at most 16 string values, keys up to 64 characters, values up to 512.
    private static func metadata(_ fields: FieldReader) throws(RequestError) -> [String: JSONValue] {
        guard let metadata = try fields.object("metadata") else { return [:] }
        guard metadata.count <= 16 else { throw .range("metadata", "expected an object with at most 16 properties, but got \(metadata.count)") }
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            guard key.count <= 64 else { throw .range("metadata", "keys must be at most 64 characters long") }
            guard let text = value.stringValue else { throw .type("metadata.\(key)", expected: "a string", got: value) }
            guard text.count <= 512 else { throw .range("metadata.\(key)", "expected a string of at most 512 characters") }
        }
        return metadata
    }

    static func toolObject(_ tool: ToolDefinition) -> JSONValue {
        ["type": "function", "name": .string(tool.name), "description": tool.description.map(JSONValue.string) ?? .null,
         "parameters": tool.parameters, "strict": false]
    }

    static func toolChoiceObject(_ choice: ToolChoice?) -> JSONValue {
        switch choice {
        case nil, .auto?: "auto"
        case .none?: "none"
        case .required?: "required"
        case .named(let name)?: ["type": "function", "name": .string(name)]
        }
    }

    /// An output item as the input item a later turn sends back: messages keep role and content, calls their ids.
    static func inputItem(fromOutput item: JSONValue) -> JSONValue {
        switch item["type"]?.stringValue {
        case "message"?:
            let content = (item["content"]?.arrayValue ?? []).filter { $0["type"] == "output_text" }
                .map { part -> JSONValue in ["type": "output_text", "text": part["text"] ?? ""] }
            return ["type": "message", "role": "assistant", "content": .array(content)]
        case "function_call"?:
            return ["type": "function_call", "call_id": item["call_id"] ?? "", "name": item["name"] ?? "", "arguments": item["arguments"] ?? "{}"]
        default:
            return item
        }
    }
}
