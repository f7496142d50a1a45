@testable import LifelineWire
import XCTest

final class TranslationTests: XCTestCase {
    func sampleRequest(source: WireProtocol) -> ChatRequest {
        var request = ChatRequest(model: "public", messages: [
            .text(.user, "What is the weather in Oslo?"),
            ChatMessage(role: .assistant, content: [.text("Let me check.")], toolCalls: [ToolCall(id: "call_1", name: "weather", arguments: #"{"city":"Oslo"}"#)]),
            ChatMessage(role: .tool, content: [.text("sunny, 20C")], toolCallID: "call_1"),
            .text(.user, "Thanks! And tomorrow?"),
        ], sourceProtocol: source)
        request.system = "You are terse."
        request.maxTokens = 100
        request.temperature = 0.5
        request.stop = ["END"]
        request.tools = [ToolDefinition(name: "weather", description: "Weather by city",
                                        parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])]
        request.toolChoice = .auto
        return request
    }

    func testOpenAIRequestSurvivesTheTripThroughAnthropic() throws {
        let request = sampleRequest(source: .openai)
        let anthropicBody = AnthropicMessagesRequest.encode(request, upstreamModel: "claude-x", stream: false)
        XCTAssertEqual(anthropicBody["model"], "claude-x")
        // The tool result and the next user turn share one Anthropic user message.
        XCTAssertEqual(anthropicBody["messages"]?.arrayValue?.count, 3)
        var back = try AnthropicMessagesRequest.decode(anthropicBody)
        back.model = request.model
        back.sourceProtocol = .openai
        back.includeUsage = request.includeUsage
        XCTAssertEqual(back, request)
    }

    func testAnthropicRequestSurvivesTheTripThroughOpenAI() throws {
        let request = sampleRequest(source: .anthropic)
        let openAIBody = OpenAIChatRequest.encode(request, upstreamModel: "gpt-x", stream: true)
        XCTAssertEqual(openAIBody["stream_options"]?["include_usage"], true)
        var back = try OpenAIChatRequest.decode(openAIBody)
        back.model = request.model
        back.sourceProtocol = .anthropic
        back.stream = false
        back.includeUsage = false
        back.passthrough = [:]
        XCTAssertEqual(back, request)
    }

    func testStopReasonsMapBothWays() {
        for reason in [FinishReason.stop, .length, .toolCalls, .stopSequence] {
            XCTAssertEqual(FinishReason(anthropic: reason.anthropicValue), reason)
        }
        XCTAssertEqual(FinishReason.stopSequence.openAIValue, "stop")
    }

    func testAnthropicStreamEncoderEmitsTheFullEventSequence() throws {
        var encoder = AnthropicStreamEncoder(id: "msg_1", model: "m")
        var bytes = encoder.encode(.textDelta(choice: 0, text: "Hi", logprobs: nil))
        bytes += encoder.encode(.toolCallDelta(choice: 0, index: 0, id: "t1", name: "f", arguments: ""))
        bytes += encoder.encode(.toolCallDelta(choice: 0, index: 0, id: nil, name: nil, arguments: "{}"))
        bytes += encoder.encode(.finish(choice: 0, reason: .toolCalls, stopSequence: nil))
        bytes += encoder.encode(.usage(Usage(promptTokens: 3, completionTokens: 4)))
        bytes += encoder.finish()
        var parser = SSEParser()
        let events = try parser.feed(bytes)
        XCTAssertEqual(events.map(\.event), [
            "message_start", "ping", "content_block_start", "content_block_delta", "content_block_stop",
            "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop",
        ])
        // Decoding our own stream gives back the events.
        var decoder = AnthropicStreamDecoder()
        var decoded: [ChatEvent] = []
        for event in events { decoded += try decoder.events(type: event.event!, json: JSONCoding.decode(event.data)) }
        XCTAssertEqual(decoded, [
            .textDelta(choice: 0, text: "Hi", logprobs: nil),
            .toolCallDelta(choice: 0, index: 0, id: "t1", name: "f", arguments: ""),
            .toolCallDelta(choice: 0, index: 0, id: nil, name: nil, arguments: "{}"),
            .finish(choice: 0, reason: .toolCalls, stopSequence: nil),
            .usage(Usage(promptTokens: 3, completionTokens: 4)),
        ])
    }

    func testOpenAIStreamEncoderEndsWithUsageThenDone() throws {
        var encoder = OpenAIStreamEncoder(id: "c1", model: "m", created: 1, includeUsage: true)
        var bytes = encoder.encode(.textDelta(choice: 0, text: "Hi", logprobs: nil))
        bytes += encoder.encode(.finish(choice: 0, reason: .stop, stopSequence: nil))
        bytes += encoder.encode(.usage(Usage(promptTokens: 1, completionTokens: 2)))
        bytes += encoder.finish()
        var parser = SSEParser()
        let events = try parser.feed(bytes)
        XCTAssertEqual(events.count, 4)
        XCTAssertEqual(String(decoding: events[3].data, as: UTF8.self), "[DONE]")
        let usageChunk = try JSONCoding.decode(events[2].data)
        XCTAssertEqual(usageChunk["usage"]?["total_tokens"], 3)
        XCTAssertEqual(usageChunk["choices"], [])
        XCTAssertEqual(OpenAIChatResponse.events(inChunk: try JSONCoding.decode(events[0].data)),
                       [.textDelta(choice: 0, text: "Hi", logprobs: nil)])
    }

    /// Text chunks are written without a JSON tree; their bytes must stay those of the tree's encoding.
    func testOpenAIStreamEncoderTextChunksEqualTheirJSONEncoding() throws {
        let texts = ["Hi", "", "quote \" back\\slash\nnew\ttab\r\u{1}\u{1f}", "héllo 🌍", "{\"json\": [1, 2]}"]
        let logprobs: JSONValue = ["content": [["token": "Hi", "logprob": -0.25, "bytes": [72, 105], "top_logprobs": []]]]
        for includeUsage in [false, true] {
            var encoder = OpenAIStreamEncoder(id: "chatcmpl-\"id\"\n", model: "m/ö \\", created: 1_733_000_000, includeUsage: includeUsage)
            var announced: Set<Int> = []
            for (offset, text) in texts.enumerated() {
                for choice in [0, 1, 12] {
                    let probabilities: JSONValue? = offset % 2 == 0 ? nil : logprobs
                    var delta: [String: JSONValue] = ["content": .string(text)]
                    if announced.insert(choice).inserted { delta["role"] = "assistant" }
                    var object: [String: JSONValue] = [
                        "id": "chatcmpl-\"id\"\n", "object": "chat.completion.chunk", "created": 1_733_000_000, "model": "m/ö \\",
                        "choices": [["index": .number(Double(choice)), "delta": .object(delta), "finish_reason": .null,
                                     "logprobs": probabilities ?? .null]],
                    ]
                    if includeUsage { object["usage"] = .null }
                    let expected = SSE.data(JSONCoding.encode(.object(object)))
                    let actual = encoder.encode(.textDelta(choice: choice, text: text, logprobs: probabilities))
                    XCTAssertEqual(String(decoding: actual, as: UTF8.self), String(decoding: expected, as: UTF8.self))
                }
            }
        }
    }
}

final class StopSequenceScannerTests: XCTestCase {
    func testASequenceSplitAcrossChunksIsFoundAndNothingAfterItIsSent() {
        var scanner = StopSequenceScanner(sequences: ["STOP", "xy"])
        var out = ""
        for piece in ["Hello S", "T", "OP and more", " text"] { out += scanner.accept(piece) }
        out += scanner.finish()
        XCTAssertEqual(out, "Hello ")
        XCTAssertEqual(scanner.matched, "STOP")
    }

    func testWithoutAMatchEverythingIsSentInOrder() {
        var scanner = StopSequenceScanner(sequences: ["STOP"])
        var out = ""
        for piece in ["ST", "O", "P", "S"] where true { out += scanner.accept(piece == "P" ? "p" : piece) }
        out += scanner.finish()
        XCTAssertEqual(out, "STOpS")
        XCTAssertNil(scanner.matched)
    }

    func testTheEarliestSequenceWins() {
        XCTAssertEqual(StopSequenceScanner.cut("one two three", at: ["three", "two"]).text, "one ")
        XCTAssertEqual(StopSequenceScanner.cut("one two three", at: ["three", "two"]).matched, "two")
    }
}
