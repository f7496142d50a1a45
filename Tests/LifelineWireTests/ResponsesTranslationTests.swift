@testable import LifelineWire
import XCTest

final class ResponsesTranslationTests: XCTestCase {
    func turn(_ text: String) throws -> ResponsesTurn { try ResponsesRequest.decode(JSONCoding.decode(Array(text.utf8))) }

    func assertParam(_ text: String, _ param: String?, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try turn(text), text, file: file, line: line) { error in
            XCTAssertEqual((error as? RequestError)?.param, param, "\(error)", file: file, line: line)
        }
    }

    let header = ResponsesResponse.Header(id: "resp_abc", model: "m", createdAt: 1_700_000_000, echoed: ["store": true])

    // MARK: requests

    func testStringInputWithInstructionsBecomesSystemAndOneUserMessage() throws {
        let request = try turn(#"{"model":"m","input":"Hi there","instructions":"Be brief.","max_output_tokens":50,"temperature":0.5,"top_p":0.9}"#)
        XCTAssertEqual(request.chat.system, "Be brief.")
        XCTAssertEqual(request.chat.messages, [.text(.user, "Hi there")])
        XCTAssertEqual(request.chat.maxTokens, 50)
        XCTAssertEqual(request.chat.temperature, 0.5)
        XCTAssertEqual(request.chat.topP, 0.9)
        XCTAssertTrue(request.store, "store defaults to true, as in OpenAI")
        XCTAssertFalse(request.chat.stream)
        XCTAssertEqual(request.echoed["instructions"], "Be brief.")
        XCTAssertEqual(request.echoed["max_output_tokens"], 50)
    }

    func testInputItemsBecomeChatMessagesWithToolCallsOnTheAssistantTurn() throws {
        let request = try turn(#"""
        {"model":"m","store":false,"input":[
          {"role":"developer","content":"Answer in French."},
          {"type":"message","role":"user","content":[{"type":"input_text","text":"Weather in "},{"type":"input_text","text":"Paris?"},
                                                      {"type":"input_image","image_url":"https://example.test/a.png"}]},
          {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Let me check."}]},
          {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
          {"type":"function_call","call_id":"call_2","name":"get_time","arguments":"{}"},
          {"type":"function_call_output","call_id":"call_1","output":"18C"},
          {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"noon"}]}
        ],"tools":[{"type":"function","name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}],
        "tool_choice":{"type":"function","name":"get_weather"}}
        """#)
        XCTAssertFalse(request.store)
        XCTAssertEqual(request.chat.system, "Answer in French.")
        let image = ContentPart.media(["type": "image_url", "image_url": ["url": "https://example.test/a.png"]], source: .openai)
        XCTAssertEqual(request.chat.messages, [
            ChatMessage(role: .user, content: [.text("Weather in "), .text("Paris?"), image]),
            ChatMessage(role: .assistant, content: [.text("Let me check.")], toolCalls: [
                ToolCall(id: "call_1", name: "get_weather", arguments: #"{"city":"Paris"}"#),
                ToolCall(id: "call_2", name: "get_time", arguments: "{}"),
            ]),
            ChatMessage(role: .tool, content: [.text("18C")], toolCallID: "call_1"),
            ChatMessage(role: .tool, content: [.text("noon")], toolCallID: "call_2"),
        ])
        XCTAssertEqual(request.chat.tools.map(\.name), ["get_weather"])
        XCTAssertEqual(request.chat.toolChoice, .named("get_weather"))
        XCTAssertEqual(request.echoed["tools"]?[0]?["name"], "get_weather")
        XCTAssertEqual(request.echoed["tool_choice"], ["type": "function", "name": "get_weather"])
    }

    func testAFunctionCallWithoutAnAssistantMessageStartsOne() throws {
        let request = try turn(#"""
        {"model":"m","input":[{"role":"user","content":"hi"},
          {"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"ok"}]}
        """#)
        XCTAssertEqual(request.chat.messages[1], ChatMessage(role: .assistant, content: [], toolCalls: [ToolCall(id: "c", name: "f", arguments: "{}")]))
        XCTAssertEqual(request.chat.messages[2].toolCallID, "c")
    }

    func testJSONSchemaTextFormatBecomesAChatResponseFormat() throws {
        let request = try turn(#"{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"point","schema":{"type":"object"},"strict":true}}}"#)
        XCTAssertEqual(request.chat.responseFormat, ["type": "json_schema", "json_schema": ["name": "point", "schema": ["type": "object"], "strict": true]])
    }

    func testBadFieldsAreRefusedNamingTheParam() {
        assertParam(#"{"input":"x"}"#, "model")
        assertParam(#"{"model":"m"}"#, "input")
        assertParam(#"{"model":"m","input":7}"#, "input")
        assertParam(#"{"model":"m","input":[]}"#, "input")
        assertParam(#"{"model":"m","input":"x","frobnicate":1}"#, "frobnicate")
        assertParam(#"{"model":"m","input":"x","max_output_tokens":5}"#, "max_output_tokens")
        assertParam(#"{"model":"m","input":"x","max_output_tokens":"many"}"#, "max_output_tokens")
        assertParam(#"{"model":"m","input":"x","temperature":3}"#, "temperature")
        assertParam(#"{"model":"m","input":"x","store":"yes"}"#, "store")
        assertParam(#"{"model":"m","input":"x","instructions":7}"#, "instructions")
        assertParam(#"{"model":"m","input":"x","previous_response_id":7}"#, "previous_response_id")
        assertParam(#"{"model":"m","input":"x","stream_options":{}}"#, "stream_options")
        assertParam(#"{"model":"m","input":"x","background":true}"#, "background")
        assertParam(#"{"model":"m","input":"x","tools":[{"type":"web_search"}]}"#, "tools[0].type")
        assertParam(#"{"model":"m","input":"x","tools":[{"type":"function"}]}"#, "tools[0].name")
        assertParam(#"{"model":"m","input":"x","tool_choice":"sometimes"}"#, "tool_choice")
        assertParam(#"{"model":"m","input":"x","text":{"format":{"type":"yaml"}}}"#, "text.format.type")
        assertParam(#"{"model":"m","input":"x","metadata":{"a":1}}"#, "metadata.a")
        let many = (0..<17).map { "\"k\($0)\":\"v\"" }.joined(separator: ",")
        assertParam(#"{"model":"m","input":"x","metadata":{\#(many)}}"#, "metadata")
        assertParam(#"{"model":"m","input":[{"role":"robot","content":"x"}]}"#, "input[0].role")
        assertParam(#"{"model":"m","input":[{"role":"user"}]}"#, "input[0].content")
        assertParam(#"{"model":"m","input":["x"]}"#, "input[0]")
        assertParam(#"{"model":"m","input":[{"content":"x"}]}"#, "input[0].type")
        assertParam(#"{"model":"m","input":[{"type":"item_reference","id":"x"}]}"#, "input[0].type")
        assertParam(#"{"model":"m","input":[{"role":"assistant","content":[{"type":"input_text","text":"x"}]}]}"#, "input[0].content[0].type")
        assertParam(#"{"model":"m","input":[{"role":"user","content":[{"type":"output_text","text":"x"}]}]}"#, "input[0].content[0].type")
        assertParam(#"{"model":"m","input":[{"type":"function_call","name":"f","arguments":"{}"}]}"#, "input[0].call_id")
        assertParam(#"{"model":"m","input":[{"type":"function_call_output","call_id":"c"}]}"#, "input[0].output")
    }

    func testContinuingPutsTheStoredConversationFirstAndKeepsOnlyThisTurnsInstructions() throws {
        var request = try turn(#"{"model":"m","input":"And in Rome?","instructions":"Be brief.","previous_response_id":"resp_1"}"#)
        XCTAssertEqual(request.previousResponseID, "resp_1")
        let earlier = try turn(#"{"model":"m","input":"Weather in Paris?","instructions":"Old instructions."}"#)
        let output: [JSONValue] = [ResponsesResponse.messageItem(id: "msg_1", text: "Sunny.", status: "completed")]
        let history = earlier.conversation(appending: output)
        try request.continuing(from: history)
        XCTAssertEqual(request.chat.system, "Be brief.")
        XCTAssertEqual(request.chat.messages, [.text(.user, "Weather in Paris?"), .text(.assistant, "Sunny."), .text(.user, "And in Rome?")])
        // The next turn continues from all three.
        XCTAssertEqual(request.conversation(appending: []).count, 3)
    }

    func testAStoredConversationThatCannotBeReadIsRefusedOnPreviousResponseID() throws {
        var request = try turn(#"{"model":"m","input":"x","previous_response_id":"resp_1"}"#)
        XCTAssertThrowsError(try request.continuing(from: ["not an item"])) { error in
            XCTAssertEqual((error as? RequestError)?.param, "previous_response_id")
        }
    }

    // MARK: answers

    func testATextAnswerIsOneCompletedMessageWithUsage() {
        let answer = ChatResponse(id: "x", model: "m", created: 1, choices: [ChatChoice(index: 0, text: "Hello.", finishReason: .stop)],
                                  usage: Usage(promptTokens: 7, completionTokens: 2))
        let object = ResponsesResponse.encode(answer, header: header)
        XCTAssertEqual(object["id"], "resp_abc")
        XCTAssertEqual(object["object"], "response")
        XCTAssertEqual(object["status"], "completed")
        XCTAssertEqual(object["store"], true)
        XCTAssertEqual(object["output"]?[0]?["type"], "message")
        XCTAssertEqual(object["output"]?[0]?["id"], "msg_abc_0")
        XCTAssertEqual(object["output"]?[0]?["content"]?[0]?["type"], "output_text")
        XCTAssertEqual(object["output"]?[0]?["content"]?[0]?["text"], "Hello.")
        XCTAssertEqual(object["usage"]?["input_tokens"], 7)
        XCTAssertEqual(object["usage"]?["output_tokens"], 2)
        XCTAssertEqual(object["usage"]?["total_tokens"], 9)
    }

    func testAToolCallAnswerIsAFunctionCallItemAndACutAnswerIsIncomplete() {
        let call = ToolCall(id: "call_9", name: "get_weather", arguments: #"{"city":"Paris"}"#)
        let calling = ChatResponse(id: "x", model: "m", created: 1, choices: [ChatChoice(index: 0, text: "", toolCalls: [call], finishReason: .toolCalls)],
                                   usage: Usage(promptTokens: 1, completionTokens: 1))
        let object = ResponsesResponse.encode(calling, header: header)
        XCTAssertEqual(object["output"]?.arrayValue?.count, 1)
        XCTAssertEqual(object["output"]?[0], ["id": "fc_abc_0", "type": "function_call", "status": "completed", "call_id": "call_9",
                                              "name": "get_weather", "arguments": #"{"city":"Paris"}"#])
        let cut = ChatResponse(id: "x", model: "m", created: 1, choices: [ChatChoice(index: 0, text: "Once", finishReason: .length)],
                               usage: Usage(promptTokens: 1, completionTokens: 1))
        let incomplete = ResponsesResponse.encode(cut, header: header)
        XCTAssertEqual(incomplete["status"], "incomplete")
        XCTAssertEqual(incomplete["incomplete_details"], ["reason": "max_output_tokens"])
    }

    // MARK: streams

    func events(_ bytes: [UInt8]) throws -> [(type: String, data: JSONValue)] {
        var parser = SSEParser()
        return try parser.feed(bytes).map { event in
            let data = try JSONCoding.decode(event.data)
            XCTAssertEqual(event.event, data["type"]?.stringValue, "the event line names the data's type")
            return (event.event ?? "", data)
        }
    }

    func testATextStreamHasOpenAIsEventOrderAndEndsWithTheSameResponseAsTheNonStreamAnswer() throws {
        var encoder = ResponsesStreamEncoder(header: header)
        var bytes: [UInt8] = []
        for piece in ["Hel", "lo", "."] { bytes += encoder.encode(.textDelta(choice: 0, text: piece, logprobs: nil)) }
        bytes += encoder.encode(.finish(choice: 0, reason: .stop, stopSequence: nil))
        bytes += encoder.encode(.usage(Usage(promptTokens: 7, completionTokens: 3)))
        bytes += encoder.finish()
        let stream = try events(bytes)
        XCTAssertEqual(stream.map(\.type), [
            "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
            "response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
            "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
        ])
        XCTAssertEqual(stream.map { $0.data["sequence_number"]?.intValue }, Array(0..<stream.count))
        XCTAssertEqual(stream[0].data["response"]?["status"], "in_progress")
        XCTAssertEqual(stream.filter { $0.type == "response.output_text.delta" }.compactMap { $0.data["delta"]?.stringValue }.joined(), "Hello.")
        XCTAssertEqual(stream[7].data["text"], "Hello.")
        XCTAssertEqual(stream[4].data["item_id"], "msg_abc_0")
        let answer = ChatResponse(id: "x", model: "m", created: 1, choices: [ChatChoice(index: 0, text: "Hello.", finishReason: .stop)],
                                  usage: Usage(promptTokens: 7, completionTokens: 3))
        XCTAssertEqual(stream.last?.data["response"], ResponsesResponse.encode(answer, header: header))
        XCTAssertEqual(encoder.completedResponse, ResponsesResponse.encode(answer, header: header))
    }

    func testReasoningIsNotOutputTextStreamedOrNot() throws {
        var encoder = ResponsesStreamEncoder(header: header)
        var bytes = encoder.encode(.reasoningDelta(choice: 0, text: "Think first.", signature: nil))
        bytes += encoder.encode(.reasoningDelta(choice: 0, text: "", signature: "sig"))
        bytes += encoder.encode(.textDelta(choice: 0, text: "Hello.", logprobs: nil))
        bytes += encoder.encode(.finish(choice: 0, reason: .stop, stopSequence: nil))
        bytes += encoder.encode(.usage(Usage(promptTokens: 7, completionTokens: 3)))
        bytes += encoder.finish()
        let stream = try events(bytes)
        XCTAssertEqual(stream.filter { $0.type == "response.output_text.delta" }.compactMap { $0.data["delta"]?.stringValue }, ["Hello."])
        XCTAssertEqual(stream.map { $0.data["sequence_number"]?.intValue }, Array(0..<stream.count))
        var choice = ChatChoice(index: 0, text: "Hello.", finishReason: .stop)
        choice.reasoning = "Think first."
        choice.reasoningSignature = "sig"
        let answer = ChatResponse(id: "x", model: "m", created: 1, choices: [choice], usage: Usage(promptTokens: 7, completionTokens: 3))
        let object = ResponsesResponse.encode(answer, header: header)
        XCTAssertEqual(object["output"]?.arrayValue?.count, 1)
        XCTAssertEqual(object["output"]?[0]?["content"]?[0]?["text"], "Hello.")
        XCTAssertEqual(stream.last?.data["response"], object, "the streamed and returned answers agree")
    }

    func testAToolCallStreamSendsArgumentDeltasAndDoneWithTheWholeArguments() throws {
        var encoder = ResponsesStreamEncoder(header: header)
        var bytes = encoder.encode(.toolCallDelta(choice: 0, index: 0, id: "call_9", name: "get_weather", arguments: ""))
        bytes += encoder.encode(.toolCallDelta(choice: 0, index: 0, id: nil, name: nil, arguments: #"{"city":"#))
        bytes += encoder.encode(.toolCallDelta(choice: 0, index: 0, id: nil, name: nil, arguments: #""Paris"}"#))
        bytes += encoder.encode(.finish(choice: 0, reason: .toolCalls, stopSequence: nil))
        bytes += encoder.finish()
        let stream = try events(bytes)
        XCTAssertEqual(stream.map(\.type), [
            "response.created", "response.in_progress", "response.output_item.added",
            "response.function_call_arguments.delta", "response.function_call_arguments.delta",
            "response.function_call_arguments.done", "response.output_item.done", "response.completed",
        ])
        XCTAssertEqual(stream[2].data["item"]?["type"], "function_call")
        XCTAssertEqual(stream[2].data["item"]?["call_id"], "call_9")
        XCTAssertEqual(stream[5].data["arguments"], #"{"city":"Paris"}"#)
        XCTAssertEqual(stream[5].data["name"], "get_weather")
        XCTAssertEqual(stream.last?.data["response"]?["output"]?[0]?["arguments"], #"{"city":"Paris"}"#)
    }

    func testAStreamThatCannotBeCompletedEndsWithErrorAndResponseFailed() throws {
        var encoder = ResponsesStreamEncoder(header: header)
        var bytes = encoder.encode(.textDelta(choice: 0, text: "Hal", logprobs: nil))
        bytes += encoder.error(code: "stream_interrupted", message: "The upstream failed.")
        let stream = try events(bytes)
        XCTAssertEqual(stream.suffix(2).map(\.type), ["error", "response.failed"])
        XCTAssertEqual(stream[stream.count - 2].data["code"], "stream_interrupted")
        let failed = stream.last?.data["response"]
        XCTAssertEqual(failed?["status"], "failed")
        XCTAssertEqual(failed?["error"]?["message"], "The upstream failed.")
        XCTAssertEqual(failed?["output"]?[0]?["status"], "incomplete")
        XCTAssertEqual(failed?["output"]?[0]?["content"]?[0]?["text"], "Hal")
        XCTAssertNil(encoder.completedResponse)
    }
}
