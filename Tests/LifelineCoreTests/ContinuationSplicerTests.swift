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
}
