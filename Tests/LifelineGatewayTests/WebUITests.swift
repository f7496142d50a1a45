import XCTest

/// The chat page, the operator console and their assets: served with strict security headers,
/// revalidated by ETag, and never from outside the embedded set.
final class WebUITests: XCTestCase {
    var fixture: GatewayFixture!

    override func setUp() async throws {
        fixture = try await GatewayFixture.start()
    }

    override func tearDown() async throws {
        await fixture.stop()
    }

    func testChatPageAndConsoleAnswerWithAStrictContentSecurityPolicy() async throws {
        for (path, script) in [("/", "/assets/chat.js"), ("/console", "/assets/console.js")] {
            let page = try await fixture.get(path)
            XCTAssertEqual(page.status, 200, path)
            XCTAssertEqual(page.headers["content-type"], "text/html; charset=utf-8", path)
            let policy = try XCTUnwrap(page.headers["content-security-policy"], path)
            XCTAssertTrue(policy.hasPrefix("default-src 'self'"), policy)
            XCTAssertTrue(policy.contains("script-src 'self'"), policy)
            XCTAssertFalse(policy.contains("unsafe-inline"), policy)
            XCTAssertFalse(policy.contains("unsafe-eval"), policy)
            XCTAssertEqual(page.headers["x-content-type-options"], "nosniff", path)
            XCTAssertEqual(page.headers["referrer-policy"], "no-referrer", path)
            XCTAssertNil(page.headers["set-cookie"], path)
            XCTAssertTrue(page.text.contains("<script type=\"module\" src=\"\(script)\"></script>"), path)
            // No inline script or style anywhere in the page: the policy would block it.
            XCTAssertFalse(page.text.contains("<script>"), path)
            XCTAssertFalse(page.text.contains("style="), path)
            XCTAssertFalse(page.text.contains("<style"), path)
        }
    }

    func testAssetsCarryTheirTypeAndRevalidateByETag() async throws {
        let script = try await fixture.get("/assets/chat.js")
        XCTAssertEqual(script.status, 200)
        XCTAssertEqual(script.headers["content-type"], "text/javascript; charset=utf-8")
        XCTAssertEqual(script.headers["cache-control"], "no-cache")
        XCTAssertEqual(script.headers["x-content-type-options"], "nosniff")
        let etag = try XCTUnwrap(script.headers["etag"])
        let again = try await fixture.get("/assets/chat.js", headers: ["if-none-match": etag])
        XCTAssertEqual(again.status, 304)
        XCTAssertTrue(again.body.isEmpty)

        let style = try await fixture.get("/assets/app.css")
        XCTAssertEqual(style.headers["content-type"], "text/css; charset=utf-8")
        let missing = try await fixture.get("/assets/nothing-here.js")
        XCTAssertEqual(missing.status, 404)
    }

    func testAssetPathsThatClimbOrNestAreRefused() async throws {
        for path in ["/assets/../Package.swift", "/assets/..%2F..%2FPackage.swift", "/assets/%2e%2e/Package.swift", "/assets/x/../chat.js", "/assets/..", "/assets/a/b.js"] {
            let socket = try await RawHTTPConnection(port: fixture.gatewayPort)
            try await socket.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            var reply = ""
            while true {
                let chunk = try await socket.receive()
                if chunk.isEmpty { break }
                reply += chunk
            }
            try await socket.close()
            XCTAssertTrue(reply.hasPrefix("HTTP/1.1 400"), "\(path): \(reply.prefix(200))")
            XCTAssertFalse(reply.contains("PackageDescription"), path)
        }
    }
}
