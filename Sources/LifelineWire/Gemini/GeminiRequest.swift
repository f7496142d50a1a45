/// Gemini `generateContent` requests: encoding for upstreams, and decoding with validation (the
/// simulator's side, so a Gemini-protocol deployment can be tested over real sockets).
///
/// The model and whether the answer streams are in the URL (`models/{model}:generateContent`,
/// `:streamGenerateContent?alt=sse`), not the body.
public enum GeminiRequest {
    /// Gemini accepts at most this many stop sequences.
    public static let maximumStopSequences = 5

    /// The request body for a Gemini-protocol upstream.
    public static func encode(_ request: ChatRequest) -> JSONValue {
        var object: [String: JSONValue] = [:]
        if let system = request.system { object["systemInstruction"] = ["parts": [["text": .string(system)]]] }
        var turns = contents(request.messages)
        // Gemini answers only a conversation that opens with a user turn: a system-only one (or
        // one opening with the model) gets a minimal one, as for Anthropic.
        if turns.first?["role"]?.stringValue != "user" {
            turns.insert(["role": "user", "parts": [["text": .string(AnthropicMessagesRequest.placeholderUserTurn)]]], at: 0)
        }
        object["contents"] = .array(turns)
        var generation: [String: JSONValue] = [:]
        if let temperature = request.temperature { generation["temperature"] = .number(temperature) }
        if let topP = request.topP { generation["topP"] = .number(topP) }
        if let maxTokens = request.maxTokens { generation["maxOutputTokens"] = .number(Double(maxTokens)) }
        if !request.stop.isEmpty {
            generation["stopSequences"] = .array(request.stop.prefix(maximumStopSequences).map(JSONValue.string))
        }
        if request.choiceCount != 1 { generation["candidateCount"] = .number(Double(request.choiceCount)) }
        if let seed = request.seed { generation["seed"] = .number(Double(seed)) }
        switch request.responseFormat?["type"]?.stringValue {
        case "json_object":
            generation["responseMimeType"] = "application/json"
        case "json_schema":
            generation["responseMimeType"] = "application/json"
            if let schema = request.responseFormat?["json_schema"]?["schema"] { generation["responseSchema"] = GeminiSchema.sanitized(schema) }
        default:
            break
        }
        if !generation.isEmpty { object["generationConfig"] = .object(generation) }
        if !request.tools.isEmpty {
            object["tools"] = [["functionDeclarations": .array(request.tools.map { tool in
                var declaration: [String: JSONValue] = ["name": .string(tool.name), "parameters": GeminiSchema.sanitized(tool.parameters)]
                if let description = tool.description { declaration["description"] = .string(description) }
                return .object(declaration)
            })]]
        }
        switch request.toolChoice {
        case .some(.auto): object["toolConfig"] = ["functionCallingConfig": ["mode": "AUTO"]]
        case .some(.none): object["toolConfig"] = ["functionCallingConfig": ["mode": "NONE"]]
        case .some(.required): object["toolConfig"] = ["functionCallingConfig": ["mode": "ANY"]]
        case .some(.named(let name)):
            object["toolConfig"] = ["functionCallingConfig": ["mode": "ANY", "allowedFunctionNames": [.string(name)]]]
        case nil: break
        }
        return .object(object)
    }

    /// Lifeline's messages as Gemini `contents`: roles `user` and `model`, tool results as
    /// `functionResponse` parts of a user turn, consecutive turns of one role merged.
    static func contents(_ messages: [ChatMessage]) -> [JSONValue] {
        var turns: [(role: String, parts: [JSONValue])] = []
        var callNames: [String: String] = [:]
        func append(_ role: String, _ parts: [JSONValue]) {
            if let last = turns.last, last.role == role { turns[turns.count - 1].parts += parts } else { turns.append((role, parts)) }
        }
        for message in messages {
            switch message.role {
            case .user:
                append("user", message.content.compactMap(part))
            case .assistant:
                var parts = message.content.compactMap(part).filter { $0["text"]?.stringValue != "" }
                for call in message.toolCalls {
                    callNames[call.id] = call.name
                    let arguments = (try? JSONCoding.decode(Array(call.arguments.utf8)))?.objectValue ?? [:]
                    parts.append(["functionCall": ["id": .string(call.id), "name": .string(call.name), "args": .object(arguments)]])
                }
                if parts.isEmpty { parts = [["text": ""]] }
                append("model", parts)
            case .tool:
                let id = message.toolCallID ?? ""
                let name = callNames[id] ?? message.name ?? "function"
                let parsed = try? JSONCoding.decode(Array(message.text.utf8))
                let response: JSONValue = parsed?.objectValue != nil ? parsed! : ["result": .string(message.text)]
                append("user", [["functionResponse": ["id": .string(id), "name": .string(name), "response": response]]])
            }
        }
        return turns.map { ["role": .string($0.role), "parts": .array($0.parts)] }
    }

