/// Why a body is not JSON, with the byte offset where reading stopped.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public var description: String { "\(message) at byte \(offset)" }
}

/// A single-pass JSON reader for untyped values.
///
/// Written by hand because `JSONDecoder` can only read an untyped value by trying each
/// type in turn and catching the failures, which costs several times a direct read on
/// the request path; this reader also bounds nesting so hostile input cannot exhaust the stack.
struct JSONParser {
    static let maximumDepth = 128

    private let bytes: [UInt8]
    private var index = 0

    static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.readValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.error("unexpected data after the JSON value") }
        return value
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func error(_ message: String) -> JSONParseError { JSONParseError(message: message, offset: index) }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func readValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth < Self.maximumDepth else { throw error("nesting deeper than \(Self.maximumDepth)") }
        guard index < bytes.count else { throw error("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try readObject(depth: depth)
        case UInt8(ascii: "["): return try readArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try readString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try readNumber())
        default: throw error("unexpected character")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("unexpected end of input") }
        let pointer = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != pointer[offset] {
            throw error("invalid literal")
        }
        index += count
    }

    private mutating func readObject(depth: Int) throws(JSONParseError) -> JSONValue {
        index += 1
        var object: [String: JSONValue] = [:]
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(object) }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try readString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
            index += 1
            skipWhitespace()
            object[key] = try readValue(depth: depth + 1)
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(object) }
            throw error("expected ',' or '}'")
        }
    }

    private mutating func readArray(depth: Int) throws(JSONParseError) -> JSONValue {
        index += 1
        var array: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(array) }
        while true {
            skipWhitespace()
            array.append(try readValue(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(array) }
            throw error("expected ',' or ']'")
        }
    }

    private mutating func readString() throws(JSONParseError) -> String {
        index += 1
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let string = try validatedString(bytes[start..<index])
                index += 1
                return string
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("control character in string") }
            index += 1
        }
        var scalars: [UInt8] = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return try validatedString(scalars[...])
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw error("unexpected end of input") }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""): scalars.append(0x22)
                case UInt8(ascii: "\\"): scalars.append(0x5C)
                case UInt8(ascii: "/"): scalars.append(0x2F)
                case UInt8(ascii: "b"): scalars.append(0x08)
                case UInt8(ascii: "f"): scalars.append(0x0C)
                case UInt8(ascii: "n"): scalars.append(0x0A)
                case UInt8(ascii: "r"): scalars.append(0x0D)
                case UInt8(ascii: "t"): scalars.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try readHex4()
                    if (0xD800...0xDBFF).contains(code) {
                        // A high surrogate must be followed by an escaped low surrogate.
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                        else { code = 0xFFFD; appendScalar(code, to: &scalars); continue }
                        index += 2
                        let low = try readHex4()
                        if (0xDC00...0xDFFF).contains(low) {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            appendScalar(0xFFFD, to: &scalars)
                            code = low
                        }
                    }
                    appendScalar(code, to: &scalars)
                default: throw error("invalid escape")
                }
            default:
                if byte < 0x20 { throw error("control character in string") }
                scalars.append(byte)
                index += 1
            }
        }
        throw error("unterminated string")
    }

    private func validatedString(_ slice: ArraySlice<UInt8>) throws(JSONParseError) -> String {
        guard let string = String(validating: slice, as: UTF8.self) else { throw error("invalid UTF-8") }
        return string
    }

    private func appendScalar(_ code: UInt32, to bytes: inout [UInt8]) {
        let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
        bytes.append(contentsOf: Array(String(Character(scalar)).utf8))
    }

    private mutating func readHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("unexpected end of input") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    private mutating func readNumber() throws(JSONParseError) -> Double {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw error("number out of range") }
        return value
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}

// MARK: - The common OpenAI stream chunk, without a tree

extension JSONParser {
    /// Reads an OpenAI-compatible stream chunk of the shape nearly every chunk of an answer
    /// takes, one choice whose delta is text alone (no finish, no usage, no logprobs), without
    /// building a tree: the choice's index and its text. Nil for any other chunk, for a key
    /// written with an escape or given twice, and for input that is not JSON: the caller then
    /// parses it in full. For every chunk it accepts, the full parse reads the same.
    static func openAITextDelta(_ bytes: [UInt8]) -> (choice: Int, text: String)? {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        guard let found = try? parser.readTextDeltaChunk() else { return nil }
        parser.skipWhitespace()
        return parser.index == bytes.count ? found : nil
    }

