/// Joins a continuation stream onto text the client already has, so the client sees no
/// repeated and no missing text.
///
/// Lifeline asks the next deployment to continue from `sent` with its trailing whitespace
/// removed (providers refuse a prefill that ends in whitespace). Upstreams answer in one of
/// four ways, and the splicer holds the continuation back only as long as it cannot yet tell
/// which:
/// - they honour the prefill and send the rest, often starting with the trimmed whitespace
///   (dropped);
/// - they restart the answer and repeat `sent` exactly (dropped);
/// - they repeat a recent suffix of `sent` and go on from there (the repeat is dropped);
/// - they restart with an answer that starts like `sent` but words it differently (a real
///   model that sees the prefill as an earlier turn, such as llama.cpp's chat server). Then the
///   end of `sent` is looked for in the new answer — its last words, the last one possibly cut
///   short — and the new answer is taken up after them; failing that, after as many sentences
///   as `sent` has begun (or, when `sent` stopped after a comma, after as many clauses of the
///   matching sentence). A restart is told from a continuation by how it begins: like an
///   answer, without whitespace, with the first word of `sent`, or with a capital where `sent`
///   ended on punctuation. Nothing of the new answer before that point reaches the client.
public struct ContinuationSplicer: Sendable {
    public let sent: String
    /// What to send as the assistant prefill.
    public let prefill: String
    private let trimmedWhitespace: String
    private let sentCharacters: [Character]
    private var held: [Character] = []
    private var decided = false
    /// True until the splicer has told a continuation from a restart; until then it holds text back.
    public var isHolding: Bool { !decided }

    /// A repeated suffix shorter than this (or of one word) could be chance, not a repeat.
    static let minimumRepeatedSuffix = 12
    /// Only this much of the end of `sent` is looked for as a repeat.
    static let longestRepeatedSuffix = 400
    /// A reworded restart is aligned once it is this much longer than `sent` (or has ended).
    static let alignmentLookahead = 40
    /// Longest run of last words of `sent` looked for in a reworded restart; at least two must match.
    static let longestAnchor = 8

    public init(sent: String) {
        self.sent = sent
        var prefill = sent
        while let last = prefill.last, last.isWhitespace { prefill.removeLast() }
        self.prefill = prefill
        self.trimmedWhitespace = String(sent.dropFirst(prefill.count))
        self.sentCharacters = Array(sent)
    }

    /// Accepts the next piece of the continuation; returns what to send to the client now.
    public mutating func accept(_ piece: String) -> String {
        if decided { return piece }
        held += piece
        guard let out = decide(final: false) else { return "" }
        decided = true
        held = []
        return out
    }

    /// Called when the continuation ends; returns anything still held back. A continuation that
    /// ended while still repeating `sent` added nothing new.
    public mutating func finish() -> String {
        defer { held = []; decided = true }
        if decided { return "" }
        return decide(final: true) ?? ""
    }

    /// What to release from the held text, or nil to keep holding.
    private func decide(final: Bool) -> String? {
        let sent = sentCharacters
        if sent.isEmpty { return String(held) }
        // An exact restart: hold while it still repeats `sent`, then drop the repeat.
        if held.starts(with: sent) { return String(held.dropFirst(sent.count)) }
        if held.count < sent.count, sent.starts(with: held) { return final ? "" : nil }
        // A repeated suffix of `sent`, the longest that fits.
        // (It may come with whitespace before it, like any new word.)
        let leading = held.prefix(while: \.isWhitespace).count
        let repeated = held[leading...]
        let suffixes = repeatableSuffixStarts()
        if let start = suffixes.first(where: { repeated.starts(with: sent[$0...]) }) {
            return String(held.dropFirst(leading + sent.count - start))
        }
        if !final, suffixes.contains(where: { repeated.count < sent.count - $0 && sent[$0...].starts(with: repeated) }) { return nil }
        // A reworded restart starts, like any answer, without whitespace, and with the same
        // first word as `sent` (a continuation's new word would begin with whitespace).
        if leading == 0, let first = Self.words(in: held).first, first.range.upperBound < held.count || final,
           let sentFirst = Self.words(in: sent).first, Self.words(in: sent).count > 1,
           Self.normalized(first.text) == Self.normalized(sentFirst.text)
        {
            return align(final: final)
        }
        if !final, leading == 0, Self.words(in: held).first.map({ $0.range.upperBound >= held.count }) ?? true,
           let sentFirst = Self.words(in: sent).first, Self.normalized(sentFirst.text).hasPrefix(Self.normalized(String(held)))
        {
            // Its first word is not complete yet and could still be the first word of `sent`.
            return nil
        }
        // So does one that begins with a capital right after `sent` ended on punctuation: a
        // continuation there would begin with whitespace.
        if leading == 0, trimmedWhitespace.isEmpty, let last = sent.last, ".,;:!?".contains(last), held.first?.isUppercase == true {
            return align(final: final)
        }
        // A continuation proper.
        let whitespace = Array(trimmedWhitespace)
        if !whitespace.isEmpty, held.starts(with: whitespace) { return String(held.dropFirst(whitespace.count)) }
        return String(held)
    }

    /// Where suffixes of `sent` that a continuation may repeat begin: at word starts, long
    /// enough and at least two words, longest first; plus the trimmed whitespace is handled apart.
    private func repeatableSuffixStarts() -> [Int] {
        let sent = sentCharacters
        let earliest = max(1, sent.count - Self.longestRepeatedSuffix)
        var starts: [Int] = []
        var index = earliest
        while index <= sent.count - Self.minimumRepeatedSuffix {
            if !sent[index].isWhitespace, sent[index - 1].isWhitespace,
               sent[index...].contains(where: \.isWhitespace), sent[index...].contains(where: { !$0.isWhitespace })
            {
                let words = Self.words(in: Array(sent[index...]))
                if words.count >= 2 { starts.append(index) }
            }
            index += 1
        }
        return starts
    }

