/// OpenAI Chat Completions responses and stream chunks.
public enum OpenAIChatResponse {
    public struct DecodeError: Error, Sendable { public var message: String }

    public static func decode(_ json: JSONValue) throws(DecodeError) -> ChatResponse {
        guard let rawChoices = json["choices"]?.arrayValue else { throw DecodeError(message: "response has no choices") }
        let choices = rawChoices.enumerated().map { offset, choice in
            let message = choice["message"]
            let calls = (message?["tool_calls"]?.arrayValue ?? []).map { call in
                ToolCall(id: call["id"]?.stringValue ?? "",
                         name: call["function"]?["name"]?.stringValue ?? "",
                         arguments: call["function"]?["arguments"]?.stringValue ?? "{}")
            }
            var decoded = ChatChoice(
                index: choice["index"]?.intValue ?? offset,
                text: message?["content"]?.stringValue ?? "",
                toolCalls: calls,
                finishReason: FinishReason(openAI: choice["finish_reason"]?.stringValue ?? "stop"),
                logprobs: choice["logprobs"]?.nonNull)
            decoded.reasoning = message?["reasoning_content"]?.stringValue
            return decoded
        }
        var response = ChatResponse(
            id: json["id"]?.stringValue ?? "",
            model: json["model"]?.stringValue ?? "",
            created: json["created"]?.intValue ?? 0,
            choices: choices,
            usage: usage(json["usage"]) ?? Usage(promptTokens: 0, completionTokens: 0))
        response.systemFingerprint = json["system_fingerprint"]?.stringValue
        return response
    }

    static func usage(_ json: JSONValue?) -> Usage? {
        guard let json, let prompt = json["prompt_tokens"]?.intValue else { return nil }
        return Usage(promptTokens: prompt, completionTokens: json["completion_tokens"]?.intValue ?? 0)
    }

    static func encodeUsage(_ usage: Usage) -> JSONValue {
        ["prompt_tokens": .number(Double(usage.promptTokens)),
         "completion_tokens": .number(Double(usage.completionTokens)),
         "total_tokens": .number(Double(usage.totalTokens))]
    }

    public static func encode(_ response: ChatResponse) -> JSONValue {
        let choices: [JSONValue] = response.choices.map { choice in
            var message: [String: JSONValue] = ["role": "assistant", "content": choice.text.isEmpty && !choice.toolCalls.isEmpty ? .null : .string(choice.text)]
            if !choice.toolCalls.isEmpty {
                message["tool_calls"] = .array(choice.toolCalls.map {
                    ["id": .string($0.id), "type": "function", "function": ["name": .string($0.name), "arguments": .string($0.arguments)]]
                })
            }
            message["refusal"] = .null
            if let reasoning = choice.reasoning { message["reasoning_content"] = .string(reasoning) }
            return ["index": .number(Double(choice.index)), "message": .object(message),
                    "finish_reason": .string(choice.finishReason.openAIValue), "logprobs": choice.logprobs ?? .null]
        }
        var object: [String: JSONValue] = [
            "id": .string(response.id), "object": "chat.completion", "created": .number(Double(response.created)),
            "model": .string(response.model), "choices": .array(choices), "usage": encodeUsage(response.usage),
        ]
        if let fingerprint = response.systemFingerprint { object["system_fingerprint"] = .string(fingerprint) }
        return .object(object)
    }

    /// The events of a chunk of the shape nearly every chunk of an answer takes (one choice
    /// whose delta is text alone), read without building a tree; nil for any other chunk, which
    /// `events(inChunk:)` then reads from its full parse. Equal to that wherever it answers.
    public static func textDeltaEvent(inChunk bytes: [UInt8]) -> ChatEvent? {
        guard let (choice, text) = JSONParser.openAITextDelta(bytes) else { return nil }
        return .textDelta(choice: choice, text: text, logprobs: nil)
    }

    /// The events in one upstream stream chunk.
    public static func events(inChunk json: JSONValue) -> [ChatEvent] {
        var events: [ChatEvent] = []
        for choice in json["choices"]?.arrayValue ?? [] {
            let index = choice["index"]?.intValue ?? 0
            let delta = choice["delta"]
            let logprobs = choice["logprobs"]?.nonNull
            if let reasoning = delta?["reasoning_content"]?.stringValue, !reasoning.isEmpty {
                events.append(.reasoningDelta(choice: index, text: reasoning, signature: nil))
            }
            if let text = delta?["content"]?.stringValue, !text.isEmpty || logprobs != nil {
                events.append(.textDelta(choice: index, text: text, logprobs: logprobs))
            }
            for call in delta?["tool_calls"]?.arrayValue ?? [] {
                events.append(.toolCallDelta(
                    choice: index, index: call["index"]?.intValue ?? 0, id: call["id"]?.stringValue,
                    name: call["function"]?["name"]?.stringValue, arguments: call["function"]?["arguments"]?.stringValue ?? ""))
            }
            if let reason = choice["finish_reason"]?.stringValue {
                events.append(.finish(choice: index, reason: FinishReason(openAI: reason), stopSequence: nil))
            }
        }
        if let usage = usage(json["usage"]) { events.append(.usage(usage)) }
        return events
    }
}

