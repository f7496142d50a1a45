/// Anthropic Messages responses.
public enum AnthropicMessagesResponse {
    public static func decode(_ json: JSONValue) throws(OpenAIChatResponse.DecodeError) -> ChatResponse {
        guard let blocks = json["content"]?.arrayValue else { throw .init(message: "response has no content") }
        var text = ""
        var calls: [ToolCall] = []
        var reasoning: String?
        var signature: String?
        for block in blocks {
            switch block["type"]?.stringValue {
            case "text": text += block["text"]?.stringValue ?? ""
            case "thinking":
                reasoning = (reasoning ?? "") + (block["thinking"]?.stringValue ?? "")
                signature = block["signature"]?.stringValue ?? signature
            case "tool_use":
                calls.append(ToolCall(id: block["id"]?.stringValue ?? "", name: block["name"]?.stringValue ?? "",
                                      arguments: JSONCoding.encodeString(block["input"] ?? [:])))
            default: break
            }
        }
        var choice = ChatChoice(index: 0, text: text, toolCalls: calls,
                                finishReason: FinishReason(anthropic: json["stop_reason"]?.stringValue ?? "end_turn"))
        choice.reasoning = reasoning
        choice.reasoningSignature = signature
        var response = ChatResponse(
            id: json["id"]?.stringValue ?? "", model: json["model"]?.stringValue ?? "", created: 0, choices: [choice],
            usage: Usage(promptTokens: json["usage"]?["input_tokens"]?.intValue ?? 0,
                         completionTokens: json["usage"]?["output_tokens"]?.intValue ?? 0))
        response.stopSequence = json["stop_sequence"]?.stringValue
        return response
    }

    public static func encode(_ response: ChatResponse) -> JSONValue {
        let choice = response.choices.first ?? ChatChoice(index: 0, text: "", finishReason: .stop)
        var content: [JSONValue] = []
        if let reasoning = choice.reasoning {
            content.append(["type": "thinking", "thinking": .string(reasoning), "signature": .string(choice.reasoningSignature ?? "")])
        }
        if !choice.text.isEmpty || choice.toolCalls.isEmpty { content.append(["type": "text", "text": .string(choice.text)]) }
        for call in choice.toolCalls {
            let input = (try? JSONCoding.decode(Array(call.arguments.utf8))) ?? [:]
            content.append(["type": "tool_use", "id": .string(call.id), "name": .string(call.name), "input": input])
        }
        return [
            "id": .string(response.id), "type": "message", "role": "assistant", "model": .string(response.model),
            "content": .array(content), "stop_reason": .string(choice.finishReason.anthropicValue),
            "stop_sequence": response.stopSequence.map(JSONValue.string) ?? .null,
            "usage": ["input_tokens": .number(Double(response.usage.promptTokens)),
                      "output_tokens": .number(Double(response.usage.completionTokens))],
        ]
    }
}

/// Reads Anthropic stream events into `ChatEvent`s; keeps which block is which tool call.
public struct AnthropicStreamDecoder: Sendable {
    private var toolIndexByBlock: [Int: Int] = [:]
    private var inputTokens = 0
    private var outputTokens = 0
    private var stopReason: FinishReason?
    private var stopSequence: String?
    /// The prompt's token count as the upstream's `message_start` announced it.
    public private(set) var announcedInputTokens: Int?

    public init() {}

    /// An error event from the upstream, with its message.
    public struct StreamError: Error, Sendable { public var type: String; public var message: String }

