@testable import LifelineWire
import XCTest

/// The translation cases between the two APIs that need more than a field renamed.
final class TranslationCasesTests: XCTestCase {
    func openAI(_ text: String) throws -> ChatRequest { try OpenAIChatRequest.decode(JSONCoding.decode(Array(text.utf8))) }
    func anthropic(_ text: String) throws -> ChatRequest { try AnthropicMessagesRequest.decode(JSONCoding.decode(Array(text.utf8))) }

    func testASystemOnlyConversationReachesAnthropicWithItsSystemTextAndAPlaceholderUserTurn() throws {
        let chat = try openAI(#"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":"Say hello."}]}"#)
        let body = AnthropicMessagesRequest.encode(chat, upstreamModel: "u", stream: false)
        XCTAssertEqual(body["system"], "Be brief.\n\nSay hello.")
        XCTAssertEqual(body["messages"], [["role": "user", "content": .string(AnthropicMessagesRequest.placeholderUserTurn)]])
        // What Anthropic would receive is a request Anthropic accepts.
        XCTAssertNoThrow(try AnthropicMessagesRequest.decode(body))
    }

    func testAResumedSystemOnlyConversationStillOpensWithAUserTurn() throws {
        var chat = try openAI(#"{"model":"m","messages":[{"role":"system","content":"Say hello."}]}"#)
        chat.messages.append(.text(.assistant, "Hello"))
        let messages = AnthropicMessagesRequest.encode(chat, upstreamModel: "u", stream: true)["messages"]?.arrayValue ?? []
        XCTAssertEqual(messages.map { $0["role"]?.stringValue }, ["user", "assistant"])
        XCTAssertEqual(try AnthropicMessagesRequest.decode(AnthropicMessagesRequest.encode(chat, upstreamModel: "u", stream: true)).assistantPrefill, "Hello")
    }

    func testImagesBecomeAnthropicSourcesAndBack() throws {
        let chat = try openAI(#"""
        {"model":"m","messages":[{"role":"user","content":[
          {"type":"text","text":"Compare"},
          {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
          {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}}]}]}
        """#)
        let blocks = AnthropicMessagesRequest.encode(chat, upstreamModel: "u", stream: false)["messages"]?[0]?["content"]?.arrayValue ?? []
        XCTAssertEqual(blocks[1], ["type": "image", "source": ["type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="]])
        XCTAssertEqual(blocks[2], ["type": "image", "source": ["type": "url", "url": "https://example.com/cat.jpg"]])

        let back = try anthropic(JSONCoding.encodeString(["model": "m", "max_tokens": 10, "messages": [["role": "user", "content": .array(blocks)]]]))
        let parts = OpenAIChatRequest.encode(back, upstreamModel: "u", stream: false)["messages"]?[0]?["content"]?.arrayValue ?? []
        XCTAssertEqual(parts[1], ["type": "image_url", "image_url": ["url": "data:image/png;base64,iVBORw0KGgo="]])
        XCTAssertEqual(parts[2], ["type": "image_url", "image_url": ["url": "https://example.com/cat.jpg"]])
    }

    func testToolChoiceMapsEachWay() throws {
        let tool = #""tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#
        let cases: [(String, JSONValue)] = [
            (#""auto""#, ["type": "auto"]), (#""none""#, ["type": "none"]), (#""required""#, ["type": "any"]),
            (#"{"type":"function","function":{"name":"f"}}"#, ["type": "tool", "name": "f"]),
        ]
        for (openAIChoice, anthropicChoice) in cases {
            let chat = try openAI(#"{"model":"m","messages":[{"role":"user","content":"x"}],\#(tool),"tool_choice":\#(openAIChoice)}"#)
            let body = AnthropicMessagesRequest.encode(chat, upstreamModel: "u", stream: false)
            XCTAssertEqual(body["tool_choice"], anthropicChoice, openAIChoice)
            let back = try AnthropicMessagesRequest.decode(body)
            XCTAssertEqual(OpenAIChatRequest.encode(back, upstreamModel: "u", stream: false)["tool_choice"],
                           try JSONCoding.decode(Array(openAIChoice.utf8)), openAIChoice)
        }
    }

    func testReasoningEffortBecomesAThinkingBudgetThatFitsMaxTokens() throws {
        let high = try openAI(#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high","max_completion_tokens":32000,"temperature":0.3}"#)
        let body = AnthropicMessagesRequest.encode(high, upstreamModel: "u", stream: false)
        XCTAssertEqual(body["thinking"], ["type": "enabled", "budget_tokens": 16384])
        XCTAssertNil(body["temperature"], "Anthropic refuses temperature with thinking")
        XCTAssertNoThrow(try AnthropicMessagesRequest.decode(body))

        let squeezed = try openAI(#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high","max_completion_tokens":3000}"#)
        XCTAssertEqual(AnthropicMessagesRequest.encode(squeezed, upstreamModel: "u", stream: false)["thinking"]?["budget_tokens"], 2999)
        let tooSmall = try openAI(#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"low","max_completion_tokens":500}"#)
        XCTAssertNil(AnthropicMessagesRequest.encode(tooSmall, upstreamModel: "u", stream: false)["thinking"])
        let none = try openAI(#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"none"}"#)
        XCTAssertNil(AnthropicMessagesRequest.encode(none, upstreamModel: "u", stream: false)["thinking"])
        // OpenAI to OpenAI: passed on as sent.
        XCTAssertEqual(OpenAIChatRequest.encode(high, upstreamModel: "u", stream: false)["reasoning_effort"], "high")
    }

    func testAThinkingBudgetBecomesAReasoningEffort() throws {
        let chat = try anthropic(#"{"model":"m","max_tokens":20000,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":8000}}"#)
        let body = OpenAIChatRequest.encode(chat, upstreamModel: "u", stream: false)
        XCTAssertEqual(body["reasoning_effort"], "medium")
        XCTAssertNil(body["thinking"])
        XCTAssertNoThrow(try OpenAIChatRequest.decode(body))
        // Anthropic to Anthropic: the thinking block is passed on as sent.
        XCTAssertEqual(AnthropicMessagesRequest.encode(chat, upstreamModel: "u", stream: false)["thinking"], ["type": "enabled", "budget_tokens": 8000])
    }

    func testThinkingBlocksBecomeReasoningAndBackInAnswersAndStreams() throws {
        let answer: JSONValue = ["id": "msg_1", "model": "u", "stop_reason": "end_turn", "usage": ["input_tokens": 12, "output_tokens": 5],
                                 "content": [["type": "thinking", "thinking": "Let me think.", "signature": "sig"], ["type": "text", "text": "Hello."]]]
        let decoded = try AnthropicMessagesResponse.decode(answer)
        XCTAssertEqual(decoded.choices[0].text, "Hello.")
        XCTAssertEqual(decoded.choices[0].reasoning, "Let me think.")
        XCTAssertEqual(OpenAIChatResponse.encode(decoded)["choices"]?[0]?["message"]?["reasoning_content"], "Let me think.")
        XCTAssertEqual(AnthropicMessagesResponse.encode(decoded)["content"]?[0], ["type": "thinking", "thinking": "Let me think.", "signature": "sig"])
        var stream = AnthropicStreamDecoder()
        var events: [ChatEvent] = []
        events += try stream.events(type: "message_start", json: ["message": ["usage": ["input_tokens": 12, "output_tokens": 0]]])
        events += try stream.events(type: "content_block_start", json: ["index": 0, "content_block": ["type": "thinking", "thinking": ""]])
        events += try stream.events(type: "content_block_delta", json: ["index": 0, "delta": ["type": "thinking_delta", "thinking": "Let me think."]])
        events += try stream.events(type: "content_block_delta", json: ["index": 0, "delta": ["type": "signature_delta", "signature": "sig"]])
        events += try stream.events(type: "content_block_start", json: ["index": 1, "content_block": ["type": "text", "text": ""]])
        events += try stream.events(type: "content_block_delta", json: ["index": 1, "delta": ["type": "text_delta", "text": "Hello."]])
        XCTAssertEqual(events, [.reasoningDelta(choice: 0, text: "Let me think.", signature: nil),
                                .reasoningDelta(choice: 0, text: "", signature: "sig"),
                                .textDelta(choice: 0, text: "Hello.", logprobs: nil)])
        // Re-encoded for an Anthropic client: a thinking block, signed, then the text block.
        var encoder = AnthropicStreamEncoder(id: "m", model: "x", promptTokens: 12)
        let wire = String(decoding: events.flatMap { encoder.encode($0) } + encoder.finish(), as: UTF8.self)
        let order = ["\"thinking_delta\"", "\"signature_delta\"", "\"content_block_stop\"", "\"text_delta\""].map { wire.range(of: $0)?.lowerBound }
        XCTAssertFalse(order.contains(nil), wire)
        XCTAssertEqual(order.compactMap { $0 }, order.compactMap { $0 }.sorted(), wire)
        XCTAssertTrue(wire.contains("\"input_tokens\":12"), wire)
        // For an OpenAI client: reasoning_content deltas.
        var openAI = OpenAIStreamEncoder(id: "c", model: "x", created: 0, includeUsage: false)
        let chunks = String(decoding: events.flatMap { openAI.encode($0) }, as: UTF8.self)
        XCTAssertTrue(chunks.contains("\"reasoning_content\":\"Let me think.\""), chunks)
        XCTAssertEqual(stream.announcedInputTokens, 12)
    }

    func testJSONModeAndSchemaTravelToAnthropicAsAnInstruction() throws {
        let chat = try openAI(#"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object","properties":{"a":{"type":"string"}}}}}}"#)
        let body = AnthropicMessagesRequest.encode(chat, upstreamModel: "u", stream: false)
        let system = body["system"]?.stringValue ?? ""
        XCTAssertTrue(system.hasPrefix("Be brief.\n\n"), system)
        XCTAssertTrue(system.contains(#"{"properties":{"a":{"type":"string"}},"type":"object"}"#), system)
        XCTAssertEqual(JSONOutputInstruction.format(inSystem: system), chat.responseFormat)

        let jsonMode = try openAI(#"{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}"#)
        let jsonBody = AnthropicMessagesRequest.encode(jsonMode, upstreamModel: "u", stream: false)
        XCTAssertTrue(jsonBody["system"]?.stringValue?.contains("JSON") ?? false)
    }

    func testPromptEstimateGrowsWithThePrompt() throws {
        let short = try openAI(#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
        let long = try openAI(#"{"model":"m","messages":[{"role":"user","content":"\#(String(repeating: "word ", count: 400))"}]}"#)
        XCTAssertGreaterThan(TokenEstimate.promptTokens(for: short), 0)
        XCTAssertEqual(TokenEstimate.promptTokens(for: long), 2000 / 4 + TokenEstimate.tokensPerMessage)
    }
}
