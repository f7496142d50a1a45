import Foundation

/// Amazon Bedrock Converse answers: whole ones, streamed ones (event-stream messages), and errors.
public enum BedrockConverseResponse {
    public static func decode(_ json: JSONValue) throws(OpenAIChatResponse.DecodeError) -> ChatResponse {
        guard let blocks = json["output"]?["message"]?["content"]?.arrayValue else { throw .init(message: "response has no output.message.content") }
        var text = ""
        var reasoning = ""
        var signature: String?
        var calls: [ToolCall] = []
        for block in blocks {
            if let piece = block["text"]?.stringValue { text += piece }
            if let thought = block["reasoningContent"]?["reasoningText"] {
                reasoning += thought["text"]?.stringValue ?? ""
                signature = thought["signature"]?.stringValue ?? signature
            }
            if let use = block["toolUse"] {
                calls.append(ToolCall(id: use["toolUseId"]?.stringValue ?? "", name: use["name"]?.stringValue ?? "",
                                      arguments: JSONCoding.encodeString(use["input"] ?? [:])))
            }
        }
        var choice = ChatChoice(index: 0, text: text, toolCalls: calls, finishReason: FinishReason(bedrock: json["stopReason"]?.stringValue ?? "end_turn"))
        choice.reasoning = reasoning.isEmpty ? nil : reasoning
        choice.reasoningSignature = choice.reasoning == nil ? nil : signature
        return ChatResponse(id: "", model: "", created: 0, choices: [choice],
                            usage: Usage(promptTokens: json["usage"]?["inputTokens"]?.intValue ?? 0,
                                         completionTokens: json["usage"]?["outputTokens"]?.intValue ?? 0))
    }

    public static func encode(_ response: ChatResponse) -> JSONValue {
        let choice = response.choices.first ?? ChatChoice(index: 0, text: "", finishReason: .stop)
        var content: [JSONValue] = []
        if let reasoning = choice.reasoning, !reasoning.isEmpty {
            var thought: [String: JSONValue] = ["text": .string(reasoning)]
            if let signature = choice.reasoningSignature { thought["signature"] = .string(signature) }
            content.append(["reasoningContent": ["reasoningText": .object(thought)]])
        }
        if !choice.text.isEmpty || choice.toolCalls.isEmpty { content.append(["text": .string(choice.text)]) }
        for call in choice.toolCalls {
            let input = (try? JSONCoding.decode(Array(call.arguments.utf8))) ?? [:]
            content.append(["toolUse": ["toolUseId": .string(call.id), "name": .string(call.name), "input": input]])
        }
        return [
            "output": ["message": ["role": "assistant", "content": .array(content)]],
            "stopReason": .string(choice.finishReason.bedrockValue),
            "usage": ["inputTokens": .number(Double(response.usage.promptTokens)), "outputTokens": .number(Double(response.usage.completionTokens)),
                      "totalTokens": .number(Double(response.usage.totalTokens))],
            "metrics": ["latencyMs": 0],
        ]
    }
}

extension FinishReason {
    public var bedrockValue: String {
        switch self {
        case .stop: "end_turn"
        case .length: "max_tokens"
        case .toolCalls: "tool_use"
        case .stopSequence: "stop_sequence"
        case .contentFilter: "content_filtered"
        }
    }

    public init(bedrock value: String) {
        switch value {
        case "max_tokens", "model_context_window_exceeded": self = .length
        case "tool_use": self = .toolCalls
        case "stop_sequence": self = .stopSequence
        case "guardrail_intervened", "content_filtered": self = .contentFilter
        default: self = .stop
        }
    }
}

/// Bedrock's error types and the HTTP status each stands for, as its API reference lists them.
/// A stream reports them as exception messages with no status of their own; a proxy may answer
/// them with another status. Either way the type decides: throttling and a model not ready are
/// 429s, an unavailable service a 503, so Lifeline retries them elsewhere.
public enum BedrockError {
    static let statuses: [String: Int] = [
        "throttlingexception": 429, "modelnotreadyexception": 429, "servicequotaexceededexception": 429,
        "serviceunavailableexception": 503, "internalserverexception": 500, "modelstreamerrorexception": 502,
        "modelerrorexception": 502, "modeltimeoutexception": 408,
        "accessdeniedexception": 403, "unrecognizedclientexception": 403, "invalidsignatureexception": 403,
        "expiredtokenexception": 403, "incompletesignatureexception": 403, "missingauthenticationtokenexception": 403,
        "validationexception": 400, "resourcenotfoundexception": 404, "conflictexception": 409,
    ]