    public mutating func events(type: String, json: JSONValue) throws(StreamError) -> [ChatEvent] {
        switch type {
        case "message_start":
            inputTokens = json["message"]?["usage"]?["input_tokens"]?.intValue ?? 0
            announcedInputTokens = json["message"]?["usage"]?["input_tokens"]?.intValue
            outputTokens = json["message"]?["usage"]?["output_tokens"]?.intValue ?? 0
            return []
        case "content_block_start":
            let block = json["content_block"]
            let blockIndex = json["index"]?.intValue ?? 0
            if block?["type"]?.stringValue == "tool_use" {
                let toolIndex = toolIndexByBlock.count
                toolIndexByBlock[blockIndex] = toolIndex
                return [.toolCallDelta(choice: 0, index: toolIndex, id: block?["id"]?.stringValue,
                                       name: block?["name"]?.stringValue, arguments: "")]
            }
            if let text = block?["text"]?.stringValue, !text.isEmpty { return [.textDelta(choice: 0, text: text, logprobs: nil)] }
            return []
        case "content_block_delta":
            let delta = json["delta"]
            switch delta?["type"]?.stringValue {
            case "text_delta":
                return [.textDelta(choice: 0, text: delta?["text"]?.stringValue ?? "", logprobs: nil)]
            case "thinking_delta":
                return [.reasoningDelta(choice: 0, text: delta?["thinking"]?.stringValue ?? "", signature: nil)]
            case "signature_delta":
                return [.reasoningDelta(choice: 0, text: "", signature: delta?["signature"]?.stringValue ?? "")]
            case "input_json_delta":
                let toolIndex = toolIndexByBlock[json["index"]?.intValue ?? 0] ?? 0
                return [.toolCallDelta(choice: 0, index: toolIndex, id: nil, name: nil, arguments: delta?["partial_json"]?.stringValue ?? "")]
            default:
                return []
            }
        case "message_delta":
            if let reason = json["delta"]?["stop_reason"]?.stringValue { stopReason = FinishReason(anthropic: reason) }
            stopSequence = json["delta"]?["stop_sequence"]?.stringValue
            if let output = json["usage"]?["output_tokens"]?.intValue { outputTokens = output }
            if let input = json["usage"]?["input_tokens"]?.intValue { inputTokens = input }
            return []
        case "message_stop":
            return [.finish(choice: 0, reason: stopReason ?? .stop, stopSequence: stopSequence),
                    .usage(Usage(promptTokens: inputTokens, completionTokens: outputTokens))]
        case "error":
            throw StreamError(type: json["error"]?["type"]?.stringValue ?? "api_error",
                              message: json["error"]?["message"]?.stringValue ?? "upstream stream error")
        default:
            return []
        }
    }
}

/// Turns `ChatEvent`s into Anthropic's event sequence: message_start, ping, content blocks,
/// message_delta and message_stop.
public struct AnthropicStreamEncoder: Sendable {
    private let id: String
    private let model: String
    private var started = false
    private var openBlock: (index: Int, isText: Bool)?
    /// The open block is a thinking block.
    private var thinkingOpen = false
    /// A signature was sent for the open thinking block.
    private var thinkingSigned = false
    private var nextBlockIndex = 0
    private var finishReason: FinishReason?
    private var stopSequence: String?
    private var usage = Usage(promptTokens: 0, completionTokens: 0)
    private var promptTokensKnown = 0

    public init(id: String, model: String, promptTokens: Int = 0) {
        self.id = id
        self.model = model
        self.promptTokensKnown = promptTokens
    }

    /// message_start and a ping; sent before the first content.
    public mutating func start() -> [UInt8] {
        guard !started else { return [] }
        started = true
        let message: JSONValue = [
            "type": "message_start",
            "message": ["id": .string(id), "type": "message", "role": "assistant", "model": .string(model), "content": [],
                        "stop_reason": .null, "stop_sequence": .null,
                        "usage": ["input_tokens": .number(Double(promptTokensKnown)), "output_tokens": 0]],
        ]
        return SSE.event("message_start", JSONCoding.encode(message)) + SSE.event("ping", JSONCoding.encode(["type": "ping"]))
    }

