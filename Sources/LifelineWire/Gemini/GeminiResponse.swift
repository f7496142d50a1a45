extension FinishReason {
    /// Gemini's `finishReason`; a candidate that called functions stopped for its tool calls,
    /// though Gemini says `STOP`.
    public init(gemini value: String, calledFunctions: Bool) {
        switch value {
        case "MAX_TOKENS": self = .length
        case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE": self = .contentFilter
        default: self = calledFunctions ? .toolCalls : .stop
        }
    }

    /// Gemini does not say which stop sequence matched: a stop on one is `STOP`.
    public var geminiValue: String {
        switch self {
        case .stop, .stopSequence, .toolCalls: "STOP"
        case .length: "MAX_TOKENS"
        case .contentFilter: "SAFETY"
        }
    }
}

/// Gemini `GenerateContentResponse`s, whole and streamed.
public enum GeminiResponse {
    /// Why Gemini refused the prompt itself (`promptFeedback.blockReason`), when it answered with no candidate.
    public static func promptBlockReason(_ json: JSONValue) -> String? {
        guard json["candidates"]?.arrayValue?.isEmpty ?? true else { return nil }
        return json["promptFeedback"]?["blockReason"]?.stringValue
    }

    public static func decode(_ json: JSONValue) throws(OpenAIChatResponse.DecodeError) -> ChatResponse {
        guard let candidates = json["candidates"]?.arrayValue else { throw .init(message: "response has no candidates") }
        let choices = candidates.enumerated().map { offset, candidate in
            let index = candidate["index"]?.intValue ?? offset
            var text = ""
            var reasoning = ""
            var calls: [ToolCall] = []
            for part in candidate["content"]?["parts"]?.arrayValue ?? [] {
                // A thought summary (`"thought": true`) is the model's reasoning, not its answer.
                if part["thought"]?.boolValue == true { reasoning += part["text"]?.stringValue ?? ""; continue }
                if let piece = part["text"]?.stringValue { text += piece }
                if let call = part["functionCall"] { calls.append(toolCall(call, choice: index, index: calls.count)) }
            }
            var choice = ChatChoice(index: index, text: text, toolCalls: calls,
                                    finishReason: FinishReason(gemini: candidate["finishReason"]?.stringValue ?? "STOP", calledFunctions: !calls.isEmpty))
            choice.reasoning = reasoning.isEmpty ? nil : reasoning
            return choice
        }
        return ChatResponse(id: json["responseId"]?.stringValue ?? "", model: json["modelVersion"]?.stringValue ?? "", created: 0,
                            choices: choices, usage: usage(json["usageMetadata"]) ?? Usage(promptTokens: 0, completionTokens: 0))
    }

    /// Gemini's counts: thinking tokens are output tokens, as OpenAI counts reasoning.
    static func usage(_ metadata: JSONValue?) -> Usage? {
        guard let metadata, let prompt = metadata["promptTokenCount"]?.intValue else { return nil }
        let output = (metadata["candidatesTokenCount"]?.intValue ?? 0) + (metadata["thoughtsTokenCount"]?.intValue ?? 0)
        return Usage(promptTokens: prompt, completionTokens: output)
    }

    /// A tool call; Gemini's calls may carry no id, so one is made from where the call stands.
    static func toolCall(_ call: JSONValue, choice: Int, index: Int) -> ToolCall {
        let name = call["name"]?.stringValue ?? ""
        return ToolCall(id: call["id"]?.stringValue ?? "call_\(choice)_\(index)_\(name)", name: name,
                        arguments: JSONCoding.encodeString(call["args"] ?? [:]))
    }

    static func encodeUsage(_ usage: Usage) -> JSONValue {
        ["promptTokenCount": .number(Double(usage.promptTokens)), "candidatesTokenCount": .number(Double(usage.completionTokens)),
         "totalTokenCount": .number(Double(usage.totalTokens))]
    }

    static func functionCallPart(_ call: ToolCall) -> JSONValue {
        let arguments = (try? JSONCoding.decode(Array(call.arguments.utf8)))?.objectValue ?? [:]
        return ["functionCall": ["id": .string(call.id), "name": .string(call.name), "args": .object(arguments)]]
    }

