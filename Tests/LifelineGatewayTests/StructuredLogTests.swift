import LifelineGateway
import LifelineWire
import Logging
import Synchronization
import XCTest

final class StructuredLogTests: XCTestCase {
    /// Collects what a handler writes.
    final class Captured: Sendable {
        let lines = Mutex<[String]>([])
        var output: LogOutput {
            LogOutput { [self] bytes in lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) } }
        }
        var all: [String] { lines.withLock { $0 } }
    }

    func testEachEventIsOneJSONObjectOnOneLineWithTypedFields() throws {
        let captured = Captured()
        var logger = Logger(label: "lifeline") { JSONLogHandler(label: $0, output: captured.output) }
        logger[metadataKey: "request_id"] = "r-1"
        logger.info("request", metadata: [
            "status": .stringConvertible(200), "latency_ms": .stringConvertible(12.5), "stream": .stringConvertible(true),
            "route": "chat_completions", "message": "collides", "nested": ["a": "b"],
        ])
        let lines = captured.all
        XCTAssertEqual(lines.count, 1)
        XCTAssertTrue(lines[0].hasSuffix("\n"))
        XCTAssertEqual(lines[0].filter { $0 == "\n" }.count, 1)
        let json = try JSONCoding.decode(Array(lines[0].utf8))
        XCTAssertEqual(json["message"], "request")
        XCTAssertEqual(json["meta_message"], "collides")
        XCTAssertEqual(json["level"], "info")
        XCTAssertEqual(json["logger"], "lifeline")
        XCTAssertEqual(json["request_id"], "r-1")
        XCTAssertEqual(json["status"], 200)
        XCTAssertEqual(json["latency_ms"], 12.5)
        XCTAssertEqual(json["stream"], true)
        XCTAssertEqual(json["nested"]?["a"], "b")
        let timestamp = try XCTUnwrap(json["ts"]?.stringValue)
        XCTAssertNotNil(timestamp.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression), timestamp)
    }

    func testAMessageWithNewlinesStaysOnOneLine() throws {
        let captured = Captured()
        let logger = Logger(label: "x") { JSONLogHandler(label: $0, output: captured.output) }
        logger.error("first\nsecond \"quoted\"")
        XCTAssertEqual(captured.all.first?.filter { $0 == "\n" }.count, 1)
        XCTAssertEqual(try JSONCoding.decode(Array(captured.all[0].utf8))["message"], "first\nsecond \"quoted\"")
    }

    func testRegisteredSecretsAreRedactedFromMessagesAndMetadata() throws {
        let captured = Captured()
        let redactor = SecretRedactor()
        redactor.register(["sk-upstream-123456", "abc"])
        var logger = Logger(label: "x") { RedactingLogHandler(JSONLogHandler(label: $0, output: captured.output), redactor: redactor) }
        logger[metadataKey: "context"] = "key=sk-upstream-123456"
        logger.warning("upstream said: Incorrect API key provided: sk-upstream-123456", metadata: [
            "detail": ["inner": "sk-upstream-123456"], "count": .stringConvertible(3), "short": "abc",
        ])
        let line = try XCTUnwrap(captured.all.first)
        XCTAssertFalse(line.contains("sk-upstream-123456"), line)
        let json = try JSONCoding.decode(Array(line.utf8))
        XCTAssertEqual(json["message"], "upstream said: Incorrect API key provided: [redacted]")
        XCTAssertEqual(json["context"], "key=[redacted]")
        XCTAssertEqual(json["detail"]?["inner"], "[redacted]")
        XCTAssertEqual(json["count"], 3)
        // Too short to be a credential: left alone rather than mangling ordinary words.
        XCTAssertEqual(json["short"], "abc")
    }

    func testTheConfigNamesItsSecrets() throws {
        let config = try ConfigLoader.parse("""
        admin: {token: "${ADMIN}"}
        models:
          - name: m
            deployments:
              - {name: a, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x, api_key: "${KEY}"}
        """, environment: ["ADMIN": "admin-secret-1", "KEY": "upstream-secret-2"])
        XCTAssertEqual(Set(config.secretValues), ["admin-secret-1", "upstream-secret-2"])
    }
}
