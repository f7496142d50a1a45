import Foundation

/// Finds stop sequences in streamed text, for upstreams that stop on them but do not say which
/// one matched (OpenAI says only `stop`; Anthropic clients expect `stop_sequence`). The gateway
/// then stops the text itself: it holds back just enough characters to see a sequence that is
/// split across chunks.
public struct StopSequenceScanner: Sendable {
    public let sequences: [String]
    private let holdBack: Int
    private var held = ""
    public private(set) var matched: String?

    public init(sequences: [String]) {
        self.sequences = sequences.filter { !$0.isEmpty }
        holdBack = max(0, (self.sequences.map(\.count).max() ?? 0) - 1)
    }

    /// Text that is safe to send now. After a match, returns the text before it and nothing more.
    public mutating func accept(_ text: String) -> String {
        guard matched == nil else { return "" }
        held += text
        var earliest: (range: Range<String.Index>, sequence: String)?
        for sequence in sequences {
            if let range = held.range(of: sequence), earliest == nil || range.lowerBound < earliest!.range.lowerBound {
                earliest = (range, sequence)
            }
        }
        if let earliest {
            matched = earliest.sequence
            let before = String(held[..<earliest.range.lowerBound])
            held = ""
            return before
        }
        let safeCount = max(0, held.count - holdBack)
        let safe = String(held.prefix(safeCount))
        held.removeFirst(safeCount)
        return safe
    }

    /// The held-back text once the stream ends without a match.
    public mutating func finish() -> String {
        defer { held = "" }
        return matched == nil ? held : ""
    }

    /// Applies the scan to a whole text at once.
    public static func cut(_ text: String, at sequences: [String]) -> (text: String, matched: String?) {
        var scanner = StopSequenceScanner(sequences: sequences)
        let head = scanner.accept(text)
        return (head + scanner.finish(), scanner.matched)
    }
}
