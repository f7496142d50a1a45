import LifelineCore
import XCTest

final class ContinuationSplicerTests: XCTestCase {
    /// Feeds `pieces` and returns everything the client would see after `sent`.
    func splice(sent: String, _ pieces: [String]) -> String {
        var splicer = ContinuationSplicer(sent: sent)
        var out = ""
        for piece in pieces { out += splicer.accept(piece) }
        return out + splicer.finish()
    }

    func testPrefillIsSentWithoutTrailingWhitespace() {
        XCTAssertEqual(ContinuationSplicer(sent: "Hello world \n").prefill, "Hello world")
        XCTAssertEqual(ContinuationSplicer(sent: "Hello").prefill, "Hello")
    }

    func testHonouredPrefillPassesTheContinuationThrough() {
        XCTAssertEqual(splice(sent: "Hello world", [" and", " more."]), " and more.")
    }

    func testWhitespaceTrimmedFromThePrefillIsNotSentTwice() {
        XCTAssertEqual(splice(sent: "Hello world ", [" and", " more."]), "and more.")
    }

    func testARestartedAnswerIsTrimmedToTheNewPart() {
        XCTAssertEqual(splice(sent: "Hello world", ["Hel", "lo", " wor", "ld", " and", " more."]), " and more.")
    }

    func testARestartThatEndsWhileRepeatingAddsNothing() {
        XCTAssertEqual(splice(sent: "Hello world", ["Hello", " wo"]), "")
    }

    func testAContinuationThatMerelyStartsLikeTheSentTextIsKept() {
        // "He" is a prefix of "Hello" but the continuation then diverges: nothing is dropped.
        XCTAssertEqual(splice(sent: "Hello", ["He", " said"]), "He said")
    }

    func testEmptySentTextPassesEverything() {
        XCTAssertEqual(splice(sent: "", ["a", "b"]), "ab")
    }

    /// Feeds `text` in pieces of `size` characters, as a model streams tokens.
    func splice(sent: String, streaming text: String, size: Int = 3) -> String {
        var pieces: [String] = []
        var rest = Substring(text)
        while !rest.isEmpty { pieces.append(String(rest.prefix(size))); rest = rest.dropFirst(size) }
        return splice(sent: sent, pieces)
    }

    /// Sentences (split at `.`, `!`, `?`) that occur more than once in `text`.
    func repeatedSentences(_ text: String) -> [String] {
        var seen: Set<String> = []
        var repeated: [String] = []
        for sentence in text.split(whereSeparator: { ".!?".contains($0) }).map({ $0.trimmingCharacters(in: .whitespaces) })
            where !sentence.isEmpty
        {
            if !seen.insert(sentence).inserted { repeated.append(sentence) }
        }
        return repeated
    }

    func testARepeatedSuffixOfTheSentTextIsDropped() {
        let sent = "The sky looks blue because the air"
        XCTAssertEqual(splice(sent: sent, streaming: " because the air scatters blue light."), " scatters blue light.")
        XCTAssertEqual(splice(sent: sent + " ", streaming: "because the air scatters blue light."), "scatters blue light.")
        // The repeat may end mid-word, where the sent text did.
        XCTAssertEqual(splice(sent: "It rained all day and the stre", streaming: "all day and the streets flooded."), "ets flooded.")
    }

    func testAShortCoincidentalOverlapIsNotTakenForARepeat() {
        // "is" ends the sent text and begins the continuation, but two short words are chance.
        XCTAssertEqual(splice(sent: "What it is", streaming: " is what it is."), " is what it is.")
    }

    func testARewordedRestartIsTakenUpAfterTheLastWordsSent() {
        let sent = "Paris is the capital of France. It is known for the Eiff"
        let restart = "Paris is the capital of France. It is famous for the Eiffel Tower, its museums and its cafés, "
            + "which visitors from all over the world come to see."
        let out = splice(sent: sent, streaming: restart)
        XCTAssertEqual(out, "el Tower, its museums and its cafés, which visitors from all over the world come to see.")
        XCTAssertEqual(repeatedSentences(sent + out), [])
    }