    /// Splices a reworded restart after the point that matches the end of `sent`.
    private func align(final: Bool) -> String? {
        let sent = sentCharacters
        guard final || held.count >= sent.count + Self.alignmentLookahead else { return nil }
        let common = zip(held, sent).prefix { $0 == $1 }.count
        if let splice = anchorSplice(after: common) { return String(held[splice...]) }
        // Fall back to sentences: take the restart up after as many sentences as `sent` has begun…
        let sentEnds = Self.sentenceEnds(in: sent)
        let partial = sent[(sentEnds.last ?? 0)...]
        let begun = sentEnds.count + (partial.contains { !$0.isWhitespace } ? 1 : 0)
        let heldEnds = Self.sentenceEnds(in: held)
        // …unless `sent` stopped right after a clause (a comma, say): then after as many clauses of
        // the restart's matching sentence, if it has them.
        if let last = partial.last(where: { !$0.isWhitespace }), Self.clauseMarks.contains(last) {
            let clauses = Self.clauseEnds(in: Array(partial)).count
            let sentenceStart = sentEnds.count == 0 ? 0 : (heldEnds.count >= sentEnds.count ? heldEnds[sentEnds.count - 1] : nil)
            if let sentenceStart {
                let sentenceEnd = heldEnds.count > sentEnds.count ? heldEnds[sentEnds.count] : held.count
                let marks = Self.clauseEnds(in: Array(held[sentenceStart..<sentenceEnd])).map { $0 + sentenceStart }
                if marks.count >= clauses, marks[clauses - 1] < sentenceEnd { return releaseAfter(marks[clauses - 1]) }
            }
        }
        if heldEnds.count >= begun, begun > 0 { return releaseAfter(heldEnds[begun - 1]) }
        if final { return "" }
        // A restart far longer than `sent` with too few sentences: take it up after its last one.
        if held.count > 4 * sent.count + 400 { return heldEnds.last.map(releaseAfter) ?? String(held) }
        return nil
    }

    /// The restart from `position` on, without leading whitespace when `sent` already ends in some.
    private func releaseAfter(_ position: Int) -> String {
        var start = position
        if !trimmedWhitespace.isEmpty { while start < held.count, held[start].isWhitespace { start += 1 } }
        return String(held[start...])
    }

    /// The position in the restart just after the last words of `sent`, if they occur there past
    /// the part both share.
    private func anchorSplice(after common: Int) -> Int? {
        let sentWords = Self.words(in: sentCharacters)
        let heldWords = Self.words(in: held)
        let endsInWord = trimmedWhitespace.isEmpty
        var length = min(Self.longestAnchor, sentWords.count)
        while length >= 2 {
            let anchor = sentWords.suffix(length)
            let lastSent = anchor.last!.text
            var start = 0
            while start + length <= heldWords.count {
                let candidate = heldWords[start..<(start + length)]
                let leading = zip(anchor.dropLast(), candidate.dropLast()).allSatisfy { Self.normalized($0.text) == Self.normalized($1.text) }
                let last = candidate.last!
                if leading {
                    // The last word of `sent` may have been cut mid-word: it need only begin the restart's word.
                    let splice: Int? = endsInWord
                        ? (last.text.hasPrefix(lastSent) ? last.range.lowerBound + lastSent.count : nil)
                        : (Self.normalized(last.text) == Self.normalized(lastSent) ? last.range.upperBound : nil)
                    if let splice, splice > common { return endsInWord ? splice : skipWhitespace(from: splice) }
                }
                start += 1
            }
            length -= 1
        }
        return nil
    }

    private func skipWhitespace(from position: Int) -> Int {
        var position = position
        while position < held.count, held[position].isWhitespace { position += 1 }
        return position
    }

    struct Word {
        var text: String
        var range: Range<Int>
    }

    /// Runs of non-whitespace, with their positions.
    static func words(in characters: some Collection<Character>) -> [Word] {
        var words: [Word] = []
        var current = ""
        var start = 0
        for (index, character) in characters.enumerated() {
            if character.isWhitespace {
                if !current.isEmpty { words.append(Word(text: current, range: start..<index)); current = "" }
            } else {
                if current.isEmpty { start = index }
                current.append(character)
            }
        }
        if !current.isEmpty { words.append(Word(text: current, range: start..<(start + current.count))) }
        return words
    }

    /// A word compared without case or the punctuation around it.
    static func normalized(_ word: String) -> String {
        String(word.lowercased().drop { !$0.isLetter && !$0.isNumber }.reversed().drop { !$0.isLetter && !$0.isNumber }.reversed())
    }

    static let clauseMarks: Set<Character> = [",", ";", ":"]

    /// Positions just after each clause mark that is followed by whitespace or the end.
    static func clauseEnds(in characters: [Character]) -> [Int] {
        characters.indices.filter { clauseMarks.contains(characters[$0]) && ($0 + 1 == characters.count || characters[$0 + 1].isWhitespace) }
            .map { $0 + 1 }
    }

    /// Positions just after each sentence end: `.`, `!` or `?` before whitespace or the end, or a line break.
    static func sentenceEnds(in characters: [Character]) -> [Int] {
        var ends: [Int] = []
        for (index, character) in characters.enumerated() {
            if character == "\n" {
                if ends.last != index { ends.append(index + 1) }
            } else if ".!?".contains(character), index + 1 == characters.count || characters[index + 1].isWhitespace {
                ends.append(index + 1)
            }
        }
        return ends
    }
}
