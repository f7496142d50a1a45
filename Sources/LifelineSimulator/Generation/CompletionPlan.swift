import Foundation
import LifelineWire

/// What the simulator will send for one choice: text pieces (one per token) or tool calls.
public struct CompletionPlan: Sendable, Equatable {
    public var pieces: [String]
    public var toolCalls: [ToolCall]
    public var finishReason: FinishReason
    public var stopSequence: String?
    /// Reasoning shown before the answer, as words, when the request asked for thinking.
    public var reasoning: [String] = []
    public var text: String { pieces.joined() }
    public var completionTokens: Int { toolCalls.isEmpty ? pieces.count : toolCalls.reduce(0) { $0 + max(1, $1.arguments.count / 4) } }

    /// Plans choice `choice` of `request`: tools first, then text with prefill, stop sequences and token limit applied.
    /// An assistant prefill is continued: its own answer's prefix exactly, any other text naturally.
    public static func make(for request: ChatRequest, choice: Int) -> CompletionPlan {
        let lastRole = request.messages.last?.role
        if !request.tools.isEmpty, request.toolChoice != ToolChoice.none, lastRole == .user {
            return toolCallPlan(for: request, choice: choice)
        }
        var tokens = DeterministicText.answer(for: request, choice: choice).tokens
        if let format = request.responseFormat?["type"]?.stringValue, format != "text" {
            tokens = jsonTokens(answer: tokens.joined(), schema: request.responseFormat?["json_schema"]?["schema"])
        }
        var pieces = tokens
        if let prefill = request.assistantPrefill, !prefill.isEmpty {
            // Its own text is continued exactly (a resumed stream then equals the unfailed one);
            // any other text is carried on naturally rather than answered again from the start.
            pieces = tokens.joined().hasPrefix(prefill)
                ? remainder(of: tokens, after: prefill.utf8.count)
                : ContinuationText.tokens(after: prefill, request: request, choice: choice)
        }
        var plan = CompletionPlan(pieces: pieces, toolCalls: [], finishReason: .stop, stopSequence: nil)
        let thinks = request.thinkingBudget != nil || request.reasoningEffort.flatMap(ReasoningTranslation.budget(forEffort:)) != nil
        if thinks, request.assistantPrefill == nil {
            let topic = DeterministicText.topicWords(request.messages.last(where: { $0.role == .user })?.text ?? request.system ?? "")
            let thought = "The question is about \(topic.isEmpty ? "the instructions" : topic), so a short and plain answer fits."
            plan.reasoning = thought.split(separator: " ").enumerated().map { $0.offset == 0 ? String($0.element) : " " + $0.element }
        }
        plan.applyStopSequences(request.stop)
        if let limit = request.maxTokens, plan.pieces.count > limit {
            plan.pieces = Array(plan.pieces.prefix(limit))
            plan.finishReason = .length
            plan.stopSequence = nil
        }
        return plan
    }

    /// The tokens that follow the first `byteCount` bytes; a token cut by the prefill is sent in part.
    static func remainder(of tokens: [String], after byteCount: Int) -> [String] {
        var consumed = 0
        var result: [String] = []
        for token in tokens {
            let length = token.utf8.count
            if consumed >= byteCount {
                result.append(token)
            } else if consumed + length > byteCount {
                result.append(String(decoding: Array(token.utf8)[(byteCount - consumed)...], as: UTF8.self))
            }
            consumed += length
        }
        return result
    }

    mutating func applyStopSequences(_ sequences: [String]) {
        let text = self.text
        var earliest: (offset: Int, sequence: String)?
        for sequence in sequences where !sequence.isEmpty {
            if let range = text.range(of: sequence) {
                let offset = text.utf8.distance(from: text.startIndex, to: range.lowerBound)
                if earliest == nil || offset < earliest!.offset { earliest = (offset, sequence) }
            }
        }
        guard let earliest else { return }
        var kept: [String] = []
        var consumed = 0
        for piece in pieces {
            let length = piece.utf8.count
            if consumed + length <= earliest.offset {
                kept.append(piece)
            } else {
                let part = Array(piece.utf8)[..<(earliest.offset - consumed)]
                if !part.isEmpty { kept.append(String(decoding: part, as: UTF8.self)) }
                break
            }
            consumed += length
        }
        pieces = kept
        finishReason = .stopSequence
        stopSequence = earliest.sequence
    }

    static func toolCallPlan(for request: ChatRequest, choice: Int) -> CompletionPlan {
        let tool: ToolDefinition
        if case .named(let name)? = request.toolChoice, let named = request.tools.first(where: { $0.name == name }) {
            tool = named
        } else {
            tool = request.tools[0]
        }
        let seed = DeterministicText.seed(for: request, choice: choice)
        let topic = request.messages.last?.text ?? ""
        let arguments = JSONCoding.encodeString(exampleValue(for: tool.parameters, topic: topic, seed: seed))
        let id = "call_" + String(seed, radix: 16)
        return CompletionPlan(pieces: [], toolCalls: [ToolCall(id: id, name: tool.name, arguments: arguments)],
                              finishReason: .toolCalls, stopSequence: nil)
    }

    /// A value that fits a JSON schema, filled from the prompt where a string is wanted.
    static func exampleValue(for schema: JSONValue?, topic: String, seed: UInt64) -> JSONValue {
        if let choices = schema?["enum"]?.arrayValue, let first = choices.first { return first }
        switch schema?["type"]?.stringValue {
        case "integer": return .number(Double(seed % 100))
        case "number": return .number(Double(seed % 1000) / 10)
        case "boolean": return .bool(seed % 2 == 0)
        case "array": return .array([exampleValue(for: schema?["items"], topic: topic, seed: seed)])
        case "string": return .string(String(topic.prefix(40)))
        default:
            var object: [String: JSONValue] = [:]
            for (key, property) in schema?["properties"]?.objectValue ?? [:] {
                object[key] = exampleValue(for: property, topic: topic, seed: seed)
            }
            return .object(object)
        }
    }

    static func jsonTokens(answer: String, schema: JSONValue?) -> [String] {
        let value: JSONValue = schema.map { exampleValue(for: $0, topic: answer, seed: 7) } ?? ["answer": .string(answer)]
        let text = JSONCoding.encodeString(value)
        var tokens: [String] = []
        var current = ""
        for character in text {
            if character == " ", !current.isEmpty { tokens.append(current); current = "" }
            current.append(character)
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }
}
