@testable import LifelineWire
import XCTest

final class RequestDecodingTests: XCTestCase {
    func openAI(_ text: String) throws -> ChatRequest { try OpenAIChatRequest.decode(JSONCoding.decode(Array(text.utf8))) }
    func anthropic(_ text: String) throws -> ChatRequest { try AnthropicMessagesRequest.decode(JSONCoding.decode(Array(text.utf8))) }

    func assertParam(_ expression: @autoclosure () throws -> ChatRequest, _ param: String?, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try expression(), file: file, line: line) { error in
            XCTAssertEqual((error as? RequestError)?.param, param, "\(error)", file: file, line: line)
        }
    }

    func testOpenAIValidationNamesTheWrongField() {
        assertParam(try openAI(#"{"messages":[]}"#), "model")
        assertParam(try openAI(#"{"model":"m"}"#), "messages")
        assertParam(try openAI(#"{"model":"m","messages":[]}"#), "messages")
        assertParam(try openAI(#"{"model":"m","messages":"hi"}"#), "messages")
        assertParam(try openAI(#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#), "messages[0].role")
        assertParam(try openAI(#"{"model":"m","messages":[{"role":"user"}]}"#), "messages[0].content")
        assertParam(try openAI(#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#), "temperature")
        assertParam(try openAI(#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3}"#), "temperature")
        assertParam(try openAI(#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":0}"#), "n")
        assertParam(try openAI(#"{"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]}"#), "stop")
        assertParam(try openAI(#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}"#), "stream_options")
        assertParam(try openAI(#"{"model":"m","messages":[{"role":"user","content":"x"}],"top_logprobs":2}"#), "top_logprobs")
        assertParam(try openAI(#"{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}}"#), "response_format.type")
        assertParam(try openAI(#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#), "messages[0].tool_call_id")
    }

    func testOpenAIRequestKeepsEveryModelledField() throws {
        let request = try openAI(#"""
        {"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],
         "max_tokens":50,"temperature":0.5,"top_p":0.9,"stop":"END","seed":7,"n":2,"stream":true,
         "stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":3,"user":"u1","frequency_penalty":0.5}
        """#)
        XCTAssertEqual(request.system, "Be brief.")
        XCTAssertEqual(request.messages, [.text(.user, "hi")])
        XCTAssertEqual(request.maxTokens, 50)
        XCTAssertEqual(request.stop, ["END"])
        XCTAssertEqual(request.seed, 7)
        XCTAssertEqual(request.choiceCount, 2)
        XCTAssertTrue(request.includeUsage)
        XCTAssertEqual(request.topLogprobs, 3)
        XCTAssertEqual(request.passthrough["frequency_penalty"], 0.5)
    }

    func testAnthropicValidationNamesTheWrongField() {
        assertParam(try anthropic(#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#), "max_tokens")
        assertParam(try anthropic(#"{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]}"#), "messages[0].role")
        assertParam(try anthropic(#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":5}]}"#), "messages[0].content")
        assertParam(try anthropic(#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"temperature":1.5}"#), "temperature")
        assertParam(try anthropic(#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"some"}}"#), "tool_choice.type")
    }

    func testAnthropicToolResultsBecomeToolMessages() throws {
        let request = try anthropic(#"""
        {"model":"m","max_tokens":10,"system":[{"type":"text","text":"S"}],"messages":[
          {"role":"user","content":"weather?"},
          {"role":"assistant","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"t1","name":"weather","input":{"city":"Oslo"}}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"sunny"},{"type":"text","text":"thanks"}]}]}
        """#)
        XCTAssertEqual(request.system, "S")
        XCTAssertEqual(request.messages.map(\.role), [.user, .assistant, .tool, .user])
        XCTAssertEqual(request.messages[1].toolCalls, [ToolCall(id: "t1", name: "weather", arguments: #"{"city":"Oslo"}"#)])
        XCTAssertEqual(request.messages[2].toolCallID, "t1")
        XCTAssertEqual(request.messages[2].text, "sunny")
    }
}