    /// A whole answer in Gemini's shape (the simulator's side).
    public static func encode(_ response: ChatResponse) -> JSONValue {
        let candidates: [JSONValue] = response.choices.map { choice in
            var parts: [JSONValue] = []
            if let reasoning = choice.reasoning, !reasoning.isEmpty { parts.append(["text": .string(reasoning), "thought": true]) }
            if !choice.text.isEmpty || choice.toolCalls.isEmpty { parts.append(["text": .string(choice.text)]) }
            parts += choice.toolCalls.map(functionCallPart)
            return ["content": ["role": "model", "parts": .array(parts)], "finishReason": .string(choice.finishReason.geminiValue),
                    "index": .number(Double(choice.index))]
        }
        return ["candidates": .array(candidates), "usageMetadata": encodeUsage(response.usage),
                "modelVersion": .string(response.model), "responseId": .string(response.id)]
    }
}

/// Reads Gemini's streamed `GenerateContentResponse` chunks into `ChatEvent`s.
///
/// Gemini's stream has no end marker: the last chunk carries `finishReason` and the connection
/// closes. The finish and usage are held until then, so a stream that stops without a finish
/// reason is known to be cut.
public struct GeminiStreamDecoder: Sendable {
    private var callsByChoice: [Int: Int] = [:]
    private var finishes: [(choice: Int, reason: FinishReason)] = []
    private var usage: Usage?

    public init() {}

    /// An error in the stream, or a prompt Gemini refused.
    public struct StreamError: Error, Sendable {
        public var status: Int
        public var message: String
        public var blockReason: String?
    }

    /// Whether every candidate seen so far has finished.
    public var sawFinish: Bool { !finishes.isEmpty }

    public mutating func events(in json: JSONValue) throws(StreamError) -> [ChatEvent] {
        if let error = json["error"] {
            throw StreamError(status: error["code"]?.intValue ?? 500, message: error["message"]?.stringValue ?? "upstream stream error")
        }
        if let reason = GeminiResponse.promptBlockReason(json) {
            throw StreamError(status: 400, message: "the prompt was blocked (\(reason))", blockReason: reason)
        }
        if let usage = GeminiResponse.usage(json["usageMetadata"]) { self.usage = usage }
        var events: [ChatEvent] = []
        for (offset, candidate) in (json["candidates"]?.arrayValue ?? []).enumerated() {
            let choice = candidate["index"]?.intValue ?? offset
            for part in candidate["content"]?["parts"]?.arrayValue ?? [] {
                if part["thought"]?.boolValue == true {
                    if let text = part["text"]?.stringValue, !text.isEmpty { events.append(.reasoningDelta(choice: choice, text: text, signature: nil)) }
                    continue
                }
                if let text = part["text"]?.stringValue, !text.isEmpty { events.append(.textDelta(choice: choice, text: text, logprobs: nil)) }
                if let raw = part["functionCall"] {
                    let index = callsByChoice[choice, default: 0]
                    callsByChoice[choice] = index + 1
                    let call = GeminiResponse.toolCall(raw, choice: choice, index: index)
                    events.append(.toolCallDelta(choice: choice, index: index, id: call.id, name: call.name, arguments: call.arguments))
                }
            }
            if let reason = candidate["finishReason"]?.stringValue, !finishes.contains(where: { $0.choice == choice }) {
                finishes.append((choice, FinishReason(gemini: reason, calledFunctions: callsByChoice[choice, default: 0] > 0)))
            }
        }
        return events
    }

    /// The held finish reasons and usage, once the upstream closed the stream after a finish.
    public func finish() -> [ChatEvent] {
        var events: [ChatEvent] = finishes.map { .finish(choice: $0.choice, reason: $0.reason, stopSequence: nil) }
        if let usage { events.append(.usage(usage)) }
        return events
    }
}

/// Writes `ChatEvent`s as Gemini's SSE stream (`alt=sse`): one chunk per text piece, function
/// calls whole, and a last chunk with the finish reasons and usage (the simulator's side).
public struct GeminiStreamEncoder: Sendable {
    private let id: String
    private let model: String
    private var pendingCalls: [Int: [Int: ToolCall]] = [:]
    private var finishes: [Int: FinishReason] = [:]
    private var usage = Usage(promptTokens: 0, completionTokens: 0)

