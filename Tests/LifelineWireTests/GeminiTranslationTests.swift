@testable import LifelineWire
import XCTest

final class GeminiTranslationTests: XCTestCase {
    func conversation(source: WireProtocol) -> ChatRequest {
        var request = ChatRequest(model: "gemini-test", messages: [
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
        request.seed = 7
        request.tools = [ToolDefinition(name: "weather", description: "Weather by city",
                                        parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])]
        request.toolChoice = .auto
        return request
    }

    func testRequestMapsToGeminiFieldsAndRoles() throws {
        let body = GeminiRequest.encode(conversation(source: .openai))
        XCTAssertEqual(body["systemInstruction"], ["parts": [["text": "You are terse."]]])
        let contents = try XCTUnwrap(body["contents"]?.arrayValue)
        XCTAssertEqual(contents.map { $0["role"]?.stringValue }, ["user", "model", "user"])
        // The model turn holds its text and its call; the tool result and the next question share one user turn.
        XCTAssertEqual(contents[1]["parts"], [["text": "Let me check."],
                                             ["functionCall": ["id": "call_1", "name": "weather", "args": ["city": "Oslo"]]]])
        XCTAssertEqual(contents[2]["parts"]?[0], ["functionResponse": ["id": "call_1", "name": "weather", "response": ["result": "sunny, 20C"]]])
        XCTAssertEqual(contents[2]["parts"]?[1], ["text": "Thanks! And tomorrow?"])
        XCTAssertEqual(body["generationConfig"], ["temperature": 0.5, "topP": 0.9, "maxOutputTokens": 100, "stopSequences": ["END"], "seed": 7])
        XCTAssertEqual(body["tools"]?[0]?["functionDeclarations"]?[0]?["name"], "weather")
        XCTAssertEqual(body["toolConfig"], ["functionCallingConfig": ["mode": "AUTO"]])
        XCTAssertNil(body["model"], "the model is in the URL")
    }

    func testRequestSurvivesTheTripThroughGemini() throws {
        let request = conversation(source: .openai)
        var back = try GeminiRequest.decode(GeminiRequest.encode(request), model: "models/gemini-test", stream: false)
        XCTAssertEqual(back.model, "gemini-test")
        XCTAssertEqual(back.messages[2].name, "weather")
        back.messages[2].name = nil
        back.sourceProtocol = .openai
        back.includeUsage = false
        XCTAssertEqual(back, request)
    }

    func testNamedToolChoiceJSONSchemaAndImagesMap() throws {
        var request = ChatRequest(model: "m", messages: [ChatMessage(role: .user, content: [
            .text("What is in this picture?"),
            .media(["type": "image_url", "image_url": ["url": "data:image/png;base64,AAAA"]], source: .openai),
            .media(["type": "image", "source": ["type": "url", "url": "https://example.com/cat.webp"]], source: .anthropic),
        ])], sourceProtocol: .openai)
        request.toolChoice = .named("weather")
        request.responseFormat = ["type": "json_schema", "json_schema": ["name": "answer", "strict": true, "schema": [
            "type": "object", "additionalProperties": false, "$schema": "https://json-schema.org/draft/2020-12/schema",
            "properties": ["city": ["type": ["string", "null"]]], "required": ["city"],
        ]]]
        let body = GeminiRequest.encode(request)
        XCTAssertEqual(body["contents"]?[0]?["parts"]?[1], ["inlineData": ["mimeType": "image/png", "data": "AAAA"]])
        XCTAssertEqual(body["contents"]?[0]?["parts"]?[2], ["fileData": ["mimeType": "image/webp", "fileUri": "https://example.com/cat.webp"]])
        XCTAssertEqual(body["toolConfig"], ["functionCallingConfig": ["mode": "ANY", "allowedFunctionNames": ["weather"]]])
        XCTAssertEqual(body["generationConfig"]?["responseMimeType"], "application/json")
        // Keywords outside Gemini's schema subset are dropped; a nullable type becomes `nullable`.
        XCTAssertEqual(body["generationConfig"]?["responseSchema"], [
            "type": "object", "properties": ["city": ["type": "string", "nullable": true]], "required": ["city"],
        ])
        // Back to OpenAI's image part, for an OpenAI or Anthropic upstream after a Gemini simulator read it.
        let decoded = try GeminiRequest.decode(body, model: "m", stream: false)
        guard case .media(let part, source: .gemini) = decoded.messages[0].content[1] else { return XCTFail("expected a Gemini image part") }
        XCTAssertEqual(GeminiMedia.toOpenAI(part), ["type": "image_url", "image_url": ["url": "data:image/png;base64,AAAA"]])
    }

    func testDecodingNamesTheWrongField() {
        XCTAssertThrowsError(try GeminiRequest.decode(["contents": [["role": "assistant", "parts": [["text": "hi"]]]]], model: "m", stream: false)) {
            XCTAssertEqual(($0 as? RequestError)?.param, "contents[0].role")
        }
        XCTAssertThrowsError(try GeminiRequest.decode(["contents": [["parts": [["text": "hi"]]]], "generationConfig": ["temperature": 3]],
                                                      model: "m", stream: false)) {
            XCTAssertEqual(($0 as? RequestError)?.param, "generationConfig.temperature")
        }
        XCTAssertThrowsError(try GeminiRequest.decode(["contents": []], model: "m", stream: false)) {
            XCTAssertEqual(($0 as? RequestError)?.param, "contents")
        }
    }

    func testResponseMapsTextCallsUsageAndFinishReasons() throws {
        let json: JSONValue = [
            "candidates": [["content": ["role": "model", "parts": [
                ["text": "thinking…", "thought": true], ["text": "It is "], ["text": "sunny."],
                ["functionCall": ["name": "weather", "args": ["city": "Oslo"]]],
            ]], "finishReason": "STOP", "index": 0]],
            "usageMetadata": ["promptTokenCount": 12, "candidatesTokenCount": 5, "thoughtsTokenCount": 3, "totalTokenCount": 20],
            "modelVersion": "gemini-test-001", "responseId": "abc",
        ]
        let response = try GeminiResponse.decode(json)
        XCTAssertEqual(response.choices[0].text, "It is sunny.")
        XCTAssertEqual(response.choices[0].reasoning, "thinking…")
        XCTAssertEqual(response.choices[0].toolCalls, [ToolCall(id: "call_0_0_weather", name: "weather", arguments: #"{"city":"Oslo"}"#)])
        XCTAssertEqual(response.choices[0].finishReason, .toolCalls)
        XCTAssertEqual(response.usage, Usage(promptTokens: 12, completionTokens: 8))
        XCTAssertEqual(FinishReason(gemini: "MAX_TOKENS", calledFunctions: false), .length)
        XCTAssertEqual(FinishReason(gemini: "SAFETY", calledFunctions: false), .contentFilter)
        XCTAssertEqual(FinishReason(gemini: "STOP", calledFunctions: false), .stop)
        XCTAssertNil(GeminiResponse.promptBlockReason(json))
        XCTAssertEqual(GeminiResponse.promptBlockReason(["promptFeedback": ["blockReason": "SAFETY"]]), "SAFETY")
        // The simulator's encoding reads back the same.
        XCTAssertEqual(try GeminiResponse.decode(GeminiResponse.encode(response)).choices, response.choices)
    }

    func testStreamEndsOnlyAfterAFinishReasonAndReportsUsageLast() throws {
        var encoder = GeminiStreamEncoder(id: "r1", model: "gemini-test")
        var bytes: [UInt8] = []
        for event: ChatEvent in [.textDelta(choice: 0, text: "Hello", logprobs: nil), .textDelta(choice: 0, text: " there", logprobs: nil),
                                 .finish(choice: 0, reason: .length, stopSequence: nil), .usage(Usage(promptTokens: 4, completionTokens: 2))] {
            bytes += encoder.encode(event)
        }
        bytes += encoder.finish()
        var parser = SSEParser()
        let chunks = try parser.feed(bytes).map { try JSONCoding.decode($0.data) }
        XCTAssertEqual(chunks.count, 3)
        var decoder = GeminiStreamDecoder()
        var events: [ChatEvent] = []
        for (index, chunk) in chunks.enumerated() {
            events += try decoder.events(in: chunk)
            XCTAssertEqual(decoder.sawFinish, index == chunks.count - 1, "only the last chunk finishes the stream")
        }
        events += decoder.finish()
        XCTAssertEqual(events, [.textDelta(choice: 0, text: "Hello", logprobs: nil), .textDelta(choice: 0, text: " there", logprobs: nil),
                                .finish(choice: 0, reason: .length, stopSequence: nil), .usage(Usage(promptTokens: 4, completionTokens: 2))])
    }

    func testThoughtPartsStreamAsReasoningNotText() throws {
        var encoder = GeminiStreamEncoder(id: "r1", model: "gemini-test")
        let events: [ChatEvent] = [.reasoningDelta(choice: 0, text: "Oslo in June.", signature: nil), .textDelta(choice: 0, text: "Sunny.", logprobs: nil),
                                   .finish(choice: 0, reason: .stop, stopSequence: nil), .usage(Usage(promptTokens: 4, completionTokens: 2))]
        var bytes: [UInt8] = []
        for event in events { bytes += encoder.encode(event) }
        bytes += encoder.finish()
        var parser = SSEParser()
        let chunks = try parser.feed(bytes).map { try JSONCoding.decode($0.data) }
        XCTAssertEqual(chunks[0]["candidates"]?[0]?["content"]?["parts"], [["text": "Oslo in June.", "thought": true]])
        var decoder = GeminiStreamDecoder()
        var decoded: [ChatEvent] = []
        for chunk in chunks { decoded += try decoder.events(in: chunk) }
        decoded += decoder.finish()
        XCTAssertEqual(decoded, events)
    }

    func testSystemOnlyConversationsGetAUserTurn() {
        var request = ChatRequest(model: "gemini-test", messages: [], sourceProtocol: .anthropic)
        request.system = "Say hello."
        XCTAssertEqual(GeminiRequest.encode(request)["contents"], [["role": "user", "parts": [["text": .string(AnthropicMessagesRequest.placeholderUserTurn)]]]])
    }

    func testStreamedErrorsAndBlockedPromptsAreFailures() {
        var decoder = GeminiStreamDecoder()
        XCTAssertThrowsError(try decoder.events(in: GeminiError.body(status: 503, message: "The model is overloaded."))) {
            XCTAssertEqual(($0 as? GeminiStreamDecoder.StreamError)?.status, 503)
        }
        XCTAssertThrowsError(try decoder.events(in: ["promptFeedback": ["blockReason": "PROHIBITED_CONTENT"]])) {
            XCTAssertEqual(($0 as? GeminiStreamDecoder.StreamError)?.blockReason, "PROHIBITED_CONTENT")
        }
    }

    func testErrorBodiesCarryGoogleStatusNamesAndRetryDelay() {
        let body = GeminiError.body(status: 429, message: "quota", retryAfterSeconds: 34)
        XCTAssertEqual(body["error"]?["status"], "RESOURCE_EXHAUSTED")
        XCTAssertEqual(GeminiError.retryDelaySeconds(body), 34)
        XCTAssertEqual(GeminiError.body(status: 503, message: "x")["error"]?["status"], "UNAVAILABLE")
        XCTAssertNil(GeminiError.retryDelaySeconds(["error": ["details": [["@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "soon"]]]]))
    }

    func testAzureContentFilterRefusalsAreRecognised() {
        XCTAssertTrue(AzureOpenAIError.isContentFilter(AzureOpenAIError.contentFilterBody()))
        XCTAssertTrue(AzureOpenAIError.isContentFilter(["error": ["code": "400", "innererror": ["code": "ResponsibleAIPolicyViolation"]]]))
        XCTAssertFalse(AzureOpenAIError.isContentFilter(AzureOpenAIError.body(status: 429, message: "slow down")))
        XCTAssertEqual(FinishReason(openAI: "content_filter").anthropicValue, "refusal")
    }
}
