@testable import LifelineWire
import XCTest

/// Converse requests, answers and streams, both ways, as the gateway and the simulator use them.
final class BedrockConverseTests: XCTestCase {
    func sampleRequest(source: WireProtocol) -> ChatRequest {
        var request = ChatRequest(model: "anthropic.claude-3-haiku-20240307-v1:0", messages: [
            .text(.user, "What is the weather in Oslo?"),
            ChatMessage(role: .assistant, content: [.text("Let me check.")], toolCalls: [ToolCall(id: "call_1", name: "weather", arguments: #"{"city":"Oslo"}"#)]),
            ChatMessage(role: .tool, content: [.text("sunny, 20C")], toolCallID: "call_1"),
            .text(.user, "Thanks! And tomorrow?"),
        ], sourceProtocol: source)
        request.system = "You are terse."
        request.maxTokens = 100
        request.temperature = 0.5
        request.topP = 0.9
        request.stop = ["END"]
        request.tools = [ToolDefinition(name: "weather", description: "Weather by city",
                                        parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])]
        request.toolChoice = .auto
        return request
    }

    func testARequestMapsOntoConverseAndBack() throws {
        let request = sampleRequest(source: .openai)
        let body = BedrockConverseRequest.encode(request)
        XCTAssertEqual(body["system"], [["text": "You are terse."]])
        XCTAssertEqual(body["inferenceConfig"], ["maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]])
        XCTAssertEqual(body["toolConfig"]?["toolChoice"], ["auto": [:]])
        XCTAssertEqual(body["toolConfig"]?["tools"]?[0]?["toolSpec"]?["inputSchema"]?["json"]?["required"], ["city"])
        let messages = try XCTUnwrap(body["messages"]?.arrayValue)
        // The tool result and the next user turn share one user turn, so roles alternate.
        XCTAssertEqual(messages.map { $0["role"]?.stringValue }, ["user", "assistant", "user"])
        XCTAssertEqual(messages[1]["content"]?[1]?["toolUse"], ["toolUseId": "call_1", "name": "weather", "input": ["city": "Oslo"]])
        XCTAssertEqual(messages[2]["content"]?[0]?["toolResult"], ["toolUseId": "call_1", "content": [["text": "sunny, 20C"]]])
        XCTAssertNil(body["model"], "the model travels in the path")

        var back = try BedrockConverseRequest.decode(body, modelID: request.model, stream: false)
        back.sourceProtocol = .openai
        back.includeUsage = request.includeUsage
        XCTAssertEqual(back, request)
    }

    func testToolChoicesAndTheirAbsence() {
        var request = sampleRequest(source: .anthropic)
        request.toolChoice = .required
        XCTAssertEqual(BedrockConverseRequest.encode(request)["toolConfig"]?["toolChoice"], ["any": [:]])
        request.toolChoice = .named("weather")
        XCTAssertEqual(BedrockConverseRequest.encode(request)["toolConfig"]?["toolChoice"], ["tool": ["name": "weather"]])
        // `none` cannot be said: the tools stay only because the conversation already used them.
        request.toolChoice = ToolChoice.none
        XCTAssertNil(BedrockConverseRequest.encode(request)["toolConfig"]?["toolChoice"])
        XCTAssertNotNil(BedrockConverseRequest.encode(request)["toolConfig"]?["tools"])
        request.messages = [.text(.user, "hi")]
        XCTAssertNil(BedrockConverseRequest.encode(request)["toolConfig"])
    }

    func testModelIdsAreOnePathSegment() {
        XCTAssertEqual(BedrockConverseRequest.path(modelID: "anthropic.claude-3-haiku-20240307-v1:0", stream: true),
                       "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream")
        XCTAssertEqual(BedrockConverseRequest.path(modelID: "arn:aws:bedrock:us-east-1:1:inference-profile/x", stream: false),
                       "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse")
    }

    func testInlineImagesCrossBetweenTheAPIsAndURLsDoNot() {
        let openAI: JSONValue = ["type": "image_url", "image_url": ["url": "data:image/png;base64,iVBORw0KGgo="]]
        let anthropic: JSONValue = ["type": "image", "source": ["type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"]]
        var request = ChatRequest(model: "m", messages: [ChatMessage(role: .user, content: [
            .text("look"), .media(openAI, source: .openai), .media(anthropic, source: .anthropic),
            .media(["type": "image_url", "image_url": ["url": "https://example.com/cat.png"]], source: .openai),
        ])], sourceProtocol: .openai)
        request.maxTokens = 10
        let content = BedrockConverseRequest.encode(request)["messages"]?[0]?["content"]?.arrayValue
        XCTAssertEqual(content, [
            ["text": "look"],
            ["image": ["format": "png", "source": ["bytes": "iVBORw0KGgo="]]],
            ["image": ["format": "jpeg", "source": ["bytes": "/9j/4AAQ"]]],
        ])
        // And back, for the simulator's requests as the other APIs would carry them.
        XCTAssertEqual(BedrockMedia.toOpenAI(content![1]), openAI)
        XCTAssertEqual(BedrockMedia.toAnthropic(content![2]), anthropic)
    }

    func testBadConverseBodiesNameTheirField() {
        func error(_ body: JSONValue) -> String? {
            do { _ = try BedrockConverseRequest.decode(body, modelID: "m", stream: false); return nil } catch { return error.param }
        }
        XCTAssertEqual(error(["messages": []]), "messages")
        XCTAssertEqual(error(["messages": [["role": "system", "content": [["text": "x"]]]]]), "messages[0].role")
        XCTAssertEqual(error(["messages": [["role": "user", "content": [["text": "x"]]]], "inferenceConfig": ["maxTokens": 0]]), "inferenceConfig.maxTokens")
        XCTAssertEqual(error(["messages": [["role": "user", "content": [["video": [:]]]]]]), "messages[0].content[0]")
    }

    func testAnswersMapBothWays() throws {
        var response = ChatResponse(id: "", model: "", created: 0, choices: [
            ChatChoice(index: 0, text: "Checking.", toolCalls: [ToolCall(id: "t1", name: "weather", arguments: #"{"city":"Oslo"}"#)], finishReason: .toolCalls),
        ], usage: Usage(promptTokens: 12, completionTokens: 7))
        let json = BedrockConverseResponse.encode(response)
        XCTAssertEqual(json["stopReason"], "tool_use")
        XCTAssertEqual(json["usage"], ["inputTokens": 12, "outputTokens": 7, "totalTokens": 19])
        XCTAssertEqual(try BedrockConverseResponse.decode(json), response)
        for (value, reason) in [("end_turn", FinishReason.stop), ("max_tokens", .length), ("stop_sequence", .stopSequence),
                                ("guardrail_intervened", .contentFilter), ("content_filtered", .contentFilter)] {
            response.choices[0].finishReason = reason
            var decoded = json
            if case .object(var object) = decoded { object["stopReason"] = .string(value); decoded = .object(object) }
            XCTAssertEqual(try BedrockConverseResponse.decode(decoded).choices[0].finishReason, reason, value)
        }
        XCTAssertThrowsError(try BedrockConverseResponse.decode(["message": "no output"]))
    }

    func testAStreamSurvivesFramingAndDecoding() throws {
        let events: [ChatEvent] = [
            .textDelta(choice: 0, text: "Let me ", logprobs: nil), .textDelta(choice: 0, text: "check.", logprobs: nil),
            .toolCallDelta(choice: 0, index: 0, id: "t1", name: "weather", arguments: ""),
            .toolCallDelta(choice: 0, index: 0, id: nil, name: nil, arguments: #"{"city":"Oslo"}"#),
            .finish(choice: 0, reason: .toolCalls, stopSequence: nil), .usage(Usage(promptTokens: 5, completionTokens: 9)),
        ]
        var encoder = BedrockStreamEncoder()
        var bytes = encoder.start()
        for event in events { bytes += encoder.encode(event) }
        bytes += encoder.finish()
        var framing = AWSEventStreamDecoder()
        let messages = try framing.feed(bytes)
        XCTAssertEqual(messages.compactMap { $0.string(":event-type") }, [
            "messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockStop", "contentBlockStart", "contentBlockDelta",
            "contentBlockStop", "messageStop", "metadata",
        ])
        var decoder = BedrockStreamDecoder()
        var decoded: [ChatEvent] = []
        for message in messages {
            XCTAssertFalse(decoder.finished)
            decoded += try decoder.events(message)
        }
        XCTAssertTrue(decoder.stopped && decoder.finished)
        XCTAssertEqual(decoded, events)
    }

    func testReasoningIsReadApartFromTheAnswerWholeAndStreamed() throws {
        var choice = ChatChoice(index: 0, text: "Sunny.", finishReason: .stop)
        choice.reasoning = "Oslo in June."
        choice.reasoningSignature = "sig-1"
        let response = ChatResponse(id: "", model: "", created: 0, choices: [choice], usage: Usage(promptTokens: 3, completionTokens: 4))
        let json = BedrockConverseResponse.encode(response)
        XCTAssertEqual(json["output"]?["message"]?["content"]?[0], ["reasoningContent": ["reasoningText": ["text": "Oslo in June.", "signature": "sig-1"]]])
        XCTAssertEqual(try BedrockConverseResponse.decode(json), response)

        let events: [ChatEvent] = [
            .reasoningDelta(choice: 0, text: "Oslo ", signature: nil), .reasoningDelta(choice: 0, text: "in June.", signature: nil),
            .reasoningDelta(choice: 0, text: "", signature: "sig-1"), .textDelta(choice: 0, text: "Sunny.", logprobs: nil),
            .finish(choice: 0, reason: .stop, stopSequence: nil), .usage(Usage(promptTokens: 3, completionTokens: 4)),
        ]
        var encoder = BedrockStreamEncoder()
        var bytes = encoder.start()
        for event in events { bytes += encoder.encode(event) }
        bytes += encoder.finish()
        var framing = AWSEventStreamDecoder()
        var decoder = BedrockStreamDecoder()
        var decoded: [ChatEvent] = []
        for message in try framing.feed(bytes) { decoded += try decoder.events(message) }
        XCTAssertEqual(decoded, events)
    }

    func testSystemOnlyConversationsAndJSONFormatsReachConverse() throws {
        var request = ChatRequest(model: "m", messages: [], sourceProtocol: .openai)
        request.system = "Say hello."
        request.responseFormat = ["type": "json_object"]
        let body = BedrockConverseRequest.encode(request)
        XCTAssertEqual(body["messages"], [["role": "user", "content": [["text": .string(AnthropicMessagesRequest.placeholderUserTurn)]]]])
        let system = try XCTUnwrap(body["system"]?[0]?["text"]?.stringValue)
        XCTAssertTrue(system.hasPrefix("Say hello.\n\n"))
        XCTAssertEqual(JSONOutputInstruction.format(inSystem: system), ["type": "json_object"])
    }

    func testStreamExceptionsCarryTheStatusTheyStandFor() {
        for (type, status) in [("throttlingException", 429), ("serviceUnavailableException", 503), ("modelNotReadyException", 429),
                               ("validationException", 400), ("modelStreamErrorException", 502), ("somethingNew", 500)] {
            var decoder = BedrockStreamDecoder()
            var framing = AWSEventStreamDecoder()
            let frame = try! framing.feedOnce(BedrockStreamEncoder.exception(type: type, message: "slow down"))
            XCTAssertThrowsError(try decoder.events(frame)) { error in
                let error = error as! BedrockStreamDecoder.StreamError
                XCTAssertEqual(error.status, status, type)
                XCTAssertEqual(error.message, "slow down")
            }
        }
    }

    func testErrorTypesAreReadInEverySpelling() {
        XCTAssertEqual(BedrockError.status(forType: "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"), 429)
        XCTAssertEqual(BedrockError.status(forType: "com.amazon.coral.service#UnrecognizedClientException"), 403)
        XCTAssertEqual(BedrockError.status(forType: "ServiceUnavailableException"), 503)
        XCTAssertEqual(BedrockError.status(forType: "ModelNotReadyException"), 429)
        XCTAssertNil(BedrockError.status(forType: "TeapotException"))
        XCTAssertEqual(BedrockError.message(in: ["Message": "denied"]), "denied")
    }
}

extension AWSEventStreamDecoder {
    /// The one message `bytes` hold.
    mutating func feedOnce(_ bytes: [UInt8]) throws -> AWSEventStreamMessage {
        let messages = try feed(bytes)
        XCTAssertEqual(messages.count, 1)
        return messages[0]
    }
}
