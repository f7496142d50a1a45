/// Why a choice stopped.
public enum FinishReason: String, Sendable, Equatable {
    case stop
    case length
    case toolCalls = "tool_calls"
    case contentFilter = "content_filter"
    /// Stopped on one of the request's stop sequences (Anthropic tells which; OpenAI says `stop`).
    case stopSequence = "stop_sequence"

    public var openAIValue: String { self == .stopSequence ? "stop" : rawValue }

    public var anthropicValue: String {
        switch self {
        case .stop: "end_turn"
        case .contentFilter: "refusal"
        case .length: "max_tokens"
        case .toolCalls: "tool_use"
        case .stopSequence: "stop_sequence"
        }
    }

    public init(openAI value: String) {
        self = FinishReason(rawValue: value) ?? .stop
        if value == "function_call" { self = .toolCalls }
    }

    public init(anthropic value: String) {
        switch value {
        case "max_tokens": self = .length
        case "tool_use": self = .toolCalls
        case "stop_sequence": self = .stopSequence
        case "refusal": self = .contentFilter
        default: self = .stop
        }
    }
}

public struct Usage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int { promptTokens + completionTokens }

    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }

    public static func + (lhs: Usage, rhs: Usage) -> Usage {
        Usage(promptTokens: lhs.promptTokens + rhs.promptTokens, completionTokens: lhs.completionTokens + rhs.completionTokens)
    }
}

/// One complete (non-streamed) answer.
public struct ChatResponse: Sendable, Equatable {
    public var id: String
    public var model: String
    public var created: Int
    public var choices: [ChatChoice]
    public var usage: Usage
    public var stopSequence: String?
    public var systemFingerprint: String?

    public init(id: String, model: String, created: Int, choices: [ChatChoice], usage: Usage) {
        self.id = id
        self.model = model
        self.created = created
        self.choices = choices
        self.usage = usage
    }
}

public struct ChatChoice: Sendable, Equatable {
    public var index: Int
    public var text: String
    public var toolCalls: [ToolCall]
    public var finishReason: FinishReason
    /// OpenAI's logprobs object, forwarded to OpenAI clients only.
    public var logprobs: JSONValue?
    /// The model's visible reasoning: Anthropic's thinking blocks, or the `reasoning_content`
    /// OpenAI-compatible servers send; nil when there was none.
    public var reasoning: String?
    /// The signature Anthropic puts on a thinking block (it checks it when the block comes back).
    public var reasoningSignature: String?

    public init(index: Int, text: String, toolCalls: [ToolCall] = [], finishReason: FinishReason, logprobs: JSONValue? = nil) {
        self.index = index
        self.text = text
        self.toolCalls = toolCalls
        self.finishReason = finishReason
        self.logprobs = logprobs
    }
}

/// One step of a streamed answer, independent of the API that carries it.
public enum ChatEvent: Sendable, Equatable {
    case textDelta(choice: Int, text: String, logprobs: JSONValue?)
    /// A piece of a tool call; `id` and `name` come with the first piece of each call.
    case toolCallDelta(choice: Int, index: Int, id: String?, name: String?, arguments: String)
    case finish(choice: Int, reason: FinishReason, stopSequence: String?)
    case usage(Usage)
    /// A piece of the model's reasoning (thinking); `signature` ends an Anthropic thinking block.
    case reasoningDelta(choice: Int, text: String, signature: String?)
}