    /// Top-level keys: the choices, a null usage, and scalars the text needs nothing from.
    private static let chunkKeys = ["choices", "usage", "id", "object", "created", "model", "system_fingerprint", "service_tier", "obfuscation"]
    private static let choiceKeys = ["index", "delta", "finish_reason", "logprobs"]
    /// The text, and keys that may come as null beside it (the role also as a string).
    private static let deltaKeys = ["content", "role", "refusal", "tool_calls", "function_call", "reasoning_content"]

    /// Which of `names` the raw key is, once per object: nil for another key or one seen before.
    private static func position(of key: ArraySlice<UInt8>, in names: [String], seen: inout Int) -> Int? {
        guard let position = names.firstIndex(where: { key.elementsEqual($0.utf8) }), seen & (1 << position) == 0 else { return nil }
        seen |= 1 << position
        return position
    }

    private mutating func readTextDeltaChunk() throws(JSONParseError) -> (choice: Int, text: String)? {
        var found: (choice: Int, text: String)?
        var seen = 0
        let complete = try readFlatObject { parser, key throws(JSONParseError) -> Bool in
            switch Self.position(of: key, in: Self.chunkKeys, seen: &seen) {
            case nil: return false
            case 0:
                found = try parser.readSingleTextChoice()
                return found != nil
            case 1: return try parser.readNull()
            default:
                switch try parser.readValue(depth: 1) {
                case .object, .array: return false
                default: return true
                }
            }
        }
        return complete ? found : nil
    }

    /// `[{"index": N, "delta": {"content": "…"}, "finish_reason": null, "logprobs": null}]`, in any order.
    private mutating func readSingleTextChoice() throws(JSONParseError) -> (choice: Int, text: String)? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "[") else { return nil }
        index += 1
        skipWhitespace()
        var choice = 0
        var text: String?
        var seen = 0
        let complete = try readFlatObject { parser, key throws(JSONParseError) -> Bool in
            switch Self.position(of: key, in: Self.choiceKeys, seen: &seen) {
            case nil: return false
            case 0:
                guard let value = parser.readSmallNaturalNumber() else { return false }
                choice = value
                return true
            case 1:
                text = try parser.readTextOnlyDelta()
                return text != nil
            default: return try parser.readNull()
            }
        }
        guard complete, let text else { return nil }
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "]") else { return nil }
        index += 1
        return (choice, text)
    }

    /// `{"content": "…"}` with a non-empty text, beside keys that are null.
    private mutating func readTextOnlyDelta() throws(JSONParseError) -> String? {
        var text: String?
        var seen = 0
        let complete = try readFlatObject { parser, key throws(JSONParseError) -> Bool in
            let position = Self.position(of: key, in: Self.deltaKeys, seen: &seen)
            guard let position else { return false }
            let isString = parser.index < parser.bytes.count && parser.bytes[parser.index] == UInt8(ascii: "\"")
            if position == 0 {
                guard isString else { return false }
                let content = try parser.readString()
                text = content
                return !content.isEmpty
            }
            // The role comes as a string on some chunks; the full parse ignores it either way.
            if position == 1, isString {
                _ = try parser.readString()
                return true
            }
            return try parser.readNull()
        }
        return complete ? text : nil
    }

    /// Walks an object at `index`, handing each key (raw, unescaped) to `value`, which reads the
    /// value and says whether the shape still holds. False as soon as it does not, or for a key
    /// with an escape in it (the full parse would compare it unescaped).
    private mutating func readFlatObject(_ value: (inout JSONParser, ArraySlice<UInt8>) throws(JSONParseError) -> Bool) throws(JSONParseError) -> Bool {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return false }
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return true }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return false }
            let start = index + 1
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20 { end += 1 }
            guard end < bytes.count, bytes[end] == UInt8(ascii: "\"") else { return false }
            index = end + 1
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
            index += 1
            skipWhitespace()
            guard try value(&self, bytes[start..<end]) else { return false }
            skipWhitespace()
            guard index < bytes.count else { return false }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return true }
            return false
        }
    }

    private mutating func readNull() throws(JSONParseError) -> Bool {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "n") else { return false }
        try expectLiteral("null")
        return true
    }

    /// Up to six digits with no sign, fraction or exponent; nil for any other number.
    private mutating func readSmallNaturalNumber() -> Int? {
        var end = index
        var value = 0
        while end < bytes.count, isDigit(bytes[end]), end - index < 7 {
            value = value * 10 + Int(bytes[end] - UInt8(ascii: "0"))
            end += 1
        }
        let digits = end - index
        guard digits > 0, digits <= 6, !(digits > 1 && bytes[index] == UInt8(ascii: "0")) else { return nil }
        if end < bytes.count, bytes[end] == UInt8(ascii: ".") || bytes[end] == UInt8(ascii: "e") || bytes[end] == UInt8(ascii: "E") { return nil }
        index = end
        return value
    }
}
