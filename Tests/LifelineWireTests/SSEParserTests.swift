import LifelineWire
import XCTest

final class SSEParserTests: XCTestCase {
    let stream = Array("event: a\ndata: {\"x\":1}\n\n: comment\n\ndata: line1\ndata: line2\r\n\r\nevent: b\ndata:no-space\n\n".utf8)
    let expected = [
        SSEEvent(event: "a", data: Array(#"{"x":1}"#.utf8)),
        SSEEvent(event: nil, data: Array("line1\nline2".utf8)),
        SSEEvent(event: "b", data: Array("no-space".utf8)),
    ]

    func testReadsEventsCommentsAndMultilineData() throws {
        var parser = SSEParser()
        XCTAssertEqual(try parser.feed(stream), expected)
    }

    func testEventsAreTheSameWhereverTheBytesAreSplit() throws {
        for split in 0...stream.count {
            var parser = SSEParser()
            let events = try parser.feed(stream[..<split]) + parser.feed(stream[split...])
            XCTAssertEqual(events, expected, "split at \(split)")
        }
        var parser = SSEParser()
        var events: [SSEEvent] = []
        for byte in stream { events += try parser.feed([byte]) }
        XCTAssertEqual(events, expected)
    }
}
