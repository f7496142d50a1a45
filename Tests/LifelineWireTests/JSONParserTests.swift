@testable import LifelineWire
import XCTest

final class JSONParserTests: XCTestCase {
    func parse(_ text: String) throws -> JSONValue { try JSONCoding.decode(Array(text.utf8)) }

    func testReadsEveryKindOfValue() throws {
        let value = try parse(#" {"a": [1, -2.5e3, true, false, null, "x\n\u00e9\ud83d\ude00"], "b": {}} "#)
        XCTAssertEqual(value, ["a": [1, -2500, true, false, nil, "x\né😀"], "b": [:]])
    }

    func testWrittenJSONReadsBackEqual() throws {
        let value: JSONValue = ["text": "quote \" backslash \\ tab \t control \u{01}", "n": 0.125, "big": 12345678901, "list": [[], [:]]]
        XCTAssertEqual(try JSONCoding.decode(JSONCoding.encode(value)), value)
    }

    func testRejectsMalformedInputWithAnOffset() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "tru", "01", "1.", "\"\u{01}\"", "{} x", "\"\\x\"", "-", "[1 2]"] {
            XCTAssertThrowsError(try parse(bad), "accepted \(bad.debugDescription)") { error in
                XCTAssertTrue(error is JSONParseError)
            }
        }
    }

    func testRejectsInvalidUTF8() {
        XCTAssertThrowsError(try JSONCoding.decode([0x22, 0xFF, 0x22]))
    }

    func testBoundsNestingDepth() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        XCTAssertThrowsError(try parse(deep))
        XCTAssertNoThrow(try parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)))
    }

    /// Mutated and random inputs must never crash the parser or the request decoders.
    func testFuzzedInputNeverCrashes() throws {
        var random = SystemRandomNumberGenerator()
        let seeds = [
            #"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stop":["x"],"n":2}"#,
            #"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":"r"}]}]}"#,
            #"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":"{}"}}]}]}"#,
        ].map { Array($0.utf8) }
        let alphabet = Array(#"{}[]":,\ 0123456789.eE-+truefalsnl"u"#.utf8) + [0x00, 0xFF, 0xC3]
        for iteration in 0..<20_000 {
            var bytes = seeds[iteration % seeds.count]
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let position = Int.random(in: 0...bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0 where position < bytes.count: bytes.remove(at: position)
                case 1: bytes.insert(alphabet.randomElement(using: &random)!, at: position)
                default: if position < bytes.count { bytes[position] = alphabet.randomElement(using: &random)! }
                }
            }
            if let value = try? JSONCoding.decode(bytes) {
                _ = try? OpenAIChatRequest.decode(value)
                _ = try? AnthropicMessagesRequest.decode(value)
                XCTAssertEqual(try JSONCoding.decode(JSONCoding.encode(value)), value)
            }
        }
    }
}
