import Foundation

/// Amazon Bedrock Converse requests (`POST /model/{modelId}/converse` and `/converse-stream`):
/// encoding for upstreams, and decoding with validation for the simulator.
public enum BedrockConverseRequest {
    /// The request path for a model id (or ARN): the id is one path segment, percent-encoded.
    public static func path(modelID: String, stream: Bool) -> String {
        "/model/" + AWSSignatureV4.uriEncode(modelID, keepSlash: false) + (stream ? "/converse-stream" : "/converse")
    }

    /// The body for a Bedrock upstream; the model travels in the path.
    ///
    /// Not expressible in Converse, so not sent: `n` above 1, `logprobs`, `seed`, `user`,
    /// `reasoning_effort` and thinking budgets, images given by URL, and `tool_choice: none` (the
    /// tools are then left out unless the conversation already used them, which Converse requires
    /// to declare them). `response_format` becomes an instruction in the system prompt, as for Anthropic.
    public static func encode(_ request: ChatRequest) -> JSONValue {
        var object: [String: JSONValue] = [:]
        var system = request.system
        if let instruction = JSONOutputInstruction.text(for: request.responseFormat) {
            system = [system, instruction].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: "\n\n")
        }
        if let system, !system.isEmpty { object["system"] = [["text": .string(system)]] }
        var messages: [JSONValue] = []
        var pendingRole: String?
        var pendingBlocks: [JSONValue] = []
        // Converse wants user and assistant turns alternating: tool results and user text that
        // follow each other share one user turn.
        func append(role: String, _ blocks: [JSONValue]) {
            if pendingRole != role, let previous = pendingRole {
                messages.append(["role": .string(previous), "content": .array(pendingBlocks)])
                pendingBlocks = []
            }
            pendingRole = role
            pendingBlocks += blocks
        }
        var usesTools = false
        for message in request.messages {
            switch message.role {
            case .tool:
                usesTools = true
                append(role: "user", [["toolResult": ["toolUseId": .string(message.toolCallID ?? ""),
                                                      "content": [["text": .string(message.text)]]]]])
            case .user:
                let blocks = encodeBlocks(message.content)
                append(role: "user", blocks.isEmpty ? [["text": " "]] : blocks)
            case .assistant:
                var blocks = encodeBlocks(message.content).filter { $0["text"]?.stringValue?.isEmpty != true }
                for call in message.toolCalls {
                    usesTools = true
                    let input = (try? JSONCoding.decode(Array(call.arguments.utf8))) ?? [:]
                    blocks.append(["toolUse": ["toolUseId": .string(call.id), "name": .string(call.name),
                                               "input": input.objectValue != nil ? input : [:]]])
                }
                if !blocks.isEmpty { append(role: "assistant", blocks) }
            }
        }
        if let role = pendingRole { messages.append(["role": .string(role), "content": .array(pendingBlocks)]) }
        // Converse answers only a conversation that opens with a user turn: a system-only one (or
        // one opening with the assistant) gets a minimal one, as for Anthropic.
        if messages.first?["role"]?.stringValue != "user" {
            messages.insert(["role": "user", "content": [["text": .string(AnthropicMessagesRequest.placeholderUserTurn)]]], at: 0)
        }
        object["messages"] = .array(messages)
        var inference: [String: JSONValue] = [:]
        if let maxTokens = request.maxTokens { inference["maxTokens"] = .number(Double(maxTokens)) }
        if let temperature = request.temperature { inference["temperature"] = .number(min(temperature, 1)) }
        if let topP = request.topP { inference["topP"] = .number(topP) }
        if !request.stop.isEmpty { inference["stopSequences"] = .array(request.stop.map(JSONValue.string)) }
        if !inference.isEmpty { object["inferenceConfig"] = .object(inference) }
        if !request.tools.isEmpty, request.toolChoice != ToolChoice.none || usesTools {
            var config: [String: JSONValue] = ["tools": .array(request.tools.map { tool in
                var spec: [String: JSONValue] = ["name": .string(tool.name), "inputSchema": ["json": tool.parameters]]
                if let description = tool.description, !description.isEmpty { spec["description"] = .string(description) }
                return ["toolSpec": .object(spec)]
            })]
            switch request.toolChoice {
            case .some(.auto): config["toolChoice"] = ["auto": [:]]
            case .some(.required): config["toolChoice"] = ["any": [:]]
            case .some(.named(let name)): config["toolChoice"] = ["tool": ["name": .string(name)]]
            case .some(.none), nil: break
            }
            object["toolConfig"] = .object(config)
        }
        return .object(object)
    }

    private static func encodeBlocks(_ parts: [ContentPart]) -> [JSONValue] {
        parts.compactMap { part in
            switch part {
            case .text(let text): ["text": .string(text)]
            case .media(let value, source: .bedrock): value
            case .media(let value, source: .openai), .media(let value, source: .azureOpenAI): BedrockMedia.fromOpenAI(value)
            case .media(let value, source: .anthropic): BedrockMedia.fromAnthropic(value)
            case .media(let value, source: .gemini): GeminiMedia.toOpenAI(value).flatMap(BedrockMedia.fromOpenAI)
            }
        }
    }

    /// A Converse body as the simulator receives it; names the first bad field.
    public static func decode(_ body: JSONValue, modelID: String, stream: Bool) throws(RequestError) -> ChatRequest {
        guard let object = body.objectValue else {
            throw RequestError("The request body must be a JSON object, not \(body.typeName).", param: nil)
        }
        let fields = FieldReader(object)
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
        var request = ChatRequest(model: modelID, messages: messages, sourceProtocol: .bedrock)
        request.stream = stream
        request.includeUsage = true
        if let system = try fields.array("system") {
            var texts: [String] = []
            for (index, block) in system.enumerated() {
                guard let text = block["text"]?.stringValue else { throw .missing("system[\(index)].text") }
                texts.append(text)
            }
            request.system = texts.joined(separator: "\n\n")
        }
        if let inference = try fields.object("inferenceConfig") {
            let reader = FieldReader(inference, path: "inferenceConfig")
            request.maxTokens = try reader.int("maxTokens", in: 1...10_000_000)
            request.temperature = try reader.double("temperature", in: 0...1)
            request.topP = try reader.double("topP", in: 0...1)
            request.stop = try reader.strings("stopSequences", maximum: 8192)
        }
        if let toolConfig = try fields.object("toolConfig") {
            let reader = FieldReader(toolConfig, path: "toolConfig")
            for (index, raw) in (try reader.array("tools") ?? []).enumerated() {
                let path = "toolConfig.tools[\(index)].toolSpec"
                guard let spec = raw["toolSpec"]?.objectValue else { throw .missing(path) }
                let specReader = FieldReader(spec, path: path)
                guard let schema = spec["inputSchema"]?["json"], schema.objectValue != nil else { throw .missing(path + ".inputSchema.json") }
                request.tools.append(ToolDefinition(name: try specReader.requiredString("name"), description: try specReader.string("description"),
                                                    parameters: schema))
            }
            if let choice = try reader.object("toolChoice") {
                if choice["auto"] != nil { request.toolChoice = .auto }
                else if choice["any"] != nil { request.toolChoice = .required }
                else if let name = choice["tool"]?["name"]?.stringValue { request.toolChoice = .named(name) }
                else { throw .range("toolConfig.toolChoice", "expected auto, any or tool") }
            }
        }
        return request
    }

    private static func decodeMessage(_ reader: FieldReader, assistant: Bool) throws(RequestError) -> [ChatMessage] {
        guard let blocks = try reader.array("content") else { throw .missing(reader.name("content")) }
        var results: [ChatMessage] = []
        var parts: [ContentPart] = []
        var calls: [ToolCall] = []
        for (index, block) in blocks.enumerated() {
            let path = reader.name("content") + "[\(index)]"
            guard block.objectValue != nil else { throw .type(path, expected: "an object", got: block) }
            if let text = block["text"] {
                guard let text = text.stringValue else { throw .type(path + ".text", expected: "a string", got: text) }
                parts.append(.text(text))
            } else if let use = block["toolUse"] {
                guard assistant else { throw .range(path, "toolUse blocks belong to assistant messages") }
                guard let id = use["toolUseId"]?.stringValue, let name = use["name"]?.stringValue else { throw .missing(path + ".toolUse.toolUseId") }
                calls.append(ToolCall(id: id, name: name, arguments: JSONCoding.encodeString(use["input"] ?? [:])))
            } else if let result = block["toolResult"] {
                guard !assistant else { throw .range(path, "toolResult blocks belong to user messages") }
                guard let id = result["toolUseId"]?.stringValue else { throw .missing(path + ".toolResult.toolUseId") }
                let text = (result["content"]?.arrayValue ?? []).map { item in
                    item["text"]?.stringValue ?? item["json"].map(JSONCoding.encodeString) ?? ""
                }.joined()
                results.append(ChatMessage(role: .tool, content: [.text(text)], toolCallID: id))
            } else if block["image"] != nil {
                parts.append(.media(block, source: .bedrock))
            } else {
                throw .range(path, "expected a text, image, toolUse or toolResult block")
            }
        }
        if assistant {
            results.append(ChatMessage(role: .assistant, content: parts, toolCalls: calls))
        } else if !parts.isEmpty || results.isEmpty {
            results.append(ChatMessage(role: .user, content: parts))
        }
        return results
    }
}

