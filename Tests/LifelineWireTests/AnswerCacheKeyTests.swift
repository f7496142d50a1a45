import LifelineWire
import XCTest

final class AnswerCacheKeyTests: XCTestCase {
    private func openAI(_ body: String) throws -> ChatRequest {
        try OpenAIChatRequest.decode(JSONCoding.decode(Array(body.utf8)))
    }

    func testStreamAndStreamOptionsDoNotChangeTheKey() throws {
        let plain = try openAI(#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#)
        let streamed = try openAI(#"{"stream":true,"stream_options":{"include_usage":true},"messages":[{"content":"hi","role":"user"}],"temperature":0,"model":"m"}"#)
        XCTAssertEqual(AnswerCacheKey.key(for: plain, scope: "k1"), AnswerCacheKey.key(for: streamed, scope: "k1"))
        let key = AnswerCacheKey.key(for: plain, scope: "k1")
        XCTAssertEqual(key.count, 64)
        XCTAssertTrue(key.allSatisfy { "0123456789abcdef".contains($0) }, key)
    }

    func testEverythingThatDecidesTheAnswerChangesTheKey() throws {
        let base = #"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]"#
        let variants = [
            base + "}",
            #"{"model":"other","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#,
            #"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hello"}]}"#,
            base + #","temperature":0.5}"#,
            base + #","top_p":0.5}"#,
            base + #","seed":7}"#,
            base + #","max_tokens":10}"#,
            base + #","stop":["x"]}"#,
            base + #","response_format":{"type":"json_object"}}"#,
            base + #","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}"#,
            base + #","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required"}"#,
            base + #","frequency_penalty":1}"#,
        ]
        var keys: Set<String> = []
        for variant in variants { keys.insert(AnswerCacheKey.key(for: try openAI(variant), scope: "k1")) }
        XCTAssertEqual(keys.count, variants.count)
    }

    func testTheKeyIsTheSHA256OfTheCanonicalJSON() throws {
        let request = try openAI(#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#)
        let canonical = JSONCoding.encode(AnswerCacheKey.canonical(request, scope: "k1"))
        // The canonical JSON is sorted, so its text starts with the first key in order.
        XCTAssertTrue(String(decoding: canonical, as: UTF8.self).hasPrefix(#"{"logprobs":false,"max_tokens":null,"messages":"#))
        XCTAssertNotEqual(AnswerCacheKey.key(for: request, scope: "k1"), AnswerCacheKey.key(for: request, scope: "k1 "))
    }

    func testCallersHaveTheirOwnKeysAndLabelsDoNot() throws {
        let request = try openAI(#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#)
        let labelled = try openAI(#"{"model":"m","temperature":0,"user":"u-1","messages":[{"role":"user","content":"hi"}]}"#)
        XCTAssertNotEqual(AnswerCacheKey.key(for: request, scope: "k1"), AnswerCacheKey.key(for: request, scope: "k2"))
        XCTAssertEqual(AnswerCacheKey.key(for: request, scope: "k1"), AnswerCacheKey.key(for: labelled, scope: "k1"))
    }
}
