/// Lifeline's own estimate of a prompt's token count, for when no upstream counts it.
///
/// About four characters a token (the common rule of thumb for English text with the GPT and
/// Claude tokenizers), plus a few tokens of framing per message and per tool, never zero. It is
/// an estimate: it can be off by a quarter either way on real text, more on code or other scripts.
public enum TokenEstimate {
    public static let charactersPerToken = 4
    public static let tokensPerMessage = 4
    public static let tokensPerTool = 8

    public static func promptTokens(for request: ChatRequest) -> Int {
        var characters = request.system?.count ?? 0
        var framing = request.system == nil ? 0 : tokensPerMessage
        for message in request.messages {
            characters += message.text.count
            for call in message.toolCalls { characters += call.name.count + call.arguments.count }
            framing += tokensPerMessage
        }
        for tool in request.tools {
            characters += tool.name.count + (tool.description?.count ?? 0) + JSONCoding.encodeString(tool.parameters).count
            framing += tokensPerTool
        }
        return max(1, (characters + charactersPerToken - 1) / charactersPerToken + framing)
    }
}