/// Turns `ChatEvent`s into an OpenAI SSE stream, one chunk per event.
public struct OpenAIStreamEncoder: Sendable {
    private let id: String
    private let model: String
    private let created: Int
    private let includeUsage: Bool
    private var announcedChoices: Set<Int> = []
    private var usage: Usage?
    /// What follows a chunk's `choices` array, the same for every chunk of the stream.
    private let chunkTail: [UInt8]

    public init(id: String, model: String, created: Int, includeUsage: Bool) {
        self.id = id
        self.model = model
        self.created = created
        self.includeUsage = includeUsage
        var tail: [UInt8] = Array("],\"created\":".utf8)
        JSONWriter.writeNumber(Double(created), into: &tail)
        tail.append(contentsOf: ",\"id\":".utf8)
        JSONWriter.writeString(id, into: &tail)
        tail.append(contentsOf: ",\"model\":".utf8)
        JSONWriter.writeString(model, into: &tail)
        tail.append(contentsOf: ",\"object\":\"chat.completion.chunk\"".utf8)
        if includeUsage { tail.append(contentsOf: ",\"usage\":null".utf8) }
        tail.append(contentsOf: "}\n\n".utf8)
        chunkTail = tail
    }

    public mutating func encode(_ event: ChatEvent) -> [UInt8] {
        switch event {
        case .textDelta(let choice, let text, let logprobs):
            return textChunk(choice: choice, text: text, announce: announcedChoices.insert(choice).inserted, logprobs: logprobs)
        case .toolCallDelta(let choice, let index, let callID, let name, let arguments):
            var function: [String: JSONValue] = ["arguments": .string(arguments)]
            if let name { function["name"] = .string(name) }
            var call: [String: JSONValue] = ["index": .number(Double(index)), "function": .object(function)]
            if let callID { call["id"] = .string(callID); call["type"] = "function" }
            var delta: [String: JSONValue] = ["tool_calls": [.object(call)]]
            if announcedChoices.insert(choice).inserted { delta["role"] = "assistant"; delta["content"] = .null }
            return chunk(choice: choice, delta: .object(delta), finishReason: nil, logprobs: nil)
        case .finish(let choice, let reason, _):
            return chunk(choice: choice, delta: [:], finishReason: reason.openAIValue, logprobs: nil)
        case .usage(let usage):
            self.usage = usage
            return []
        case .reasoningDelta(let choice, let text, _):
            // OpenAI-compatible servers stream reasoning as `delta.reasoning_content`.
            guard !text.isEmpty else { return [] }
            var delta: [String: JSONValue] = ["reasoning_content": .string(text)]
            if announcedChoices.insert(choice).inserted { delta["role"] = "assistant"; delta["content"] = "" }
            return chunk(choice: choice, delta: .object(delta), finishReason: nil, logprobs: nil)
        }
    }

    /// The closing bytes: the usage chunk when asked for, then `[DONE]`.
    public func finish() -> [UInt8] {
        var out: [UInt8] = []
        if includeUsage {
            let object: JSONValue = [
                "id": .string(id), "object": "chat.completion.chunk", "created": .number(Double(created)),
                "model": .string(model), "choices": [],
                "usage": OpenAIChatResponse.encodeUsage(usage ?? Usage(promptTokens: 0, completionTokens: 0)),
            ]
            out += SSE.data(JSONCoding.encode(object))
        }
        out += SSE.data(Array("[DONE]".utf8))
        return out
    }

    /// A text chunk written straight to bytes: it is most of every stream, and building it as a
    /// `JSONValue` tree first costs more than the rest of the relay. The bytes are exactly those of
    /// `chunk(choice:delta:finishReason:logprobs:)` (keys in sorted order).
    private func textChunk(choice: Int, text: String, announce: Bool, logprobs: JSONValue?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(96 + text.utf8.count + chunkTail.count)
        out.append(contentsOf: "data: {\"choices\":[{\"delta\":{\"content\":".utf8)
        JSONWriter.writeString(text, into: &out)
        if announce { out.append(contentsOf: ",\"role\":\"assistant\"".utf8) }
        out.append(contentsOf: "},\"finish_reason\":null,\"index\":".utf8)
        JSONWriter.writeNumber(Double(choice), into: &out)
        out.append(contentsOf: ",\"logprobs\":".utf8)
        JSONWriter.write(logprobs ?? .null, into: &out)
        out.append(UInt8(ascii: "}"))
        out += chunkTail
        return out
    }

    private func chunk(choice: Int, delta: JSONValue, finishReason: String?, logprobs: JSONValue?) -> [UInt8] {
        var choiceObject: [String: JSONValue] = [
            "index": .number(Double(choice)), "delta": delta,
            "finish_reason": finishReason.map(JSONValue.string) ?? .null,
        ]
        choiceObject["logprobs"] = logprobs ?? .null
        var object: [String: JSONValue] = [
            "id": .string(id), "object": "chat.completion.chunk", "created": .number(Double(created)),
            "model": .string(model), "choices": [.object(choiceObject)],
        ]
        if includeUsage { object["usage"] = .null }
        return SSE.data(JSONCoding.encode(.object(object)))
    }
}
