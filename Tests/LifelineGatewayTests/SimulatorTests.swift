import LifelineSimulator
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
        // A prefill that is not a prefix is ignored: the answer starts over.
        XCTAssertEqual(CompletionPlan.make(for: request("prefill test", prefill: "Something else"), choice: 0).text, full)
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