    /// The type's status; nil for a type Bedrock does not document.
    public static func status(forType type: String) -> Int? { statuses[normalized(type)] }

    /// `ThrottlingException` from `ThrottlingException:http://…`, `com.amazon…#ThrottlingException`
    /// or a stream's `throttlingException`, lowercased.
    static func normalized(_ type: String) -> String {
        var name = Substring(type)
        if let colon = name.firstIndex(of: ":") { name = name[..<colon] }
        if let hash = name.lastIndex(of: "#") { name = name[name.index(after: hash)...] }
        return name.trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// The error type a status is reported as (the simulator's faults).
    public static func type(forStatus status: Int) -> String {
        switch status {
        case 400: "ValidationException"
        case 401, 403: "AccessDeniedException"
        case 404: "ResourceNotFoundException"
        case 408: "ModelTimeoutException"
        case 429: "ThrottlingException"
        case 503: "ServiceUnavailableException"
        default: "InternalServerException"
        }
    }

    /// Bedrock's error body: `{"message": …}`.
    public static func body(message: String) -> JSONValue { ["message": .string(message)] }

    /// The message of an error body (`message`, or `Message` as some services spell it).
    public static func message(in body: JSONValue?) -> String? {
        body?["message"]?.stringValue ?? body?["Message"]?.stringValue
    }
}

/// Reads Bedrock's streamed event-stream messages as `ChatEvent`s.
public struct BedrockStreamDecoder: Sendable {
    private var toolIndexByBlock: [Int: Int] = [:]
    /// messageStop was read: the answer is whole, only its metadata may follow.
    public private(set) var stopped = false
    /// metadata (usage) was read: nothing more follows.
    public private(set) var finished = false

    public init() {}

    /// An exception the stream reported instead of finishing, with its type and the status it stands for.
    public struct StreamError: Error, Sendable {
        public var type: String
        public var message: String
        public var status: Int
    }

    public mutating func events(_ message: AWSEventStreamMessage) throws(StreamError) -> [ChatEvent] {
        switch message.string(":message-type") ?? "event" {
        case "exception":
            let type = message.string(":exception-type") ?? "internalServerException"
            let text = BedrockError.message(in: try? JSONCoding.decode(message.payload)) ?? "upstream stream exception"
            throw StreamError(type: type, message: text, status: BedrockError.status(forType: type) ?? 500)
        case "error":
            let type = message.string(":error-code") ?? "InternalServerException"
            throw StreamError(type: type, message: message.string(":error-message") ?? "upstream stream error",
                              status: BedrockError.status(forType: type) ?? 500)
        default:
            break
        }
        guard let json = try? JSONCoding.decode(message.payload) else {
            throw StreamError(type: "malformed", message: "a stream event whose payload is not JSON", status: 502)
        }
        switch message.string(":event-type") ?? "" {
        case "contentBlockStart":
            guard let use = json["start"]?["toolUse"] else { return [] }
            let toolIndex = toolIndexByBlock.count
            toolIndexByBlock[json["contentBlockIndex"]?.intValue ?? 0] = toolIndex
            return [.toolCallDelta(choice: 0, index: toolIndex, id: use["toolUseId"]?.stringValue ?? "", name: use["name"]?.stringValue ?? "",
                                   arguments: "")]
        case "contentBlockDelta":
            let delta = json["delta"]
            if let text = delta?["text"]?.stringValue { return text.isEmpty ? [] : [.textDelta(choice: 0, text: text, logprobs: nil)] }
            if let thought = delta?["reasoningContent"] {
                let text = thought["text"]?.stringValue ?? ""
                let signature = thought["signature"]?.stringValue
                return text.isEmpty && signature == nil ? [] : [.reasoningDelta(choice: 0, text: text, signature: signature)]
            }
            if let input = delta?["toolUse"]?["input"]?.stringValue, let toolIndex = toolIndexByBlock[json["contentBlockIndex"]?.intValue ?? 0] {
                return [.toolCallDelta(choice: 0, index: toolIndex, id: nil, name: nil, arguments: input)]
            }
            return []
        case "messageStop":
            stopped = true
            return [.finish(choice: 0, reason: FinishReason(bedrock: json["stopReason"]?.stringValue ?? "end_turn"), stopSequence: nil)]
        case "metadata":
            finished = true
            guard let usage = json["usage"] else { return [] }
            return [.usage(Usage(promptTokens: usage["inputTokens"]?.intValue ?? 0, completionTokens: usage["outputTokens"]?.intValue ?? 0))]
        default:
            return []
        }
    }
}

/// Turns `ChatEvent`s into Bedrock's stream: messageStart, content block deltas (a start and a
/// stop around tool calls, as Bedrock sends them), messageStop, then metadata with the usage.
public struct BedrockStreamEncoder: Sendable {
    private var started = false
    private var openBlock: (index: Int, kind: BlockKind)?
    private enum BlockKind { case text, reasoning, toolUse }
    private var nextBlockIndex = 0
    private var finishReason: FinishReason?
    private var usage = Usage(promptTokens: 0, completionTokens: 0)