    private static func part(_ content: ContentPart) -> JSONValue? {
        switch content {
        case .text(let text): ["text": .string(text)]
        case .media(let value, source: .gemini): value
        case .media(let value, source: .openai), .media(let value, source: .azureOpenAI): GeminiMedia.fromOpenAI(value)
        case .media(let value, source: .anthropic): AnthropicMedia.toOpenAI(value).flatMap(GeminiMedia.fromOpenAI)
        case .media(let value, source: .bedrock): BedrockMedia.toOpenAI(value).flatMap(GeminiMedia.fromOpenAI)
        }
    }

    // MARK: Decoding (the simulator's side)

    /// A Gemini request body as a `ChatRequest`; `model` and `stream` come from the URL.
    public static func decode(_ body: JSONValue, model: String, stream: Bool) throws(RequestError) -> ChatRequest {
        guard let object = body.objectValue else {
            throw RequestError("The request body must be a JSON object, not \(body.typeName).", param: nil)
        }
        let fields = FieldReader(object)
        guard let rawContents = try fields.array("contents") else { throw .missing("contents") }
        guard !rawContents.isEmpty else { throw .range("contents", "expected at least one content") }
        var messages: [ChatMessage] = []
        var callIndex = 0
        for (index, raw) in rawContents.enumerated() {
            let path = "contents[\(index)]"
            guard let content = raw.objectValue else { throw .type(path, expected: "an object", got: raw) }
            let reader = FieldReader(content, path: path)
            let role = try reader.string("role") ?? "user"
            guard role == "user" || role == "model" else {
                throw .range(reader.name("role"), "expected 'user' or 'model', but got '\(role)'")
            }
            guard let parts = try reader.array("parts") else { throw .missing(reader.name("parts")) }
            var contentParts: [ContentPart] = []
            var calls: [ToolCall] = []
            for (partIndex, rawPart) in parts.enumerated() {
                let partPath = reader.name("parts") + "[\(partIndex)]"
                guard let part = rawPart.objectValue else { throw .type(partPath, expected: "an object", got: rawPart) }
                let partReader = FieldReader(part, path: partPath)
                if part["thought"]?.boolValue == true { continue }
                if let text = try partReader.string("text") {
                    contentParts.append(.text(text))
                } else if let call = try partReader.object("functionCall") {
                    guard role == "model" else { throw .range(partPath, "functionCall parts belong to model turns") }
                    let callReader = FieldReader(call, path: partReader.name("functionCall"))
                    let name = try callReader.requiredString("name")
                    let arguments = try callReader.object("args") ?? [:]
                    calls.append(ToolCall(id: try callReader.string("id") ?? "call_\(callIndex)", name: name,
                                          arguments: JSONCoding.encodeString(.object(arguments))))
                    callIndex += 1
                } else if let result = try partReader.object("functionResponse") {
                    guard role == "user" else { throw .range(partPath, "functionResponse parts belong to user turns") }
                    let resultReader = FieldReader(result, path: partReader.name("functionResponse"))
                    let name = try resultReader.requiredString("name")
                    let response = try resultReader.object("response") ?? [:]
                    let text = response.count == 1 ? response["result"]?.stringValue : nil
                    var message = ChatMessage(role: .tool, content: [.text(text ?? JSONCoding.encodeString(.object(response)))],
                                              toolCallID: try resultReader.string("id") ?? name)
                    message.name = name
                    messages.append(message)
                } else if part["inlineData"] != nil || part["fileData"] != nil {
                    contentParts.append(.media(rawPart, source: .gemini))
                } else {
                    throw .range(partPath, "expected one of text, inlineData, fileData, functionCall, functionResponse")
                }
            }
            if role == "model" {
                messages.append(ChatMessage(role: .assistant, content: contentParts, toolCalls: calls))
            } else if !contentParts.isEmpty {
                messages.append(ChatMessage(role: .user, content: contentParts))
            }
        }
        var request = ChatRequest(model: model.hasPrefix("models/") ? String(model.dropFirst(7)) : model, messages: messages, sourceProtocol: .gemini)
        request.stream = stream
        request.includeUsage = true
        if let instruction = try fields.object("systemInstruction") {
            let parts = try FieldReader(instruction, path: "systemInstruction").array("parts") ?? []
            request.system = parts.compactMap { $0["text"]?.stringValue }.joined(separator: "\n\n")
        }
        if let generation = try fields.object("generationConfig") {
            let config = FieldReader(generation, path: "generationConfig")
            request.temperature = try config.double("temperature", in: 0...2)
            request.topP = try config.double("topP", in: 0...1)
            request.maxTokens = try config.int("maxOutputTokens", in: 1...10_000_000)
            request.stop = try config.strings("stopSequences", maximum: maximumStopSequences)
            request.choiceCount = try config.int("candidateCount", in: 1...8) ?? 1
            request.seed = try config.int("seed")
            if let mime = try config.string("responseMimeType") {
                switch mime {
                case "text/plain": break
                case "application/json", "text/x.enum":
                    if let schema = config.value("responseSchema") {
                        request.responseFormat = ["type": "json_schema", "json_schema": ["name": "response", "schema": schema]]
                    } else {
                        request.responseFormat = ["type": "json_object"]
                    }
                default:
                    throw .range(config.name("responseMimeType"), "expected text/plain, application/json or text/x.enum, but got '\(mime)'")
                }
            }
        }
        for (index, raw) in (try fields.array("tools") ?? []).enumerated() {
            let path = "tools[\(index)]"
            guard let tool = raw.objectValue else { throw .type(path, expected: "an object", got: raw) }
            let reader = FieldReader(tool, path: path)
            for (declarationIndex, rawDeclaration) in (try reader.array("functionDeclarations") ?? []).enumerated() {
                let declarationPath = reader.name("functionDeclarations") + "[\(declarationIndex)]"
                guard let declaration = rawDeclaration.objectValue else { throw .type(declarationPath, expected: "an object", got: rawDeclaration) }
                let declarationReader = FieldReader(declaration, path: declarationPath)
                var schema = try declarationReader.object("parameters")
                if schema == nil { schema = try declarationReader.object("parametersJsonSchema") }
                request.tools.append(ToolDefinition(
                    name: try declarationReader.requiredString("name"), description: try declarationReader.string("description"),
                    parameters: schema.map(JSONValue.object) ?? ["type": "object", "properties": [:]]))
            }
        }
        if let config = try fields.object("toolConfig"), let calling = try FieldReader(config, path: "toolConfig").object("functionCallingConfig") {
            let reader = FieldReader(calling, path: "toolConfig.functionCallingConfig")
            let allowed = try reader.array("allowedFunctionNames") ?? []
            switch try reader.string("mode") ?? "AUTO" {
            case "AUTO", "MODE_UNSPECIFIED", "VALIDATED": request.toolChoice = .auto
            case "NONE": request.toolChoice = ToolChoice.none
            case "ANY": request.toolChoice = allowed.count == 1 ? .named(allowed[0].stringValue ?? "") : .required
            case let other: throw .range(reader.name("mode"), "expected AUTO, ANY, NONE or VALIDATED, but got '\(other)'")
            }
        }
        return request
    }
}

