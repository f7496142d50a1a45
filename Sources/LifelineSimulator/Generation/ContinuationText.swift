import LifelineCore
import LifelineWire

/// Carries on from an assistant prefill that is not the start of the simulator's own answer
/// (another model's text, a stream resumed from another upstream), as a real model given a
/// prefill does: words that go on from where the prefill stops — finishing a cut word, the
/// sentence or the clause — and never a new opening. Deterministic: the seed is the request's
/// (without the prefill) mixed with the prefill's length and last words.
enum ContinuationText {
    /// Words that follow an article or a possessive: the nouns of the simulator's phrases.
    static let nouns = [
        "system", "service", "request", "gateway", "operator", "provider", "approach", "deployment", "budget", "stream", "team",
        "answer", "load", "signal", "capacity", "path", "conversation",
    ]
    static let determiners: Set<String> = ["the", "a", "an", "every", "each", "this", "that", "its", "their", "our", "your", "my", "his", "her"]
    static let connectors = ["and", "which", "so that it", "while it"]

    /// Every word the simulator writes, lowercased: a prefill's last word that only begins one
    /// of them was cut short and is completed.
    static let vocabulary: Set<String> = {
        let phrases = DeterministicText.openers + DeterministicText.subjects + DeterministicText.verbs + DeterministicText.objects
            + DeterministicText.endings + nouns
        return Set(phrases.flatMap { $0.lowercased().split(separator: " ").map(String.init) })
    }()

    /// The continuation as tokens (words with their leading space, as answers are).
    static func tokens(after prefill: String, request: ChatRequest, choice: Int) -> [String] {
        let words = prefill.split(whereSeparator: \.isWhitespace).map(String.init)
        var hash = StableHash()
        hash.combine(String(DeterministicText.seed(for: request, choice: choice)))
        hash.combine(prefill.utf8.count)
        hash.combine(words.suffix(3).joined(separator: " "))
        var generator = SeededGenerator(seed: hash.value)

        var text: [String] = []
        var gluedToPrefill = prefill.last?.isWhitespace ?? true
        let lastMark = prefill.last(where: { !$0.isWhitespace })
        var lastWord = words.last.map(letters) ?? ""
        if let lastMark, ".!?".contains(lastMark) {
            // A finished sentence: new ones follow.
        } else if let lastMark, ",;:".contains(lastMark) {
            text.append(clause(using: &generator))
        } else {
            if !gluedToPrefill, prefill.last?.isLetter == true, let completion = completion(of: lastWord, using: &generator) {
                text.append(completion)
                lastWord += completion
                gluedToPrefill = true
            }
            let phrase = determiners.contains(lastWord.lowercased())
                ? nouns.randomElement(using: &generator)! + " " + clause(using: &generator, withSubject: false)
                : connectors.randomElement(using: &generator)! + " " + clause(using: &generator, withSubject: false)
            text.append(phrase)
        }
        for _ in 0..<Int.random(in: 1...3, using: &generator) {
            let sentence = clause(using: &generator)
            text.append(sentence.prefix(1).uppercased() + sentence.dropFirst())
        }
        // Word tokens: the first glued to the prefill when it ended in whitespace or a cut word.
        var tokens: [String] = []
        for (index, part) in text.enumerated() {
            let partWords = part.split(separator: " ").map(String.init)
            for (wordIndex, word) in partWords.enumerated() {
                let glued = index == 0 && wordIndex == 0 && gluedToPrefill
                tokens.append(glued ? word : " " + word)
            }
        }
        return tokens
    }

    /// "subject verb object [ending]." (or without the subject), lowercase.
    static func clause(using generator: inout SeededGenerator, withSubject: Bool = true) -> String {
        var parts: [String] = []
        if withSubject { parts.append(DeterministicText.subjects.randomElement(using: &generator)!) }
        parts.append(DeterministicText.verbs.randomElement(using: &generator)!)
        parts.append(DeterministicText.objects.randomElement(using: &generator)!)
        if Bool.random(using: &generator) { parts.append(DeterministicText.endings.randomElement(using: &generator)!) }
        return parts.joined(separator: " ") + "."
    }

    /// The rest of `word` when it only begins a word of the vocabulary (it was cut short).
    static func completion(of word: String, using generator: inout SeededGenerator) -> String? {
        let lowered = word.lowercased()
        guard !lowered.isEmpty, lowered.allSatisfy(\.isLetter), !vocabulary.contains(lowered),
              !DeterministicText.fillerWords.contains(lowered), !determiners.contains(lowered) else { return nil }
        let candidates = vocabulary.filter { $0.count > lowered.count && $0.hasPrefix(lowered) }.sorted()
        guard let chosen = candidates.randomElement(using: &generator) else { return nil }
        return String(chosen.dropFirst(lowered.count))
    }

    static func letters(_ word: String) -> String { String(word.filter(\.isLetter)) }
}