    public init() {}

    static func event(_ type: String, _ payload: JSONValue) -> [UInt8] {
        AWSEventStreamMessage(headers: [(":event-type", .string(type)), (":content-type", .string("application/json")),
                                        (":message-type", .string("event"))],
                              payload: JSONCoding.encode(payload)).encoded()
    }

    /// An exception message, as Bedrock ends a stream it cannot finish.
    public static func exception(type: String, message: String) -> [UInt8] {
        AWSEventStreamMessage(headers: [(":exception-type", .string(type)), (":content-type", .string("application/json")),
                                        (":message-type", .string("exception"))],
                              payload: JSONCoding.encode(BedrockError.body(message: message))).encoded()
    }

    public mutating func start() -> [UInt8] {
        guard !started else { return [] }
        started = true
        return Self.event("messageStart", ["role": "assistant"])
    }

    public mutating func encode(_ event: ChatEvent) -> [UInt8] {
        var out = start()
        switch event {
        case .textDelta(let choice, let text, _):
            guard choice == 0, !text.isEmpty else { return out }
            if openBlock?.kind != .text {
                out += closeBlock()
                openBlock = (nextBlockIndex, .text)
                nextBlockIndex += 1
            }
            out += Self.event("contentBlockDelta", ["contentBlockIndex": .number(Double(openBlock!.index)), "delta": ["text": .string(text)]])
        case .reasoningDelta(let choice, let text, let signature):
            guard choice == 0, !text.isEmpty || signature != nil else { return out }
            if openBlock?.kind != .reasoning {
                out += closeBlock()
                openBlock = (nextBlockIndex, .reasoning)
                nextBlockIndex += 1
            }
            var thought: [String: JSONValue] = [:]
            if !text.isEmpty { thought["text"] = .string(text) }
            if let signature { thought["signature"] = .string(signature) }
            out += Self.event("contentBlockDelta", ["contentBlockIndex": .number(Double(openBlock!.index)), "delta": ["reasoningContent": .object(thought)]])
        case .toolCallDelta(let choice, _, let callID, let name, let arguments):
            guard choice == 0 else { return out }
            if let callID {
                out += closeBlock()
                openBlock = (nextBlockIndex, .toolUse)
                nextBlockIndex += 1
                out += Self.event("contentBlockStart", ["contentBlockIndex": .number(Double(openBlock!.index)),
                                                        "start": ["toolUse": ["toolUseId": .string(callID), "name": .string(name ?? "")]]])
            }
            if !arguments.isEmpty, let block = openBlock, block.kind == .toolUse {
                out += Self.event("contentBlockDelta", ["contentBlockIndex": .number(Double(block.index)),
                                                        "delta": ["toolUse": ["input": .string(arguments)]]])
            }
        case .finish(let choice, let reason, _):
            if choice == 0 { finishReason = reason }
        case .usage(let usage):
            self.usage = usage
        }
        return out
    }

    public mutating func finish() -> [UInt8] {
        var out = start()
        out += closeBlock()
        out += Self.event("messageStop", ["stopReason": .string((finishReason ?? .stop).bedrockValue)])
        out += Self.event("metadata", [
            "usage": ["inputTokens": .number(Double(usage.promptTokens)), "outputTokens": .number(Double(usage.completionTokens)),
                      "totalTokens": .number(Double(usage.totalTokens))],
            "metrics": ["latencyMs": 0],
        ])
        return out
    }

    private mutating func closeBlock() -> [UInt8] {
        guard let block = openBlock else { return [] }
        openBlock = nil
        return Self.event("contentBlockStop", ["contentBlockIndex": .number(Double(block.index))])
    }
}
