/// The wire protocol a client or an upstream speaks. Clients speak OpenAI's or Anthropic's;
/// an upstream may speak any of them.
public enum WireProtocol: String, Sendable, Codable, CaseIterable {
    case openai
    case anthropic
    /// Google's Gemini API (`generateContent`); upstreams only.
    case gemini
    /// OpenAI's chat format at Azure OpenAI's URLs, with Azure's key header and errors; upstreams only.
    case azureOpenAI = "azure_openai"
    /// Amazon Bedrock's Converse API; upstreams only.
    case bedrock

    /// The APIs clients speak to Lifeline.
    public static let clientAPIs: [WireProtocol] = [.openai, .anthropic]
}

/// One chat request in Lifeline's own terms, whichever API it arrived on.
///
/// Both APIs decode into this and both upstream protocols encode from it, so routing,
/// failover and resumption are written once.
public struct ChatRequest: Sendable, Equatable {
    public var model: String
    public var system: String?
    public var messages: [ChatMessage]
    public var maxTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    public var stop: [String] = []
    public var seed: Int?
    public var choiceCount: Int = 1
    public var stream: Bool = false
    public var includeUsage: Bool = false
    public var tools: [ToolDefinition] = []
    public var toolChoice: ToolChoice?
    public var responseFormat: JSONValue?
    public var logprobs: Bool = false
    public var topLogprobs: Int?
    public var user: String?
    /// OpenAI's `reasoning_effort`, when the request asked for one.
    public var reasoningEffort: String?
    /// Anthropic's extended thinking budget (`thinking.budget_tokens`), when thinking is enabled.
    public var thinkingBudget: Int?
    /// Fields of the source API that Lifeline does not model; forwarded only to an upstream
    /// speaking the same protocol.
    public var passthrough: [String: JSONValue] = [:]
    public var sourceProtocol: WireProtocol

    public init(model: String, messages: [ChatMessage], sourceProtocol: WireProtocol) {
        self.model = model
        self.messages = messages
        self.sourceProtocol = sourceProtocol
    }

    /// The assistant text that ends the conversation, if it ends with one (a prefill).
    public var assistantPrefill: String? {
        guard let last = messages.last, last.role == .assistant, last.toolCalls.isEmpty else { return nil }
        return last.text
    }
}

public enum ChatRole: String, Sendable, Equatable {
    case user, assistant, tool
}

public struct ChatMessage: Sendable, Equatable {
    public var role: ChatRole
    public var content: [ContentPart]
    /// Calls the assistant made (assistant messages only).
    public var toolCalls: [ToolCall] = []
    /// The call this message answers (tool messages only).
    public var toolCallID: String?
    public var name: String?

    public init(role: ChatRole, content: [ContentPart], toolCalls: [ToolCall] = [], toolCallID: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
    }

    public static func text(_ role: ChatRole, _ text: String) -> ChatMessage {
        ChatMessage(role: role, content: [.text(text)])
    }

    /// All text parts joined.
    public var text: String {
        content.compactMap { if case .text(let t) = $0 { t } else { nil } }.joined()
    }
}

public enum ContentPart: Sendable, Equatable {
    case text(String)
    /// An image or other media part, kept in the source API's own shape.
    case media(JSONValue, source: WireProtocol)
}

public struct ToolDefinition: Sendable, Equatable {
    public var name: String
    public var description: String?
    public var parameters: JSONValue

    public init(name: String, description: String?, parameters: JSONValue) {
        self.name = name
        self.description = description
        self.parameters = parameters
    }
}

public enum ToolChoice: Sendable, Equatable {
    case auto, none, required
    case named(String)
}

public struct ToolCall: Sendable, Equatable {
    public var id: String
    public var name: String
    /// The arguments as a JSON text, as OpenAI carries them.
    public var arguments: String

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}
