@testable import LifelineSimulator
import LifelineWire
import XCTest

final class SimulatorTests: XCTestCase {
    func request(_ prompt: String, prefill: String? = nil) -> ChatRequest {
        var messages: [ChatMessage] = [.text(.user, prompt)]
        if let prefill { messages.append(.text(.assistant, prefill)) }
        return ChatRequest(model: "m", messages: messages, sourceProtocol: .openai)
    }

    func testTheSameRequestGivesTheSameAnswerAndDifferentPromptsDiffer() {
        let first = CompletionPlan.make(for: request("tell me about queues"), choice: 0)
        XCTAssertEqual(first, CompletionPlan.make(for: request("tell me about queues"), choice: 0))
        XCTAssertNotEqual(first.text, CompletionPlan.make(for: request("tell me about breakers"), choice: 0).text)
        XCTAssertTrue(first.text.contains("queues"), first.text)
        XCTAssertGreaterThan(first.pieces.count, 10)
    }

    func testAPrefillThatIsAPrefixIsContinued() {
        let full = CompletionPlan.make(for: request("prefill test"), choice: 0).text
        for cut in [1, 7, full.count / 2, full.count - 1] {
            let prefix = String(full.prefix(cut))
            let rest = CompletionPlan.make(for: request("prefill test", prefill: prefix), choice: 0).text
            XCTAssertEqual(prefix + rest, full)
        }
        // Not its own text: carried on, not answered again from the start.
        let other = CompletionPlan.make(for: request("prefill test", prefill: "Something else"), choice: 0).text
        XCTAssertFalse(full.contains(other.trimmingCharacters(in: .whitespaces)), other)
        XCTAssertTrue(other.hasPrefix(" "), other)
    }

    /// The answer another model id gives to the same prompt: what a resumed stream's prefill holds.
    func foreignAnswer(_ prompt: String) -> String {
        var other = request(prompt)
        other.model = "another-model"
        return CompletionPlan.make(for: other, choice: 0).text
    }

    func testAnotherModelsTextIsCarriedOnWithoutASecondOpening() {
        let own = CompletionPlan.make(for: request("retry budgets"), choice: 0).text
        let foreign = foreignAnswer("retry budgets")
        XCTAssertFalse(own.hasPrefix(String(foreign.prefix(12))), "the two model ids must answer differently for this test")
        let openers = DeterministicText.openers
        var cuts = Set<Int>()
        for (offset, character) in foreign.enumerated() where character == " " { cuts.insert(offset) }
        cuts.formUnion([3, foreign.count / 2 + 1, foreign.count - 2])
        for cut in cuts.sorted() {
            let prefill = String(foreign.prefix(cut))
            let rest = CompletionPlan.make(for: request("retry budgets", prefill: prefill), choice: 0).text
            XCTAssertEqual(rest, CompletionPlan.make(for: request("retry budgets", prefill: prefill), choice: 0).text, "deterministic")
            XCTAssertGreaterThan(rest.count, 10, prefill)
            for opener in openers { XCTAssertFalse(rest.contains(opener), "\(prefill)|\(rest)") }
            XCTAssertFalse(rest.contains("retry budgets"), "\(prefill)|\(rest)")
            XCTAssertTrue(rest.hasSuffix("."), rest)
            // It begins like a continuation: a new word after whitespace, or the rest of a cut word.
            if let last = prefill.last, last.isLetter, rest.first?.isLetter == true {
                XCTAssertTrue(rest.first!.isLowercase, "\(prefill)|\(rest)")
            } else {
                XCTAssertTrue(rest.hasPrefix(" "), "\(prefill)|\(rest)")
            }
        }
        // The example from a first try: two openings were sent ("… The|The main point on …").
        let afterArticle = CompletionPlan.make(for: request("retry budgets", prefill: "Put simply on retry budgets. The"), choice: 0).text
        XCTAssertTrue(afterArticle.hasPrefix(" "), afterArticle)
        XCTAssertTrue(afterArticle.dropFirst().first?.isLowercase == true, afterArticle)
        // A word cut short is completed; a finished sentence is followed by a new one.
        let cutWord = CompletionPlan.make(for: request("retry budgets", prefill: "The gateway keeps the ans"), choice: 0).text
        XCTAssertTrue(cutWord.hasPrefix("wer "), cutWord)
        let afterSentence = CompletionPlan.make(for: request("retry budgets", prefill: "Put simply on retry budgets."), choice: 0).text
        XCTAssertTrue(afterSentence.hasPrefix(" "), afterSentence)
        XCTAssertTrue(afterSentence.dropFirst().first?.isUppercase == true, afterSentence)
        // And its own prefix is still continued exactly.
        let half = String(own.prefix(own.count / 2))
        XCTAssertEqual(half + CompletionPlan.make(for: request("retry budgets", prefill: half), choice: 0).text, own)
    }

    func testStopSequencesAndTokenLimitsEndTheAnswer() {
        var limited = request("limits")
        limited.maxTokens = 3
        let plan = CompletionPlan.make(for: limited, choice: 0)
        XCTAssertEqual(plan.pieces.count, 3)
        XCTAssertEqual(plan.finishReason, .length)

        let full = CompletionPlan.make(for: request("limits"), choice: 0).text
        var stopped = request("limits")
        let stopWord = String(full.split(separator: " ")[3])
        stopped.stop = [stopWord]
        let stopPlan = CompletionPlan.make(for: stopped, choice: 0)
        XCTAssertEqual(stopPlan.finishReason, .stopSequence)
        XCTAssertEqual(stopPlan.stopSequence, stopWord)
        XCTAssertFalse(stopPlan.text.contains(stopWord))
        XCTAssertTrue(full.hasPrefix(stopPlan.text))
    }

    func testToolsAreCalledWithArgumentsThatFitTheSchema() throws {
        var withTools = request("weather in Oslo")
        withTools.tools = [ToolDefinition(name: "weather", description: nil, parameters: [
            "type": "object", "properties": ["city": ["type": "string"], "days": ["type": "integer"]],
        ])]
        let plan = CompletionPlan.make(for: withTools, choice: 0)
        XCTAssertEqual(plan.finishReason, .toolCalls)
        let call = try XCTUnwrap(plan.toolCalls.first)
        XCTAssertEqual(call.name, "weather")
        let arguments = try JSONCoding.decode(Array(call.arguments.utf8))
        XCTAssertNotNil(arguments["city"]?.stringValue)
        XCTAssertNotNil(arguments["days"]?.intValue)

        withTools.messages.append(ChatMessage(role: .assistant, content: [], toolCalls: [call]))
        withTools.messages.append(ChatMessage(role: .tool, content: [.text("sunny")], toolCallID: call.id))
        XCTAssertEqual(CompletionPlan.make(for: withTools, choice: 0).finishReason, .stop)
    }
}