/// Image blocks between Converse (`{"image":{"format","source":{"bytes"}}}`, base64 bytes in
/// JSON) and the two client APIs. Only inline bytes cross: Converse takes no image URL.
enum BedrockMedia {
    static let formats = ["image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif", "image/webp": "webp"]

    static func image(mediaType: String, base64: String) -> JSONValue? {
        guard let format = formats[mediaType.lowercased()] else { return nil }
        return ["image": ["format": .string(format), "source": ["bytes": .string(base64)]]]
    }

    static func fromOpenAI(_ part: JSONValue) -> JSONValue? {
        guard part["type"]?.stringValue == "image_url", let url = part["image_url"]?["url"]?.stringValue,
              url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") else { return nil }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
        guard header.hasSuffix(";base64") else { return nil }
        return image(mediaType: String(header.dropLast(7)), base64: String(url[url.index(after: comma)...]))
    }

    static func fromAnthropic(_ block: JSONValue) -> JSONValue? {
        guard block["type"]?.stringValue == "image", block["source"]?["type"]?.stringValue == "base64",
              let media = block["source"]?["media_type"]?.stringValue, let data = block["source"]?["data"]?.stringValue else { return nil }
        return image(mediaType: media, base64: data)
    }

    /// `(media type, base64 data)` of a Converse image block.
    static func inline(_ block: JSONValue) -> (String, String)? {
        guard let format = block["image"]?["format"]?.stringValue, let bytes = block["image"]?["source"]?["bytes"]?.stringValue else { return nil }
        return ("image/" + format, bytes)
    }

    static func toOpenAI(_ block: JSONValue) -> JSONValue? {
        inline(block).map { ["type": "image_url", "image_url": ["url": .string("data:\($0.0);base64,\($0.1)")]] }
    }

    static func toAnthropic(_ block: JSONValue) -> JSONValue? {
        inline(block).map { ["type": "image", "source": ["type": "base64", "media_type": .string($0.0), "data": .string($0.1)]] }
    }
}
