/// OpenAI Responses answers: the `response` object and its output items.
public enum ResponsesResponse {
    /// What every response object of one request shares: id, model, creation time and the echoed request fields.
    public struct Header: Sendable, Equatable {
        public var id: String
        public var model: String
        public var createdAt: Int
        public var echoed: [String: JSONValue]

        public init(id: String, model: String, createdAt: Int, echoed: [String: JSONValue]) {
            self.id = id
            self.model = model
            self.createdAt = createdAt
            self.echoed = echoed
        }

        /// An output item's id, derived from the response's so the streamed and stored answers agree.
        func itemID(_ prefix: String, index: Int) -> String {
            "\(prefix)_\(id.hasPrefix("resp_") ? String(id.dropFirst(5)) : id)_\(index)"
        }
    }

    /// The response object; `usage` nil while the answer is under way.
    public static func object(_ header: Header, status: String, output: [JSONValue], usage: Usage?,
                              incompleteReason: String? = nil, error: JSONValue? = nil) -> JSONValue
    {
        var object = header.echoed
        object["id"] = .string(header.id)
        object["object"] = "response"
        object["created_at"] = .number(Double(header.createdAt))
        object["model"] = .string(header.model)
        object["status"] = .string(status)
        object["output"] = .array(output)
        object["usage"] = usage.map(encodeUsage) ?? .null
        object["error"] = error ?? .null
        object["incomplete_details"] = incompleteReason.map { ["reason": .string($0)] } ?? .null
        object["background"] = false
        object["reasoning"] = ["effort": nil, "summary": nil]
        return .object(object)
    }

    /// A complete answer as a response object: its text as one message item, then one item per tool call.
    public static func encode(_ answer: ChatResponse, header: Header) -> JSONValue {
        guard let choice = answer.choices.first else {
            return object(header, status: "completed", output: [], usage: answer.usage)
        }
        var output: [JSONValue] = []
        if !choice.text.isEmpty || choice.toolCalls.isEmpty {
            output.append(messageItem(id: header.itemID("msg", index: output.count), text: choice.text, status: "completed"))
        }
        for call in choice.toolCalls {
            output.append(functionCallItem(id: header.itemID("fc", index: output.count), callID: call.id, name: call.name,
                                           arguments: call.arguments, status: "completed"))
        }
        let (status, incomplete) = status(for: choice.finishReason)
        return object(header, status: status, output: output, usage: answer.usage, incompleteReason: incomplete)
    }

    /// A response's status for how its answer ended, and why it is incomplete when it is.
    static func status(for reason: FinishReason) -> (status: String, incomplete: String?) {
        switch reason {
        case .length: ("incomplete", "max_output_tokens")
        case .contentFilter: ("incomplete", "content_filter")
        case .stop, .stopSequence, .toolCalls: ("completed", nil)
        }
    }

    static func messageItem(id: String, text: String, status: String) -> JSONValue {
        let content: [JSONValue] = status == "in_progress" ? [] : [textPart(text)]
        return ["id": .string(id), "type": "message", "status": .string(status), "role": "assistant", "content": .array(content)]
    }

    static func textPart(_ text: String) -> JSONValue {
        ["type": "output_text", "text": .string(text), "annotations": [], "logprobs": []]
    }

    static func functionCallItem(id: String, callID: String, name: String, arguments: String, status: String) -> JSONValue {
        ["id": .string(id), "type": "function_call", "status": .string(status), "call_id": .string(callID),
         "name": .string(name), "arguments": .string(arguments)]
    }

    public static func encodeUsage(_ usage: Usage) -> JSONValue {
        ["input_tokens": .number(Double(usage.promptTokens)),
         "input_tokens_details": ["cached_tokens": 0, "cache_write_tokens": 0],
         "output_tokens": .number(Double(usage.completionTokens)),
         "output_tokens_details": ["reasoning_tokens": 0],
         "total_tokens": .number(Double(usage.totalTokens))]
    }
}

/// Turns `ChatEvent`s into the Responses API's typed stream: `response.created` … `response.completed`,
/// each event numbered by `sequence_number`, items opened and closed in OpenAI's order.
public struct ResponsesStreamEncoder: Sendable {
    private struct OpenCall: Sendable {
        var outputIndex: Int
        var itemID: String
        var callID: String
        var name: String
        var arguments = ""
    }

    private let header: ResponsesResponse.Header
    private var sequence = 0
    private var started = false
    /// Output items by index; an open item holds its placeholder until it is done.
    private var output: [JSONValue] = []
    private var message: (index: Int, id: String, text: String)?
    /// Open tool calls by the upstream's call index.
    private var calls: [Int: OpenCall] = [:]
    private var usage: Usage?
    private var finishReason: FinishReason?
    /// The final response object, once `finish()` has written it.
    public private(set) var completedResponse: JSONValue?

    public init(header: ResponsesResponse.Header) {
        self.header = header
    }

