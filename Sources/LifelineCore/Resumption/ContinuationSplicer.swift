/// Joins a continuation stream onto text the client already has, so the client sees no
/// repeated and no missing text.
///
/// Lifeline asks the next deployment to continue from `sent` with its trailing whitespace
/// removed (providers refuse a prefill that ends in whitespace). An upstream that honours the
/// prefill answers with the rest, starting with that whitespace; one that ignores it restarts the
/// answer from the beginning. The splicer holds back the continuation while it could still be a
/// restart, then drops whichever overlap it sees.
public struct ContinuationSplicer: Sendable {
    public let sent: String
    /// What to send as the assistant prefill.
    public let prefill: String
    private let trimmedWhitespace: String
    private var held = ""
    private var decided = false
    private var dropFromStart = 0

    public init(sent: String) {
        self.sent = sent
        var prefill = sent
        while let last = prefill.last, last.isWhitespace { prefill.removeLast() }
        self.prefill = prefill
        self.trimmedWhitespace = String(sent.dropFirst(prefill.count))
    }

    /// Accepts the next piece of the continuation; returns what to send to the client now.
    public mutating func accept(_ piece: String) -> String {
        if decided { return piece }
        held += piece
        // A restart repeats `sent`: wait while what came so far is still a prefix of it.
        if held.count < sent.count, sent.hasPrefix(held) { return "" }
        decided = true
        let continuation = held
        held = ""
        if continuation.hasPrefix(sent) { return String(continuation.dropFirst(sent.count)) }
        if !trimmedWhitespace.isEmpty, continuation.hasPrefix(trimmedWhitespace) {
            return String(continuation.dropFirst(trimmedWhitespace.count))
        }
        return continuation
    }

    /// Called when the continuation ends; returns anything still held back. A continuation that
    /// ended while still repeating `sent` added nothing new.
    public mutating func finish() -> String {
        defer { held = ""; decided = true }
        if decided || sent.hasPrefix(held) { return "" }
        return held
    }
}
