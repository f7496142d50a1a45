import Foundation
import LifelineWire
import XCTest

/// The event-stream decoder against AWS's published vectors, split anywhere, corrupted, and fuzzed.
final class AWSEventStreamTests: XCTestCase {
    struct Vector {
        var name: String
        var succeeds: Bool
        var encoded: [UInt8]
        var expected: AWSEventStreamMessage?
    }

    static let vectors: [Vector] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/aws-event-stream-vectors.json")
        let json = try! JSONCoding.decode(Array(try! Data(contentsOf: url)))
        return json["vectors"]!.objectValue!.sorted { $0.key < $1.key }.map { name, vector in
            func bytes(_ value: JSONValue?) -> [UInt8] { (value?.arrayValue ?? []).map { UInt8($0.intValue!) } }
            let succeeds = vector["expectation"]?.stringValue == "success"
            var expected: AWSEventStreamMessage?
            if succeeds {
                let headers = (vector["headers"]?.arrayValue ?? []).map { header -> (name: String, value: AWSEventStreamMessage.HeaderValue) in
                    let value: AWSEventStreamMessage.HeaderValue = header["type"]?.stringValue == "int"
                        ? .int(Int32(header["value"]!.intValue!)) : .string(header["value"]!.stringValue!)
                    return (header["name"]!.stringValue!, value)
                }
                expected = AWSEventStreamMessage(headers: headers, payload: bytes(vector["body"]))
            }
            return Vector(name: name, succeeds: succeeds, encoded: bytes(vector["encoded"]), expected: expected)
        }
    }()

    func testPublishedVectorsDecodeOrAreRefused() {
        XCTAssertEqual(Self.vectors.count, 8)
        for vector in Self.vectors {
            var decoder = AWSEventStreamDecoder()
            if let expected = vector.expected {
                XCTAssertEqual(try decoder.feed(vector.encoded), [expected], vector.name)
                XCTAssertEqual(expected.encoded(), vector.encoded, "encoder, \(vector.name)")
            } else {
                XCTAssertThrowsError(try decoder.feed(vector.encoded), vector.name)
            }
        }
    }

    /// A Bedrock stream as the simulator frames it: every way of cutting it gives the same messages.
    func testMessagesAreTheSameWhereverTheBytesAreSplit() throws {
        let messages = (0..<4).map { index in
            AWSEventStreamMessage(headers: [(":event-type", .string("contentBlockDelta")), (":content-type", .string("application/json")),
                                            (":message-type", .string("event")), ("n", .long(Int64(index))), ("flag", .bool(index % 2 == 0)),
                                            ("id", .uuid(Array(0..<16))), ("raw", .bytes([1, 2, 3])), ("s", .short(-2)), ("b", .byte(7)),
                                            ("t", .timestamp(1_700_000_000_000))],
                                  payload: Array(#"{"contentBlockIndex":0,"delta":{"text":"word \#(index) "}}"#.utf8))
        }
        let bytes = messages.flatMap { $0.encoded() }
        for split in 0...bytes.count {
            var decoder = AWSEventStreamDecoder()
            XCTAssertEqual(try decoder.feed(bytes[..<split]) + decoder.feed(bytes[split...]), messages, "split at \(split)")
            XCTAssertEqual(decoder.bufferedByteCount, 0)
        }
        var decoder = AWSEventStreamDecoder()
        var decoded: [AWSEventStreamMessage] = []
        for byte in bytes { decoded += try decoder.feed([byte]) }
        XCTAssertEqual(decoded, messages)
    }

    func testEveryFlippedBitIsRefused() {
        let frame = AWSEventStreamMessage(headers: [(":event-type", .string("messageStop"))], payload: Array(#"{"stopReason":"end_turn"}"#.utf8)).encoded()
        for index in frame.indices {
            for bit in 0..<8 {
                var corrupted = frame
                corrupted[index] ^= 1 << bit
                var decoder = AWSEventStreamDecoder()
                let result = Result(catching: { () throws(AWSEventStreamDecoder.DecodeError) -> [AWSEventStreamMessage] in try decoder.feed(corrupted) })
                // A flipped length may only make the decoder wait for more bytes; it never yields a message.
                if case .success(let messages) = result { XCTAssertEqual(messages, [], "byte \(index) bit \(bit)") }
            }
        }
    }

    func testAMessageAboveTheCapIsRefusedBeforeItIsBuffered() throws {
        var decoder = AWSEventStreamDecoder(maximumMessageBytes: 1024)
        let big = AWSEventStreamMessage(headers: [], payload: [UInt8](repeating: 65, count: 2048)).encoded()
        XCTAssertThrowsError(try decoder.feed(big.prefix(12))) { error in
            XCTAssertTrue("\(error)".contains("outside"), "\(error)")
        }
        XCTAssertEqual(decoder.bufferedByteCount, 0)
        // Failed once, failed for good: the stream cannot be resynchronised.
        XCTAssertThrowsError(try decoder.feed(AWSEventStreamMessage(headers: [], payload: []).encoded()))
    }

    func testHeadersThatRunPastTheirSectionAreRefused() {
        // A string header claiming 200 bytes inside a 10-byte section, with valid checksums.
        let headers: [UInt8] = [1, UInt8(ascii: "a"), 7, 0, 200, 1, 2, 3, 4, 5]
        var frame = [0, 0, 0, UInt8(16 + headers.count), 0, 0, 0, UInt8(headers.count)]
        frame += bigEndian(CRC32.checksum(frame))
        frame += headers
        frame += bigEndian(CRC32.checksum(frame))
        var decoder = AWSEventStreamDecoder()
        XCTAssertThrowsError(try decoder.feed(frame)) { XCTAssertTrue("\($0)".contains("runs past"), "\($0)") }
    }

    /// Bounded mutation fuzzing: random byte edits, truncations and splices of valid frames, fed
    /// in random chunks. The decoder must return or throw, never trap, and hold no more than
    /// its cap. Seeded, so a failure repeats.
    func testMutatedStreamsNeverCrashOrOverBuffer() {
        var random = SplitMix(seed: 0x5EED_B00C)
        let seeds = Self.vectors.filter(\.succeeds).map(\.encoded)
            + [AWSEventStreamMessage(headers: [(":event-type", .string("metadata")), ("x", .bytes([9, 9]))], payload: Array("{}".utf8)).encoded()]
        let cap = 4096
        for _ in 0..<3000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int(random.next() % 4 + 1) { bytes += seeds[Int(random.next() % UInt64(seeds.count))] }
            for _ in 0..<Int(random.next() % 6) {
                guard !bytes.isEmpty else { break }
                let index = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 4 {
                case 0: bytes[index] = UInt8(truncatingIfNeeded: random.next())
                case 1: bytes.removeSubrange(index..<min(bytes.count, index + Int(random.next() % 8)))
                case 2: bytes.insert(contentsOf: (0..<Int(random.next() % 8)).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: index)
                default: bytes[index] ^= 0x80
                }
            }
            var decoder = AWSEventStreamDecoder(maximumMessageBytes: cap)
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + Int(random.next() % 40) + 1)
                do { _ = try decoder.feed(bytes[offset..<end]) } catch { break }
                XCTAssertLessThanOrEqual(decoder.bufferedByteCount, cap + 40)
                offset = end
            }
        }
    }

    func testCRC32MatchesTheStandardCheckValue() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
    }

    private func bigEndian(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
}

/// A small seeded generator for the fuzz test.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