    public mutating func encode(_ event: ChatEvent) -> [UInt8] {
        var out = start()
        switch event {
        case .textDelta(let choice, let text, _):
            guard choice == 0, !text.isEmpty else { return out }
            if message == nil {
                let index = output.count
                let id = header.itemID("msg", index: index)
                message = (index, id, "")
                output.append(ResponsesResponse.messageItem(id: id, text: "", status: "in_progress"))
                out += emit("response.output_item.added", ["output_index": number(index), "item": output[index]])
                out += emit("response.content_part.added", ["item_id": .string(id), "output_index": number(index), "content_index": 0,
                                                            "part": ResponsesResponse.textPart("")])
            }
            message!.text += text
            out += emit("response.output_text.delta", ["item_id": .string(message!.id), "output_index": number(message!.index),
                                                       "content_index": 0, "delta": .string(text), "logprobs": []])
        case .toolCallDelta(let choice, let callIndex, let callID, let name, let arguments):
            guard choice == 0 else { return out }
            out += closeMessage()
            if calls[callIndex] == nil {
                let index = output.count
                let call = OpenCall(outputIndex: index, itemID: header.itemID("fc", index: index),
                                    callID: callID ?? header.itemID("call", index: index), name: name ?? "")
                calls[callIndex] = call
                output.append(ResponsesResponse.functionCallItem(id: call.itemID, callID: call.callID, name: call.name, arguments: "", status: "in_progress"))
                out += emit("response.output_item.added", ["output_index": number(index), "item": output[index]])
            } else if let name, calls[callIndex]!.name.isEmpty {
                calls[callIndex]!.name = name
            }
            if !arguments.isEmpty {
                calls[callIndex]!.arguments += arguments
                let call = calls[callIndex]!
                out += emit("response.function_call_arguments.delta", ["item_id": .string(call.itemID), "output_index": number(call.outputIndex),
                                                                       "delta": .string(arguments)])
            }
        case .finish(let choice, let reason, _):
            guard choice == 0 else { return out }
            finishReason = reason
            out += closeMessage() + closeCalls()
        case .usage(let usage):
            self.usage = usage
        case .reasoningDelta:
            // The model's thinking is not output text, and Responses' reasoning events carry only
            // OpenAI's own summaries; it is left out, as the non-streamed response leaves it out.
            break
        }
        return out
    }

    /// Closes what is open and ends the stream with `response.completed` (or `response.incomplete`).
    public mutating func finish() -> [UInt8] {
        var out = start() + closeMessage() + closeCalls()
        let (status, incomplete) = ResponsesResponse.status(for: finishReason ?? .stop)
        let response = ResponsesResponse.object(header, status: status, output: output,
                                                usage: usage ?? Usage(promptTokens: 0, completionTokens: 0), incompleteReason: incomplete)
        completedResponse = response
        out += emit(status == "completed" ? "response.completed" : "response.incomplete", ["response": response])
        return out
    }

    /// Ends a stream that cannot be completed: an `error` event, then `response.failed` with what was sent.
    public mutating func error(code: String?, message text: String) -> [UInt8] {
        var out = start()
        if let message { output[message.index] = ResponsesResponse.messageItem(id: message.id, text: message.text, status: "incomplete") }
        for call in calls.values {
            output[call.outputIndex] = ResponsesResponse.functionCallItem(id: call.itemID, callID: call.callID, name: call.name,
                                                                          arguments: call.arguments, status: "incomplete")
        }
        message = nil
        calls = [:]
        out += emit("error", ["code": code.map(JSONValue.string) ?? .null, "message": .string(text), "param": .null])
        let failed = ResponsesResponse.object(header, status: "failed", output: output, usage: usage,
                                              error: ["code": "server_error", "message": .string(text)])
        out += emit("response.failed", ["response": failed])
        return out
    }

    private mutating func start() -> [UInt8] {
        guard !started else { return [] }
        started = true
        let response = ResponsesResponse.object(header, status: "in_progress", output: [], usage: nil)
        return emit("response.created", ["response": response]) + emit("response.in_progress", ["response": response])
    }

    private mutating func closeMessage() -> [UInt8] {
        guard let (index, id, text) = message else { return [] }
        message = nil
        let position: [String: JSONValue] = ["item_id": .string(id), "output_index": number(index), "content_index": 0]
        var out = emit("response.output_text.done", position.merging(["text": .string(text), "logprobs": []]) { $1 })
        out += emit("response.content_part.done", position.merging(["part": ResponsesResponse.textPart(text)]) { $1 })
        output[index] = ResponsesResponse.messageItem(id: id, text: text, status: "completed")
        out += emit("response.output_item.done", ["output_index": number(index), "item": output[index]])
        return out
    }

    private mutating func closeCalls() -> [UInt8] {
        var out: [UInt8] = []
        for call in calls.values.sorted(by: { $0.outputIndex < $1.outputIndex }) {
            out += emit("response.function_call_arguments.done", ["item_id": .string(call.itemID), "output_index": number(call.outputIndex),
                                                                  "name": .string(call.name), "arguments": .string(call.arguments)])
            output[call.outputIndex] = ResponsesResponse.functionCallItem(id: call.itemID, callID: call.callID, name: call.name,
                                                                          arguments: call.arguments, status: "completed")
            out += emit("response.output_item.done", ["output_index": number(call.outputIndex), "item": output[call.outputIndex]])
        }
        calls = [:]
        return out
    }

    private func number(_ value: Int) -> JSONValue { .number(Double(value)) }

    /// One typed event: `event: <type>` and its JSON, which carries the type and the next sequence number.
    private mutating func emit(_ type: String, _ fields: [String: JSONValue]) -> [UInt8] {
        var object = fields
        object["type"] = .string(type)
        object["sequence_number"] = .number(Double(sequence))
        sequence += 1
        return SSE.event(type, JSONCoding.encode(.object(object)))
    }
}
