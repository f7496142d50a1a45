/// Maps OpenAI's `reasoning_effort` onto Anthropic's extended-thinking budget and back.
///
/// The two say the same thing in different units: a named effort, or a number of tokens the
/// model may think for. The budgets are steps Anthropic's own guidance uses (1,024 is its
/// minimum); the way back picks the effort whose budget is nearest below.
public enum ReasoningTranslation {
    /// Anthropic's smallest thinking budget.
    public static let minimumBudget = 1024

    /// The thinking budget for an effort; nil for `none` (no thinking) and unknown values.
    public static func budget(forEffort effort: String) -> Int? {
        switch effort {
        case "minimal", "low": 1024
        case "medium": 4096
        case "high": 16384
        case "xhigh", "max": 32768
        default: nil
        }
    }

    /// The effort for a thinking budget.
    public static func effort(forBudget budget: Int) -> String {
        switch budget {
        case ..<4096: "low"
        case ..<16384: "medium"
        default: "high"
        }
    }

    /// The budget that fits under `maxTokens` (Anthropic requires budget < max_tokens), or nil
    /// when not even the minimum fits, and thinking is then left off.
    public static func fitted(budget: Int, maxTokens: Int) -> Int? {
        let fitted = min(budget, maxTokens - 1)
        return fitted >= minimumBudget ? fitted : nil
    }
}