    func testARewordedRestartOfCompleteWordsKeepsOneSpaceAtTheSplice() {
        let sent = "Water boils at 100 degrees. At high altitude it boils "
        let restart = "Water boils at 100 degrees Celsius. At high altitude, it boils at a lower temperature because the air pressure is lower."
        XCTAssertEqual(splice(sent: sent, streaming: restart), "at a lower temperature because the air pressure is lower.")
    }

    func testARewordedRestartWithoutMatchingWordsResumesAtTheNextSentence() {
        let sent = "Cats sleep a lot. They hunt at dawn and"
        let restart = "Cats sleep for most of the day. Hunting happens mostly at night. Many also enjoy sitting in the sun."
        let out = splice(sent: sent, streaming: restart)
        XCTAssertEqual(out, " Many also enjoy sitting in the sun.")
        XCTAssertEqual(repeatedSentences(sent + out), [])
    }

    func testARewordedRestartIsTakenUpAfterAsManyClausesWhenTheSentTextEndsAfterAComma() {
        // SmolLM2-135M on llama.cpp, cut after 12 tokens and asked to continue.
        let sent = "The sun is a celestial body that orbits around the Earth,"
        let restart = "The sun is a massive celestial body that shines brightly in the night sky, providing light and heat to our planet."
        XCTAssertEqual(splice(sent: sent, streaming: restart), " providing light and heat to our planet.")
        // In a later sentence, too.
        XCTAssertEqual(splice(sent: "Cats sleep a lot. When they wake,", streaming: "Cats sleep for hours. Once awake, they hunt."),
                       " they hunt.")
    }

    func testARestartWithOtherFirstWordsAfterPunctuationIsStillTrimmed() {
        // A continuation after "Earth," would begin with whitespace; a capital begins a new answer.
        let sent = "The sun is a celestial body that orbits around the Earth,"
        XCTAssertEqual(splice(sent: sent, streaming: "A massive ball of glowing gas, the sun gives light and heat to our planet."),
                       " the sun gives light and heat to our planet.")
        XCTAssertEqual(splice(sent: "Cats sleep a lot.", streaming: "Felines rest for hours. They also hunt at night."),
                       " They also hunt at night.")
        // With whitespace first it is a continuation, capital or not.
        XCTAssertEqual(splice(sent: "Cats sleep a lot.", streaming: " They also hunt at night."), " They also hunt at night.")
        // Where `sent` ended in whitespace the prefill lost, a capital may well continue it.
        XCTAssertEqual(splice(sent: "Cats sleep a lot. ", streaming: "They also hunt at night."), "They also hunt at night.")
    }

    func testARewordedRestartThatEndsEarlyAddsOnlyWhatComesAfterTheSentText() {
        // Ends before the alignment lookahead: aligned at the end, on the last words.
        XCTAssertEqual(splice(sent: "Hello! I am a small model and I can", streaming: "Hello! I am a tiny model and I can help."),
                       " help.")
        // Ends with nothing beyond the sentences already sent.
        XCTAssertEqual(splice(sent: "Hello! I am a small model. I can", streaming: "Hello! I am a tiny model."), "")
    }

    func testAContinuationStartingWithTheFirstWordAsANewWordIsKept() {
        // A continuation's new word comes with whitespace; only an answer's start comes without.
        XCTAssertEqual(splice(sent: "Yes, it is", streaming: " yes indeed."), " yes indeed.")
    }

    func testAContinuationOfTheLastWordIsKept() {
        XCTAssertEqual(splice(sent: "The lighthouse keeper climbs the stai", streaming: "rs at dawn."), "rs at dawn.")
    }

    func testARestartIsTrimmedWhateverThePieceSizes() {
        let sent = "Rain falls when drops in a cloud grow heavy. Then they"
        let restart = "Rain falls when drops in a cloud become heavy. Then they fall to the ground as rain or snow, depending on the air."
        for size in [1, 2, 5, 17, 200] {
            XCTAssertEqual(splice(sent: sent, streaming: restart, size: size), " fall to the ground as rain or snow, depending on the air.",
                           "pieces of \(size)")
        }
    }
}