    public init(id: String, model: String) {
        self.id = id
        self.model = model
    }

    public mutating func encode(_ event: ChatEvent) -> [UInt8] {
        switch event {
        case .textDelta(let choice, let text, _):
            return chunk([candidate(choice, parts: [["text": .string(text)]], finish: nil)], usage: nil)
        case .reasoningDelta(let choice, let text, _):
            // Gemini signs no thought summaries: a signature alone has nothing to send.
            guard !text.isEmpty else { return [] }
            return chunk([candidate(choice, parts: [["text": .string(text), "thought": true]], finish: nil)], usage: nil)
        case .toolCallDelta(let choice, let index, let callID, let name, let arguments):
            // Gemini sends a call whole: pieces are gathered and sent with the last chunk.
            var call = pendingCalls[choice]?[index] ?? ToolCall(id: callID ?? "", name: name ?? "", arguments: "")
            if let callID { call.id = callID }
            if let name { call.name = name }
            call.arguments += arguments
            pendingCalls[choice, default: [:]][index] = call
            return []
        case .finish(let choice, let reason, _):
            finishes[choice] = reason
            return []
        case .usage(let usage):
            self.usage = usage
            return []
        }
    }

    public func finish() -> [UInt8] {
        let choices = Set(finishes.keys).union(pendingCalls.keys).sorted()
        let candidates: [JSONValue] = choices.map { choice in
            let calls = (pendingCalls[choice] ?? [:]).sorted { $0.key < $1.key }.map { GeminiResponse.functionCallPart($0.value) }
            return candidate(choice, parts: calls.isEmpty ? [["text": ""]] : calls, finish: finishes[choice] ?? .stop)
        }
        return chunk(candidates, usage: usage)
    }

    private func candidate(_ choice: Int, parts: [JSONValue], finish: FinishReason?) -> JSONValue {
        var object: [String: JSONValue] = ["content": ["role": "model", "parts": .array(parts)], "index": .number(Double(choice))]
        if let finish { object["finishReason"] = .string(finish.geminiValue) }
        return .object(object)
    }

    private func chunk(_ candidates: [JSONValue], usage: Usage?) -> [UInt8] {
        var object: [String: JSONValue] = ["candidates": .array(candidates), "modelVersion": .string(model), "responseId": .string(id)]
        if let usage { object["usageMetadata"] = GeminiResponse.encodeUsage(usage) }
        return SSE.data(JSONCoding.encode(.object(object)))
    }
}

/// Gemini's error bodies: `{"error":{"code","message","status"}}`, with a `RetryInfo` detail on 429.
public enum GeminiError {
    /// Google's canonical status name for an HTTP status.
    public static func statusName(_ status: Int) -> String {
        switch status {
        case 400: "INVALID_ARGUMENT"
        case 401: "UNAUTHENTICATED"
        case 403: "PERMISSION_DENIED"
        case 404: "NOT_FOUND"
        case 409: "ABORTED"
        case 429: "RESOURCE_EXHAUSTED"
        case 499: "CANCELLED"
        case 501: "UNIMPLEMENTED"
        case 503: "UNAVAILABLE"
        case 504: "DEADLINE_EXCEEDED"
        default: status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION"
        }
    }

    public static func body(status: Int, message: String, retryAfterSeconds: Int? = nil) -> JSONValue {
        var error: [String: JSONValue] = ["code": .number(Double(status)), "message": .string(message), "status": .string(statusName(status))]
        if let retryAfterSeconds {
            error["details"] = [["@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": .string("\(retryAfterSeconds)s")]]
        }
        return ["error": .object(error)]
    }

    /// The wait a 429 asks for in its `RetryInfo` detail (`"retryDelay": "34s"`), if any.
    public static func retryDelaySeconds(_ body: JSONValue?) -> Double? {
        for detail in body?["error"]?["details"]?.arrayValue ?? [] {
            guard detail["@type"]?.stringValue?.hasSuffix("google.rpc.RetryInfo") == true,
                  let delay = detail["retryDelay"]?.stringValue, delay.hasSuffix("s"), let seconds = Double(delay.dropLast()),
                  seconds.isFinite, seconds >= 0 else { continue }
            return min(seconds, 86_400)
        }
        return nil
    }
}
