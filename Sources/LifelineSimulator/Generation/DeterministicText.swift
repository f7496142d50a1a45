import LifelineCore
import LifelineWire

/// A 64-bit FNV-1a hash: stable across runs and machines, unlike `Hasher`.
struct StableHash {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func combine(_ string: String) {
        for byte in string.utf8 { value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        value = (value ^ 0xFF) &* 0x0000_0100_0000_01B3
    }

    mutating func combine(_ int: Int) { combine(String(int)) }
}

/// The simulator's answer as tokens; a token is a word with its leading space.
public struct SimulatedAnswer: Sendable, Equatable {
    public var tokens: [String]
    public var text: String { tokens.joined() }
}

/// Makes readable, deterministic answers: the same request gives the same text on every simulator.
public enum DeterministicText {
    static let openers = [
        "Here is a short answer", "Good question", "Let me explain", "In short", "Thanks for asking",
        "Put simply", "From what you describe", "The main point",
    ]
    static let subjects = [
        "the system", "a resilient service", "every request", "the gateway", "a careful operator", "the upstream provider",
        "this approach", "the status page", "a healthy deployment", "the retry budget", "each stream", "the team",
    ]
    static let verbs = [
        "keeps", "measures", "protects", "explains", "balances", "routes", "records", "delivers", "checks", "improves",
        "watches", "shares",
    ]
    static let objects = [
        "the answer", "steady latency", "every token", "the load", "a clear signal", "the remaining capacity", "honest errors",
        "its promises", "the quiet path", "a second chance", "the whole conversation", "useful detail",
    ]
    static let endings = [
        "without surprises", "when it matters", "under pressure", "for everyone", "one step at a time", "as planned",
        "with care", "in plain words", "before anyone notices", "all day long",
    ]

    /// The seed for a request: everything that shapes the answer except a trailing assistant prefill.
    public static func seed(for request: ChatRequest, choice: Int) -> UInt64 {
        var hash = StableHash()
        hash.combine(request.model)
        hash.combine(request.system ?? "")
        let messages = request.assistantPrefill != nil ? request.messages.dropLast() : request.messages[...]
        for message in messages {
            hash.combine(message.role.rawValue)
            hash.combine(message.text)
            for call in message.toolCalls { hash.combine(call.name); hash.combine(call.arguments) }
        }
        hash.combine(request.seed ?? 0)
        hash.combine(choice)
        return hash.value
    }

    /// The full answer before any prefill, stop sequence or token limit is applied.
    public static func answer(for request: ChatRequest, choice: Int) -> SimulatedAnswer {
        var generator = SeededGenerator(seed: seed(for: request, choice: choice))
        let topic = topicWords(request.messages.last(where: { $0.role == .user })?.text ?? "")
        var words: [String] = []
        let opener = openers.randomElement(using: &generator)!
        words += (topic.isEmpty ? opener + "." : opener + " on " + topic + ".").split(separator: " ").map(String.init)
        let sentenceCount = Int.random(in: 2...4, using: &generator)
        for _ in 0..<sentenceCount {
            var sentence = [subjects.randomElement(using: &generator)!, verbs.randomElement(using: &generator)!,
                            objects.randomElement(using: &generator)!]
            if Bool.random(using: &generator) { sentence.append(endings.randomElement(using: &generator)!) }
            var text = sentence.joined(separator: " ")
            text = text.prefix(1).uppercased() + text.dropFirst() + "."
            words += text.split(separator: " ").map(String.init)
        }
        return SimulatedAnswer(tokens: words.enumerated().map { $0.offset == 0 ? $0.element : " " + $0.element })
    }

    static let fillerWords: Set<String> = [
        "a", "an", "the", "me", "my", "i", "you", "your", "please", "tell", "about", "what", "whats", "is", "are", "how",
        "do", "does", "can", "could", "would", "explain", "describe", "of", "to", "and", "in", "on", "for", "with", "why",
        "say", "write", "give", "it", "this", "that", "hello", "hi",
    ]

    /// Up to three content words of the prompt, so answers visibly follow the question.
    static func topicWords(_ prompt: String) -> String {
        prompt.lowercased()
            .split(whereSeparator: { !$0.isLetter && !$0.isNumber })
            .map(String.init)
            .filter { !fillerWords.contains($0) }
            .prefix(3)
            .joined(separator: " ")
    }

    /// A rough token count for usage: words plus a few per message, never zero.
    public static func promptTokens(for request: ChatRequest) -> Int {
        var count = request.system.map { wordCount($0) + 3 } ?? 0
        for message in request.messages { count += wordCount(message.text) + 3 + message.toolCalls.count * 8 }
        return max(count, 1)
    }

    static func wordCount(_ text: String) -> Int {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).count
    }
}