    public mutating func encode(_ event: ChatEvent) -> [UInt8] {
        var out = start()
        switch event {
        case .textDelta(let choice, let text, _):
            guard choice == 0, !text.isEmpty else { return out }
            if openBlock?.isText != true || thinkingOpen {
                out += closeBlock()
                out += openNewBlock(["type": "text", "text": ""], isText: true)
            }
            out += SSE.event("content_block_delta", JSONCoding.encode([
                "type": "content_block_delta", "index": .number(Double(openBlock!.index)),
                "delta": ["type": "text_delta", "text": .string(text)],
            ]))
        case .toolCallDelta(let choice, _, let callID, let name, let arguments):
            guard choice == 0 else { return out }
            if let callID {
                out += closeBlock()
                out += openNewBlock(["type": "tool_use", "id": .string(callID), "name": .string(name ?? ""), "input": [:]], isText: false)
            }
            if !arguments.isEmpty, let block = openBlock, !block.isText, !thinkingOpen {
                out += SSE.event("content_block_delta", JSONCoding.encode([
                    "type": "content_block_delta", "index": .number(Double(block.index)),
                    "delta": ["type": "input_json_delta", "partial_json": .string(arguments)],
                ]))
            }
        case .finish(let choice, let reason, let sequence):
            if choice == 0 { finishReason = reason; stopSequence = sequence }
        case .usage(let usage):
            self.usage = usage
        case .reasoningDelta(let choice, let text, let signature):
            guard choice == 0 else { return out }
            if !thinkingOpen {
                out += closeBlock()
                out += openNewBlock(["type": "thinking", "thinking": "", "signature": ""], isText: false)
                thinkingOpen = true
            }
            let index = JSONValue.number(Double(openBlock!.index))
            if !text.isEmpty {
                out += SSE.event("content_block_delta", JSONCoding.encode([
                    "type": "content_block_delta", "index": index, "delta": ["type": "thinking_delta", "thinking": .string(text)],
                ]))
            }
            if let signature {
                thinkingSigned = true
                out += SSE.event("content_block_delta", JSONCoding.encode([
                    "type": "content_block_delta", "index": index, "delta": ["type": "signature_delta", "signature": .string(signature)],
                ]))
            }
        }
        return out
    }

    /// Closes the open block, then message_delta with the stop reason and usage, then message_stop.
    public mutating func finish() -> [UInt8] {
        var out = start()
        out += closeBlock()
        out += SSE.event("message_delta", JSONCoding.encode([
            "type": "message_delta",
            "delta": ["stop_reason": .string((finishReason ?? .stop).anthropicValue), "stop_sequence": stopSequence.map(JSONValue.string) ?? .null],
            "usage": ["input_tokens": .number(Double(usage.promptTokens)), "output_tokens": .number(Double(usage.completionTokens))],
        ]))
        out += SSE.event("message_stop", JSONCoding.encode(["type": "message_stop"]))
        return out
    }

    /// An in-band error event, for a stream that cannot be completed.
    public mutating func error(type: String, message: String) -> [UInt8] {
        var out = start()
        out += closeBlock()
        out += SSE.event("error", JSONCoding.encode(["type": "error", "error": ["type": .string(type), "message": .string(message)]]))
        return out
    }

    private mutating func openNewBlock(_ block: JSONValue, isText: Bool) -> [UInt8] {
        let index = nextBlockIndex
        nextBlockIndex += 1
        openBlock = (index, isText)
        return SSE.event("content_block_start", JSONCoding.encode([
            "type": "content_block_start", "index": .number(Double(index)), "content_block": block,
        ]))
    }

    private mutating func closeBlock() -> [UInt8] {
        guard let block = openBlock else { return [] }
        openBlock = nil
        var out: [UInt8] = []
        if thinkingOpen, !thinkingSigned {
            // A thinking block ends with its signature; reasoning from an OpenAI-protocol upstream has none.
            out += SSE.event("content_block_delta", JSONCoding.encode([
                "type": "content_block_delta", "index": .number(Double(block.index)), "delta": ["type": "signature_delta", "signature": ""],
            ]))
        }
        thinkingOpen = false
        thinkingSigned = false
        return out + SSE.event("content_block_stop", JSONCoding.encode(["type": "content_block_stop", "index": .number(Double(block.index))]))
    }
}