/// Gemini's schemas (function parameters, `responseSchema`) are a subset of OpenAPI 3.0's: keywords
/// outside it are refused, so they are dropped on the way.
enum GeminiSchema {
    static let keywords: Set<String> = [
        "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties", "required",
        "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf", "propertyOrdering",
        "default", "items", "minimum", "maximum",
    ]

    static func sanitized(_ schema: JSONValue) -> JSONValue {
        guard let object = schema.objectValue else { return schema }
        var kept: [String: JSONValue] = [:]
        for (key, value) in object where keywords.contains(key) {
            switch key {
            case "properties":
                kept[key] = .object((value.objectValue ?? [:]).mapValues(sanitized))
            case "items":
                kept[key] = sanitized(value)
            case "anyOf":
                kept[key] = .array((value.arrayValue ?? []).map(sanitized))
            case "type":
                // JSON Schema's `["string", "null"]` is Gemini's `nullable`.
                if let types = value.arrayValue {
                    let named = types.compactMap(\.stringValue)
                    if let first = named.first(where: { $0 != "null" }) { kept[key] = .string(first) }
                    if named.contains("null") { kept["nullable"] = true }
                } else {
                    kept[key] = value
                }
            default:
                kept[key] = value
            }
        }
        return .object(kept)
    }
}

/// Images between Gemini's parts (`inlineData`, `fileData`) and OpenAI's `image_url` parts.
enum GeminiMedia {
    static func toOpenAI(_ part: JSONValue) -> JSONValue? {
        if let inline = part["inlineData"], let mime = inline["mimeType"]?.stringValue, let data = inline["data"]?.stringValue {
            return ["type": "image_url", "image_url": ["url": .string("data:\(mime);base64,\(data)")]]
        }
        if let uri = part["fileData"]?["fileUri"]?.stringValue {
            return ["type": "image_url", "image_url": ["url": .string(uri)]]
        }
        return nil
    }

    static func fromOpenAI(_ part: JSONValue) -> JSONValue? {
        guard part["type"]?.stringValue == "image_url", let url = part["image_url"]?["url"]?.stringValue else { return nil }
        if url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") {
            let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
            let mime = header.split(separator: ";").first.map(String.init) ?? "image/png"
            return ["inlineData": ["mimeType": .string(mime), "data": .string(String(url[url.index(after: comma)...]))]]
        }
        let lower = url.lowercased()
        let mime = lower.hasSuffix(".png") ? "image/png" : lower.hasSuffix(".webp") ? "image/webp" : lower.hasSuffix(".gif") ? "image/gif" : "image/jpeg"
        return ["fileData": ["mimeType": .string(mime), "fileUri": .string(url)]]
    }
}
