@testable import LifelineWire
import XCTest

/// The tree-free read of the common OpenAI stream chunk must agree with the full parse wherever
/// it answers, and answer for the chunks real upstreams send.
final class OpenAITextDeltaTests: XCTestCase {
    private func full(_ bytes: [UInt8]) -> [ChatEvent]? {
        guard let json = try? JSONCoding.decode(bytes), json["error"] == nil else { return nil }
        return OpenAIChatResponse.events(inChunk: json)
    }

    func testTheChunksUpstreamsSendAreReadWithoutATree() throws {
        var encoder = OpenAIStreamEncoder(id: "chatcmpl-1", model: "sim-model", created: 1_700_000_000, includeUsage: true)
        for text in ["Hello", " wörld", "\"quoted\"\n", "emoji 🙂", "\\back\\slash"] {
            let sse = encoder.encode(.textDelta(choice: 0, text: text, logprobs: nil))
            let data = Array(String(decoding: sse, as: UTF8.self).dropFirst("data: ".count).trimmingCharacters(in: .whitespacesAndNewlines).utf8)
            XCTAssertEqual(OpenAIChatResponse.textDeltaEvent(inChunk: data), .textDelta(choice: 0, text: text, logprobs: nil), String(decoding: data, as: UTF8.self))
        }
        // As OpenAI writes them, with the fingerprint, nulls and the role on the first chunk.
        let openAI = #"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"abc"}"#
        XCTAssertEqual(OpenAIChatResponse.textDeltaEvent(inChunk: Array(openAI.utf8)), .textDelta(choice: 0, text: "Hi", logprobs: nil))
        XCTAssertEqual(OpenAIChatResponse.textDeltaEvent(inChunk: Array(#" { "choices" : [ { "delta" : { "content" : "x" } , "index" : 2 } ] } "#.utf8)),
                       .textDelta(choice: 2, text: "x", logprobs: nil))
    }

    func testEveryOtherShapeIsLeftToTheFullParse() {
        let others = [
            #"{"choices":[{"index":0,"delta":{"content":""},"finish_reason":null}]}"#,  // no text
            #"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"a"},"logprobs":{"content":[]}}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"a","tool_calls":[]}}]}"#,
            #"{"choices":[{"index":0,"delta":{"reasoning_content":"r","content":"a"}}]}"#,
            #"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
            #"{"choices":[{"index":0,"delta":{"content":"a"}}],"usage":{"prompt_tokens":1}}"#,
            #"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]}"#,
            #"{"error":{"message":"boom"},"choices":[{"delta":{"content":"a"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"a"}}],"choices":[{"index":0,"delta":{"content":"b"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"cont\u0065nt":"a"}}]}"#,
            #"{"choices":[{"index":1.0,"delta":{"content":"a"}}]}"#,
            #"{"choices":[{"index":01,"delta":{"content":"a"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"a"}}]} x"#,
            #"{"choices":[{"index":0,"delta":{"content":"a"}}]"#,
            #"{"id":{"nested":1},"choices":[{"index":0,"delta":{"content":"a"}}]}"#,
        ]
        for other in others {
            XCTAssertNil(OpenAIChatResponse.textDeltaEvent(inChunk: Array(other.utf8)), other)
        }
    }

    /// Random chunks built from the pieces real ones use and a few that break the shape, then
    /// mutated: wherever the quick read answers, the full parse reads the same one event.
    func testFuzzedChunksNeverDisagreeWithTheFullParse() {
        var random = XorShift()
        func next(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }
        func space() -> String { ["", " ", "\n", "\t ", "\r\n"][next(5)] }
        let texts = [#""a""#, #""""#, #""\u00e9\ud83d\ude00""#, #""\n\"\\""#, #""\ud800""#, #""x\u0000""#, "\"\u{01}\"", #"null"#, #"1"#, #"["a"]"#]
        let scalars = [#""s""#, "1", "-2.5e3", "null", "true", "{}", "[]", "1e999", #""\x""#]
        var accepted = 0
        for _ in 0..<20_000 {
            var delta = ["\"content\":\(space())\(texts[next(texts.count)])"]
            for key in ["role", "refusal", "tool_calls", "reasoning_content", "content", "other"] where next(10) == 0 {
                delta.append("\"\(key)\":\(space())\([#""assistant""#, "null", "[]", #""r""#][next(4)])")
            }
            delta.shuffle(using: &random)
            var choice = ["\"delta\":{\(delta.joined(separator: ",\(space())"))}"]
            if next(3) > 0 { choice.append("\"index\":\(["0", "1", "12", "0.0", "-1", "1e1", "007", "1234567"][next(8)])") }
            for key in ["finish_reason", "logprobs", "other"] where next(6) == 0 {
                choice.append("\"\(key)\":\(["null", #""stop""#, "{}"][next(3)])")
            }
            choice.shuffle(using: &random)
            var chunk = ["\"choices\":\(space())[\(space()){\(choice.joined(separator: ","))}\(next(10) == 0 ? ",{}" : "")]"]
            for key in ["id", "object", "created", "model", "system_fingerprint", "usage", "error", "choices"] where next(5) == 0 {
                chunk.append("\"\(key)\":\(space())\(scalars[next(scalars.count)])")
            }
            chunk.shuffle(using: &random)
            var bytes = Array("\(space()){\(chunk.joined(separator: ",\(space())"))}\(space())".utf8)
            if next(8) == 0, !bytes.isEmpty {
                let position = next(bytes.count)
                switch next(3) {
                case 0: bytes.remove(at: position)
                case 1: bytes[position] = UInt8(truncatingIfNeeded: next(256))
                default: bytes.insert(UInt8(truncatingIfNeeded: next(256)), at: position)
                }
            }
            guard let quick = OpenAIChatResponse.textDeltaEvent(inChunk: bytes) else { continue }
            accepted += 1
            XCTAssertEqual(full(bytes), [quick], String(decoding: bytes, as: UTF8.self))
        }
        // Most chunks carry a piece that breaks the shape (646 of 20,000 do not, with this seed).
        XCTAssertGreaterThan(accepted, 500, "the quick read answers for the common shape")
    }
}

/// A seeded generator, so a failure reproduces.
private struct XorShift: RandomNumberGenerator {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
