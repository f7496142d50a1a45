@testable import LifelineWire
import XCTest

/// Each rule of the published references, refused with the field OpenAI (or Anthropic) names,
/// next to a valid neighbour that must be accepted. The cases add fields to a minimal request.
final class ValidationTableTests: XCTestCase {
    struct Case {
        var name: String
        /// Fields laid over the minimal request (a `messages` here replaces the default one).
        var fields: String
        /// The param a refusal names; nil for a request that must be accepted.
        var param: String?
    }

    static func refused(_ name: String, _ fields: String, _ param: String) -> Case { Case(name: name, fields: fields, param: param) }
    static func accepted(_ name: String, _ fields: String) -> Case { Case(name: name, fields: fields, param: nil) }

    static let longKey = String(repeating: "k", count: 65)
    static let longValue = String(repeating: "v", count: 513)
    static let seventeenEntries = (1...17).map { "\"k\($0)\":\"v\"" }.joined(separator: ",")
    static let sixteenEntries = (1...16).map { "\"k\($0)\":\"v\"" }.joined(separator: ",")
    static let tool = #"{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{}}}}"#

    static let openAICases: [Case] = [
        // messages
        refused("messages empty", #""messages":[]"#, "messages"),
        refused("messages not an array", #""messages":"hi""#, "messages"),
        refused("role outside its enum", #""messages":[{"role":"wizard","content":"hi"}]"#, "messages[0].role"),
        refused("content missing", #""messages":[{"role":"user"}]"#, "messages[0].content"),
        refused("content an empty array", #""messages":[{"role":"user","content":[]}]"#, "messages[0].content"),
        refused("content of the wrong type", #""messages":[{"role":"user","content":5}]"#, "messages[0].content"),
        refused("content part type unknown", #""messages":[{"role":"user","content":[{"type":"video","video":{}}]}]"#, "messages[0].content[0].type"),
        refused("image part without url", #""messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]"#, "messages[0].content[0].image_url.url"),
        refused("image detail outside its enum", #""messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"ultra"}}]}]"#, "messages[0].content[0].image_url.detail"),
        accepted("image part with detail", #""messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"low"}}]}]"#),
        refused("input audio format outside its enum", #""messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"ogg"}}]}]"#, "messages[0].content[0].input_audio.format"),
        accepted("input audio wav", #""messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]"#),
        refused("system message with an image", #""messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]},{"role":"user","content":"hi"}]"#, "messages[0].content[0].type"),
        refused("assistant without content or tool calls", #""messages":[{"role":"user","content":"hi"},{"role":"assistant"}]"#, "messages[1].content"),
        accepted("assistant with tool calls and null content", #""messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}]"#),
        refused("tool message without tool_call_id", #""messages":[{"role":"tool","content":"x"}]"#, "messages[0].tool_call_id"),
        accepted("system only", #""messages":[{"role":"system","content":"Say hello."}]"#),
        accepted("system and developer only", #""messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":[{"type":"text","text":"Say hello."}]}]"#),
        // numbers
        refused("temperature as a string", #""temperature":"hot""#, "temperature"),
        refused("temperature above 2", #""temperature":2.5"#, "temperature"),
        refused("temperature below 0", #""temperature":-0.1"#, "temperature"),
        accepted("temperature 2", #""temperature":2"#),
        refused("top_p above 1", #""top_p":1.5"#, "top_p"),
        accepted("top_p 1", #""top_p":1"#),
        refused("presence_penalty below -2", #""presence_penalty":-2.5"#, "presence_penalty"),
        refused("frequency_penalty above 2", #""frequency_penalty":3"#, "frequency_penalty"),
        accepted("penalties at their bounds", #""presence_penalty":-2,"frequency_penalty":2"#),
        refused("n 0", #""n":0"#, "n"),
        refused("n above 128", #""n":129"#, "n"),
        refused("n fractional", #""n":1.5"#, "n"),
        accepted("n 2", #""n":2"#),
        refused("top_logprobs above 20", #""logprobs":true,"top_logprobs":21"#, "top_logprobs"),
        refused("top_logprobs without logprobs", #""top_logprobs":2"#, "top_logprobs"),
        accepted("top_logprobs 20 with logprobs", #""logprobs":true,"top_logprobs":20"#),
        refused("seed as a string", #""seed":"7""#, "seed"),
        refused("max_tokens with max_completion_tokens", #""max_tokens":10,"max_completion_tokens":10"#, "max_tokens"),
        accepted("max_completion_tokens alone", #""max_completion_tokens":10"#),
        refused("max_tokens 0", #""max_tokens":0"#, "max_tokens"),
        // stop
        refused("stop with five entries", #""stop":["a","b","c","d","e"]"#, "stop"),
        refused("stop with a number", #""stop":["a",1]"#, "stop[1]"),
        accepted("stop with four entries", #""stop":["a","b","c","d"]"#),
        // metadata and store
        refused("store as a string", #""store":"yes""#, "store"),
        refused("metadata as a string", #""store":true,"metadata":"x""#, "metadata"),
        refused("metadata with 17 keys", #""store":true,"metadata":{\#(seventeenEntries)}"#, "metadata"),
        accepted("metadata with 16 keys", #""store":true,"metadata":{\#(sixteenEntries)}"#),
        refused("metadata key of 65 characters", #""store":true,"metadata":{"\#(longKey)":"v"}"#, "metadata"),
        refused("metadata value of 513 characters", #""store":true,"metadata":{"k":"\#(longValue)"}"#, "metadata.k"),
        refused("metadata value a number", #""store":true,"metadata":{"k":1}"#, "metadata.k"),
        refused("metadata without store", #""metadata":{"k":"v"}"#, "metadata"),
        refused("metadata with store false", #""store":false,"metadata":{"k":"v"}"#, "metadata"),
        // logit_bias
        refused("logit_bias above 100", #""logit_bias":{"50256":101}"#, "logit_bias"),
        refused("logit_bias below -100", #""logit_bias":{"50256":-101}"#, "logit_bias"),
        refused("logit_bias key not a token id", #""logit_bias":{"hello":1}"#, "logit_bias"),
        refused("logit_bias as an array", #""logit_bias":[1]"#, "logit_bias"),
        accepted("logit_bias at its bounds", #""logit_bias":{"50256":-100,"11":100}"#),
        // enums
        refused("modalities outside its enum", #""modalities":["video"]"#, "modalities[0]"),
        refused("modalities with audio but no audio", #""modalities":["text","audio"]"#, "audio"),
        accepted("modalities with audio", #""modalities":["text","audio"],"audio":{"voice":"alloy","format":"mp3"}"#),
        refused("audio format outside its enum", #""modalities":["text","audio"],"audio":{"voice":"alloy","format":"ogg"}"#, "audio.format"),
        refused("audio without voice", #""audio":{"format":"wav"}"#, "audio.voice"),
        refused("service_tier outside its enum", #""service_tier":"turbo""#, "service_tier"),
        accepted("service_tier flex", #""service_tier":"flex""#),
        refused("reasoning_effort outside its enum", #""reasoning_effort":"extreme""#, "reasoning_effort"),
        accepted("reasoning_effort minimal", #""reasoning_effort":"minimal""#),
        refused("verbosity outside its enum", #""verbosity":"loud""#, "verbosity"),
        refused("web search context size outside its enum", #""web_search_options":{"search_context_size":"huge"}"#, "web_search_options.search_context_size"),
        refused("prediction type outside its enum", #""prediction":{"type":"text","content":"x"}"#, "prediction.type"),
        // stream
        refused("stream as a string", #""stream":"yes""#, "stream"),
        refused("stream_options without stream", #""stream_options":{"include_usage":true}"#, "stream_options"),
        refused("include_usage as a string", #""stream":true,"stream_options":{"include_usage":"yes"}"#, "stream_options.include_usage"),
        accepted("stream with include_usage", #""stream":true,"stream_options":{"include_usage":true}"#),
        // tools
        refused("parallel_tool_calls without tools", #""parallel_tool_calls":true"#, "parallel_tool_calls"),
        refused("parallel_tool_calls as a string", #""tools":[\#(tool)],"parallel_tool_calls":"yes""#, "parallel_tool_calls"),
        accepted("parallel_tool_calls with tools", #""tools":[\#(tool)],"parallel_tool_calls":false"#),
        refused("tool_choice without tools", #""tool_choice":"auto""#, "tool_choice"),
        refused("tool_choice outside its enum", #""tools":[\#(tool)],"tool_choice":"always""#, "tool_choice"),
        refused("named tool_choice without a name", #""tools":[\#(tool)],"tool_choice":{"type":"function","function":{}}"#, "tool_choice.function.name"),
        accepted("named tool_choice", #""tools":[\#(tool)],"tool_choice":{"type":"function","function":{"name":"get_weather"}}"#),
        accepted("tool_choice required", #""tools":[\#(tool)],"tool_choice":"required""#),
        refused("function name with a space", #""tools":[{"type":"function","function":{"name":"get weather"}}]"#, "tools[0].function.name"),
        refused("function name of 65 characters", #""tools":[{"type":"function","function":{"name":"\#(String(repeating: "f", count: 65))"}}]"#, "tools[0].function.name"),
        refused("tool type outside its enum", #""tools":[{"type":"retrieval","function":{"name":"f"}}]"#, "tools[0].type"),
        refused("tools as an object", #""tools":{"name":"f"}"#, "tools"),
        // response_format
        refused("response_format type outside its enum", #""response_format":{"type":"yaml"}"#, "response_format.type"),
        refused("json_schema without json_schema", #""response_format":{"type":"json_schema"}"#, "response_format.json_schema"),
        refused("json_schema name with a dot", #""response_format":{"type":"json_schema","json_schema":{"name":"a.b","schema":{}}}"#, "response_format.json_schema.name"),
        accepted("json_schema", #""response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object"},"strict":true}}"#),
        accepted("json_object", #""response_format":{"type":"json_object"}"#),
        // passed through
        accepted("an unknown parameter", #""frobnicate":{"level":3}"#),
    ]

    static let anthropicCases: [Case] = [
        refused("max_tokens missing", #""max_tokens":null"#, "max_tokens"),
        refused("max_tokens 0", #""max_tokens":0"#, "max_tokens"),
        refused("max_tokens as a string", #""max_tokens":"10""#, "max_tokens"),
        refused("messages empty", #""messages":[]"#, "messages"),
        refused("system role in messages", #""messages":[{"role":"system","content":"x"}]"#, "messages[0].role"),
        refused("content of the wrong type", #""messages":[{"role":"user","content":5}]"#, "messages[0].content"),
        refused("block type unknown", #""messages":[{"role":"user","content":[{"type":"video"}]}]"#, "messages[0].content[0].type"),
        refused("text block without text", #""messages":[{"role":"user","content":[{"type":"text"}]}]"#, "messages[0].content[0].text"),
        refused("image media type outside its enum", #""messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/bmp","data":"AAAA"}}]}]"#, "messages[0].content[0].source.media_type"),
        refused("image source type outside its enum", #""messages":[{"role":"user","content":[{"type":"image","source":{"type":"ftp","url":"x"}}]}]"#, "messages[0].content[0].source.type"),
        accepted("image url source", #""messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}},{"type":"text","text":"What is it?"}]}]"#),
        refused("tool_use in a user message", #""messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]"#, "messages[0].content[0].type"),
        refused("temperature above 1", #""temperature":1.5"#, "temperature"),
        accepted("temperature 1", #""temperature":1"#),
        refused("top_p above 1", #""top_p":2"#, "top_p"),
        refused("top_k negative", #""top_k":-1"#, "top_k"),
        refused("top_k fractional", #""top_k":1.5"#, "top_k"),
        accepted("top_k 40", #""top_k":40"#),
        refused("stop_sequences a number", #""stop_sequences":[1]"#, "stop_sequences[0]"),
        accepted("stop_sequences", #""stop_sequences":["END","STOP"]"#),
        refused("tool_choice type outside its enum", #""tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"some"}"#, "tool_choice.type"),
        refused("tool_choice tool without a name", #""tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool"}"#, "tool_choice.name"),
        refused("disable_parallel_tool_use as a string", #""tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto","disable_parallel_tool_use":"yes"}"#, "tool_choice.disable_parallel_tool_use"),
        accepted("tool_choice tool", #""tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"f"}"#),
        refused("tool without input_schema", #""tools":[{"name":"f"}]"#, "tools[0].input_schema"),
        refused("tool name with a space", #""tools":[{"name":"get weather","input_schema":{"type":"object"}}]"#, "tools[0].name"),
        refused("metadata user_id of 257 characters", #""metadata":{"user_id":"\#(String(repeating: "u", count: 257))"}"#, "metadata.user_id"),
        refused("metadata with an extra key", #""metadata":{"session":"s"}"#, "metadata.session"),
        accepted("metadata user_id", #""metadata":{"user_id":"u-1"}"#),
        refused("thinking budget below 1024", #""max_tokens":4000,"thinking":{"type":"enabled","budget_tokens":500}"#, "thinking.budget_tokens"),
        refused("thinking budget not below max_tokens", #""max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":2000}"#, "max_tokens"),
        refused("thinking type outside its enum", #""thinking":{"type":"on"}"#, "thinking.type"),
        accepted("thinking enabled", #""max_tokens":4000,"thinking":{"type":"enabled","budget_tokens":2048}"#),
        refused("system block without text", #""system":[{"type":"text"}]"#, "system[0].text"),
        refused("stream as a string", #""stream":"yes""#, "stream"),
        refused("service_tier outside its enum", #""service_tier":"fast""#, "service_tier"),
        accepted("an unknown parameter", #""container":"c1""#),
    ]

    func request(_ base: String, _ fields: String) throws -> JSONValue {
        guard case .object(var object) = try JSONCoding.decode(Array(base.utf8)),
              case .object(let patch) = try JSONCoding.decode(Array("{\(fields)}".utf8))
        else { throw RequestError("not objects", param: nil) }
        for (key, value) in patch { object[key] = value }
        return .object(object)
    }

    func run(_ cases: [Case], base: String, decode: (JSONValue) throws(RequestError) -> ChatRequest, messageCheck: (RequestError) -> Bool) throws {
        for testCase in cases {
            let body = try request(base, testCase.fields)
            do {
                _ = try decode(body)
                XCTAssertNil(testCase.param, "\(testCase.name): accepted, but should be refused naming '\(testCase.param ?? "")'")
            } catch {
                XCTAssertEqual(error.param, testCase.param, "\(testCase.name): \(error.message)")
                XCTAssertTrue(messageCheck(error), "\(testCase.name): message not in the API's style: \(error.message)")
            }
        }
    }

    func testEveryOpenAIRuleIsRefusedNamingItsParamAndItsValidNeighbourAccepted() throws {
        try run(Self.openAICases, base: #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
                decode: OpenAIChatRequest.decode) { error in
            // OpenAI's messages quote the parameter, or say which parameter is missing.
            error.param.map { error.message.contains("'\($0)'") || error.message.contains("'\($0.split(separator: ".").first!)") || error.message.hasPrefix("Invalid value:") || error.message.hasPrefix("Invalid key") } ?? false
        }
    }

    func testEveryAnthropicRuleIsRefusedNamingItsFieldAndItsValidNeighbourAccepted() throws {
        try run(Self.anthropicCases, base: #"{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#,
                decode: AnthropicMessagesRequest.decode) { error in
            // Anthropic's messages begin with the field's dotted path (`messages.0.role: …`).
            error.param.map { error.message.hasPrefix(ErrorStyle.dotted($0) + ":") || error.message.contains("`\($0)`") } ?? false
        }
    }

    func testAnUnknownOpenAIParameterIsPassedThrough() throws {
        let chat = try OpenAIChatRequest.decode(request(#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
                                                        #""frobnicate":{"level":3},"store":true,"metadata":{"k":"v"}"#))
        XCTAssertEqual(chat.passthrough["frobnicate"], ["level": 3])
        let upstream = OpenAIChatRequest.encode(chat, upstreamModel: "u", stream: false)
        XCTAssertEqual(upstream["frobnicate"], ["level": 3])
        XCTAssertEqual(upstream["metadata"], ["k": "v"])
    }

    func testOpenAIMessagesReadLikeOpenAIs() throws {
        func message(_ fields: String) throws -> String {
            do {
                _ = try OpenAIChatRequest.decode(request(#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#, fields))
                return ""
            } catch let error as RequestError { return error.message }
        }
        XCTAssertEqual(try message(#""temperature":3"#), "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead.")
        XCTAssertEqual(try message(#""n":0"#), "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead.")
        XCTAssertEqual(try message(#""temperature":"hot""#), "Invalid type for 'temperature': expected a decimal, but got a string instead.")
        XCTAssertEqual(try message(#""service_tier":"turbo""#), "Invalid value: 'turbo'. Supported values are: 'auto', 'default', 'flex', 'scale', 'priority' and 'fast'.")
        XCTAssertEqual(try message(#""messages":[]"#), "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.")
    }
}
