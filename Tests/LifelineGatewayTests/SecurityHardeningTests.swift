import Foundation
import LifelineCore
@testable import LifelineGateway
import LifelineStore
import LifelineWire
import Logging
import Synchronization
import XCTest

/// What an outside security review found, each shown refused or contained over real sockets
/// and real files: metric series set by clients, forged log lines, dropped keys, a store readable
/// by all, and cross-site use of a loopback instance.
final class SecurityHardeningTests: XCTestCase {
    var fixture: GatewayFixture?

    override func tearDown() async throws {
        await fixture?.stop()
    }

    /// One request over a plain socket, so `Host` and `Content-Type` are exactly what the test says.
    func raw(_ method: String, _ path: String, host: String?, headers: [String: String] = [:], body: String = "") async throws
        -> (status: Int, body: JSONValue?)
    {
        let port = try XCTUnwrap(fixture).gatewayPort
        let socket = try await RawHTTPConnection(port: port)
        var text = "\(method) \(path) HTTP/1.1\r\n"
        if let host { text += "Host: \(host)\r\n" }
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        try await socket.send(text)
        var answer = ""
        for _ in 0..<100 {
            let chunk = try await socket.receive()
            if chunk.isEmpty { break }
            answer += chunk
        }
        try await socket.close()
        let status = Int(answer.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") ?? 0
        let payload = answer.range(of: "\r\n\r\n").map { String(answer[$0.upperBound...]) } ?? ""
        return (status, try? JSONCoding.decode(Array(payload.utf8)))
    }

    func metricsText() async throws -> String {
        try await XCTUnwrap(fixture).get("/metrics").text
    }

    /// Lines of the exposition that are series (not `# HELP`/`# TYPE`).
    func seriesCount(_ text: String) -> Int {
        text.split(separator: "\n").count { !$0.hasPrefix("#") }
    }

    // MARK: 1. Metric series set by clients

    func testUnknownModelNamesAndPriorityHeadersAddNoMetricSeries() async throws {
        fixture = try await GatewayFixture.start()
        let fixture = try XCTUnwrap(fixture)
        func burst(_ range: Range<Int>) async throws {
            for index in range {
                let name = "no-such-model-\(index)-" + String(repeating: "x", count: 200)
                let chat = try await fixture.post("/v1/chat/completions", chatBody(name, "hi"))
                XCTAssertEqual(chat.status, 404)
                let messages = try await fixture.post("/v1/messages", chatBody(name, "hi", api: .anthropic))
                XCTAssertEqual(messages.status, 404)
                let embeddings = try await fixture.post("/v1/embeddings", ["model": .string(name), "input": "hi"])
                XCTAssertEqual(embeddings.status, 404)
                let priority = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hi"),
                                                      headers: ["x-lifeline-priority": "urgent-\(index)"])
                XCTAssertEqual(priority.status, 400)
            }
        }
        try await burst(0..<5)
        let before = try await metricsText()
        try await burst(5..<205)
        let after = try await metricsText()
        XCTAssertEqual(seriesCount(after), seriesCount(before), "200 more distinct model names must not add a series")
        XCTAssertFalse(after.contains("no-such-model"))
        XCTAssertFalse(after.contains("urgent-"))
        let unknownChat = after.split(separator: "\n").filter {
            $0.hasPrefix("lifeline_requests_total{") && $0.contains("route=\"chat_completions\"") && $0.contains("model=\"unknown\"")
                && $0.contains("status=\"404\"")
        }
        XCTAssertEqual(unknownChat.count, 1, unknownChat.joined(separator: "\n"))
        XCTAssertTrue(unknownChat.first?.hasSuffix(" 205") == true, unknownChat.first.map(String.init) ?? "")
    }

    func testConfiguredNamesAreLabelsAndAnythingElseIsUnknown() {
        var config = LifelineConfig.zeroConfig
        config.models[0].name = "chat-default"
        var policy = MetricLabelPolicy()
        policy.allow(config)
        XCTAssertEqual(policy.value(label: "model", "chat-default"), "chat-default")
        XCTAssertEqual(policy.value(label: "model", "chat-default\n"), "unknown")
        XCTAssertEqual(policy.value(label: "deployment", "sim-a"), "sim-a")
        XCTAssertEqual(policy.value(label: "deployment", "sim-z"), "unknown")
        XCTAssertEqual(policy.value(label: "scope", "gateway"), "gateway")
        XCTAssertEqual(policy.value(label: "priority", "high"), "high")
        XCTAssertEqual(policy.value(label: "tier", "platinum"), "unknown")
        XCTAssertEqual(policy.value(label: "status", "404"), "404")
    }

    // MARK: 6. Forged log lines

    final class Captured: Sendable {
        let writes = Mutex<[String]>([])
        var output: LogOutput { LogOutput { [self] bytes in writes.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) } } }
        var all: [String] { writes.withLock { $0 } }
    }

    func testAModelNameWithANewlineStaysInOneTextLogLine() async throws {
        let captured = Captured()
        var logger = Logger(label: "lifeline") { TextLogHandler(label: $0, output: captured.output) }
        logger.logLevel = .info
        fixture = try await GatewayFixture.start(gatewayLogger: logger)
        let forged = "chat-x\n2026-01-01T00:00:00+0000 error lifeline: status=200 [LifelineGateway] admin token rotated"
        let reply = try await XCTUnwrap(fixture).post("/v1/chat/completions", chatBody(forged, "hi"), headers: ["x-request-id": "forged-1"])
        XCTAssertEqual(reply.status, 404)
        try await waitFor("the request's log line") { captured.all.contains { $0.contains("forged-1") && $0.contains(" request\n") } }
        for write in captured.all {
            XCTAssertEqual(write.filter { $0 == "\n" }.count, 1, write)
            XCTAssertTrue(write.hasSuffix("\n"))
        }
        let line = try XCTUnwrap(captured.all.first { $0.contains("forged-1") && $0.hasSuffix(" request\n") })
        XCTAssertTrue(line.contains(#"model="chat-x\n2026-01-01T00:00:00+0000 error lifeline: status=200 [LifelineGateway] admin token rotated""#), line)
        XCTAssertFalse(captured.all.contains { $0.hasPrefix("2026-01-01") })
    }

    func testTextLogEscapesControlCharactersAndQuotesAmbiguousValues() {
        XCTAssertEqual(TextLogHandler.field("plain"), "plain")
        XCTAssertEqual(TextLogHandler.field("a b=c"), #""a b=c""#)
        XCTAssertEqual(TextLogHandler.field("say \"hi\""), #""say \"hi\"""#)
        XCTAssertEqual(TextLogHandler.field("x\ny"), #"x\ny"#)
        XCTAssertEqual(TextLogHandler.field(["a": "1 2"]), #"[a: "1 2"]"#)
        XCTAssertEqual(TextLogHandler.escaped("x\r\ny\u{1B}\u{2028}z\\"), #"x\r\ny\u{1b}\u{2028}z\\"#)
        XCTAssertEqual(TextLogHandler.field(""), #""""#)
    }

    // MARK: 7. Keys that can be dropped

    func createKey() async throws -> (id: String, secret: String) {
        let created = try await XCTUnwrap(fixture).admin("POST", "/keys", ["name": "team", "rpm": 100])
        XCTAssertEqual(created.status, 201, created.text)
        return (try XCTUnwrap(created.json?["id"]?.stringValue), try XCTUnwrap(created.json?["secret"]?.stringValue))
    }

    func testTwoDifferentCredentialsAreRefusedAndALifelineKeyIsAlwaysChecked() async throws {
        fixture = try await GatewayFixture.start()
        let fixture = try XCTUnwrap(fixture)
        let (id, secret) = try await createKey()
        let upstream = { fixture.simulatorA.requestsReceived + fixture.simulatorB.requestsReceived }
        let before = upstream()
        // A valid key beside a junk x-api-key used to run as anonymous, escaping the key's limits.
        let junk = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hi"),
                                          headers: ["authorization": "Bearer \(secret)", "x-api-key": "junk"])
        XCTAssertEqual(junk.status, 400)
        XCTAssertEqual(junk.json?["error"]?["param"], "x-api-key")
        XCTAssertEqual(junk.json?["error"]?["code"], "conflicting_credentials")
        let reversed = try await fixture.post("/v1/messages", chatBody("chat-anthropic", "hi", api: .anthropic),
                                              headers: ["authorization": "Bearer junk", "x-api-key": secret])
        XCTAssertEqual(reversed.status, 400)
        XCTAssertEqual(reversed.json?["type"], "error")
        XCTAssertEqual(reversed.json?["error"]?["type"], "invalid_request_error")
        XCTAssertTrue(reversed.json?["error"]?["message"]?.stringValue?.contains("x-api-key") == true)
        XCTAssertEqual(upstream(), before)
        // The same key in both headers is one credential.
        let same = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hi"),
                                          headers: ["authorization": "Bearer \(secret)", "x-api-key": secret])
        XCTAssertEqual(same.status, 200)
        XCTAssertEqual(same.headers["x-ratelimit-limit-requests"], "100")
        // A Lifeline key that is unknown or revoked is refused wherever it is, never dropped.
        let unknown = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hi"), headers: ["x-api-key": "sk-ll-unknown"])
        XCTAssertEqual(unknown.status, 401)
        _ = try await fixture.admin("DELETE", "/keys/\(id)")
        let revoked = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hi"), headers: ["authorization": "Bearer \(secret)"])
        XCTAssertEqual(revoked.status, 401)
        let metrics = try await metricsText()
        XCTAssertTrue(metrics.contains(#"lifeline_request_refusals_total{reason="conflicting_credentials"} 2"#), metrics)
    }

    func testTheClientAddressComesFromForwardedForOnlyBehindATrustedProxy() {
        let trusted = ["127.0.0.1", "10.0.0.0/8", "fd00::/8"].compactMap(IPAddressRange.init)
        XCTAssertEqual(trusted.count, 3)
        // Not behind a trusted proxy: the header is the client's own claim and is ignored.
        XCTAssertEqual(ClientAddress.resolve(peer: "192.0.2.9", forwardedFor: ["198.51.100.1"], trusted: trusted), "192.0.2.9")
        XCTAssertEqual(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: ["198.51.100.1"], trusted: []), "127.0.0.1")
        // The right-most untrusted hop; what the client wrote to the left of it proves nothing.
        XCTAssertEqual(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: ["6.6.6.6, 203.0.113.7, 10.1.2.3"], trusted: trusted), "203.0.113.7")
        XCTAssertEqual(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: ["6.6.6.6", "203.0.113.7"], trusted: trusted), "203.0.113.7")
        XCTAssertEqual(ClientAddress.resolve(peer: "::ffff:127.0.0.1", forwardedFor: ["2001:db8::5"], trusted: trusted), "2001:db8::5")
        XCTAssertEqual(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: ["10.0.0.2, 10.0.0.3"], trusted: trusted), "10.0.0.2")
        XCTAssertEqual(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: ["evil, 10.0.0.3"], trusted: trusted), "10.0.0.3")
        XCTAssertEqual(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: [], trusted: trusted), "127.0.0.1")
        XCTAssertNil(IPAddressRange("10.0.0.0/33"))
        XCTAssertNil(IPAddressRange("example.com"))
    }

    func testTrustedProxiesAreValidatedWithTheirPath() throws {
        let base = "models: [{name: m, deployments: [{name: a, protocol: openai, base_url: \"http://127.0.0.1:1/v1\", model: x}]}]\n"
        let config = try ConfigLoader.parse(base + "auth: {trusted_proxies: [127.0.0.1, \"10.0.0.0/8\"]}\nserver: {allowed_hosts: [chat.example.com, \"localhost:8080\"]}",
                                             environment: [:])
        XCTAssertEqual(config.auth.trustedProxies.map { $0.description }, ["127.0.0.1", "10.0.0.0/8"])
        XCTAssertEqual(config.server.allowedHosts, ["chat.example.com", "localhost:8080"])
        XCTAssertThrowsError(try ConfigLoader.parse(base + "auth: {trusted_proxies: [\"10.0.0.0/40\"]}\nserver: {allowed_hosts: [\"a b\"]}", environment: [:])) { error in
            let paths = (error as? ConfigError)?.issues.map(\.path) ?? []
            XCTAssertEqual(Set(paths), ["auth.trusted_proxies[0]", "server.allowed_hosts[0]"])
        }
    }

    // MARK: 8. The store is private

    func mode(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_mode) & 0o777 : -1
    }

    func testTheDataDirectoryAndEveryFileLifelineWritesAreOwnerOnly() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeline-modes-\(UUID().uuidString)/data").path
        fixture = try await GatewayFixture.start(dataDirectory: directory)
        let fixture = try XCTUnwrap(fixture)
        _ = try await createKey()
        XCTAssertEqual(mode(directory), 0o700)
        for suffix in ["", "-wal", "-shm"] {
            XCTAssertEqual(mode(directory + "/lifeline.sqlite" + suffix), 0o600, "lifeline.sqlite\(suffix)")
        }
        let store = try XCTUnwrap(fixture.runtime.store as? SQLiteStore)
        let backup = directory + "/../backup.sqlite"
        try await store.backup(to: backup)
        XCTAssertEqual(mode(backup), 0o600)
        let log = try ManagedProcessService.openLog(directory + "/processes/local.log")
        try log.close()
        XCTAssertEqual(mode(directory + "/processes"), 0o700)
        XCTAssertEqual(mode(directory + "/processes/local.log"), 0o600)
        if ProcessInfo.processInfo.environment["LIFELINE_ADMIN_TOKEN"] == nil {
            _ = try AdminToken.resolve(configured: nil, dataDirectory: directory, logger: Logger(label: "test"))
            XCTAssertEqual(mode(directory + "/admin-token.sha256"), 0o600)
        }
        XCTAssertTrue(PrivateFiles.tooOpen(in: directory).isEmpty, "\(PrivateFiles.tooOpen(in: directory))")
    }

    func testFilesFoundWiderThanOwnerOnlyAreNamedInAWarningAtStart() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeline-wide-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        XCTAssertTrue(FileManager.default.createFile(atPath: directory + "/lifeline.sqlite", contents: Data(),
                                                    attributes: [.posixPermissions: 0o644]))
        chmod(directory, 0o755)
        chmod(directory + "/lifeline.sqlite", 0o644)
        let captured = Captured()
        let logger = Logger(label: "lifeline") { TextLogHandler(label: $0, output: captured.output) }
        var config = LifelineConfig.zeroConfig
        config.server.dataDirectory = directory
        StartupWarnings.log(config: config, authMode: .optional, logger: logger)
        let warnings = captured.all.filter { $0.contains(" warning ") }
        XCTAssertTrue(warnings.contains { $0.contains("path=\(directory) ") && $0.contains("mode=755") }, warnings.joined())
        XCTAssertTrue(warnings.contains { $0.contains("path=\(directory)/lifeline.sqlite ") && $0.contains("mode=644") }, warnings.joined())
        XCTAssertTrue(warnings.contains { $0.contains("auth is optional") && $0.contains("advisory") }, warnings.joined())
    }

    // MARK: 5. Cross-site use of a loopback instance

    func testAForeignHostIsRefusedOnEveryRouteAndLoopbackNamesAreAnswered() async throws {
        fixture = try await GatewayFixture.start()
        let port = try XCTUnwrap(fixture).gatewayPort
        let chat = #"{"model":"chat-openai","messages":[{"role":"user","content":"hi"}]}"#
        let rebound = try await raw("POST", "/v1/chat/completions", host: "evil.example:\(port)",
                                    headers: ["Content-Type": "text/plain", "Origin": "https://evil.example"], body: chat)
        XCTAssertEqual(rebound.status, 421)
        XCTAssertEqual(rebound.body?["error"]?["code"], "host_not_allowed")
        XCTAssertEqual(rebound.body?["error"]?["param"], "host")
        let anthropic = try await raw("POST", "/v1/messages", host: "evil.example", headers: ["Content-Type": "application/json"], body: chat)
        XCTAssertEqual(anthropic.status, 421)
        XCTAssertEqual(anthropic.body?["type"], "error")
        for path in ["/healthz", "/api/v2/status.json", "/status", "/admin/v1/deployments", "/metrics"] {
            let refused = try await raw("GET", path, host: "evil.example")
            XCTAssertEqual(refused.status, 421, path)
        }
        for host in ["127.0.0.1:\(port)", "localhost:\(port)", "LOCALHOST", "[::1]:\(port)", "127.0.0.1"] {
            let answered = try await raw("GET", "/healthz", host: host)
            XCTAssertEqual(answered.status, 200, host)
        }
        XCTAssertEqual(fixture?.simulatorA.requestsReceived, 0)
    }

    func testInferenceAndRegistrationTakeOnlyJSON() async throws {
        fixture = try await GatewayFixture.start()
        let fixture = try XCTUnwrap(fixture)
        let host = "127.0.0.1:\(fixture.gatewayPort)"
        let chat = #"{"model":"chat-openai","messages":[{"role":"user","content":"hi"}],"max_tokens":16}"#
        for path in ["/v1/chat/completions", "/v1/messages", "/v1/embeddings", "/v1/responses"] {
            let plain = try await raw("POST", path, host: host, headers: ["Content-Type": "text/plain"], body: chat)
            XCTAssertEqual(plain.status, 415, path)
            let form = try await raw("POST", path, host: host, headers: ["Content-Type": "application/x-www-form-urlencoded"], body: chat)
            XCTAssertEqual(form.status, 415, path)
            let none = try await raw("POST", path, host: host, body: chat)
            XCTAssertEqual(none.status, 400, path)
            if path == "/v1/messages" {
                XCTAssertTrue(plain.body?["error"]?["message"]?.stringValue?.contains("Content-Type") == true)
            } else {
                XCTAssertEqual(plain.body?["error"]?["param"], "content-type", path)
                XCTAssertEqual(none.body?["error"]?["param"], "content-type", path)
            }
        }
        XCTAssertEqual(fixture.simulatorA.requestsReceived + fixture.simulatorB.requestsReceived, 0)
        let json = try await raw("POST", "/v1/chat/completions", host: host, headers: ["Content-Type": "application/json; charset=utf-8"], body: chat)
        XCTAssertEqual(json.status, 200)
        let subscriber = #"{"endpoint":"http://127.0.0.1:9/hook"}"#
        let plainSubscriber = try await raw("POST", "/api/v2/subscribers", host: host, headers: ["Content-Type": "text/plain"], body: subscriber)
        XCTAssertEqual(plainSubscriber.status, 415)
        XCTAssertEqual(plainSubscriber.body?["error"]?["param"], "content-type")
        XCTAssertTrue(fixture.runtime.subscribers.all.isEmpty)
    }

    func testAllowedHostsReplaceTheDefaultsAndAStarTurnsTheCheckOff() async throws {
        fixture = try await GatewayFixture.start { $0.server.allowedHosts = ["chat.example.com", "status.example.com:8443"] }
        let port = try XCTUnwrap(fixture).gatewayPort
        let loopback = try await raw("GET", "/healthz", host: "127.0.0.1:\(port)")
        XCTAssertEqual(loopback.status, 421)
        let named = try await raw("GET", "/healthz", host: "chat.example.com:\(port)")
        XCTAssertEqual(named.status, 200)
        let wrongPort = try await raw("GET", "/healthz", host: "status.example.com:8080")
        XCTAssertEqual(wrongPort.status, 421)
        let rightPort = try await raw("GET", "/healthz", host: "status.example.com:8443")
        XCTAssertEqual(rightPort.status, 200)
        await fixture?.stop()

        fixture = try await GatewayFixture.start { $0.server.allowedHosts = ["*"] }
        let any = try await raw("GET", "/healthz", host: "anything.example")
        XCTAssertEqual(any.status, 200)
    }

    func testTheStatusPageHostIsAllowedByDefault() {
        var config = LifelineConfig.zeroConfig
        config.status.pageURL = "https://status.example.com"
        let defaults = HostAllowlist(config)
        XCTAssertTrue(defaults.allows("status.example.com"))
        XCTAssertTrue(defaults.allows("127.0.0.1:8080"))
        XCTAssertTrue(defaults.allows("[::1]:8080"))
        XCTAssertFalse(defaults.allows("evil.example"))
        XCTAssertFalse(defaults.allows("127.0.0.1.evil.example"))
        config.server.host = "0.0.0.0"
        XCTAssertFalse(HostAllowlist(config).allows("127.0.0.1"), "127.0.0.1 is a default only when bound to loopback")
    }

    /// The common `Host` is checked without the full parser; both must give the same verdict.
    func testTheQuickHostCheckAgreesWithTheFullParser() {
        var config = LifelineConfig.zeroConfig
        config.status.pageURL = "https://status.example.com:8443"
        let allowlist = HostAllowlist(config)
        var generator = SeededGenerator(seed: 7)
        let alphabet = Array("abcxyzLOCALHOST0123456789.-:[]_ ")
        let seeds = ["localhost", "127.0.0.1", "status.example.com", "localhost.", "127.0.0.1:65536", "localhost:0", "a:1:2", "::1"]
        var quick = 0
        for index in 0..<20_000 {
            var host = seeds[index % seeds.count]
            for _ in 0..<Int.random(in: 0...4, using: &generator) {
                let position = host.index(host.startIndex, offsetBy: Int.random(in: 0...host.count, using: &generator))
                if Bool.random(using: &generator) || host.isEmpty {
                    host.insert(alphabet.randomElement(using: &generator)!, at: position)
                } else if position < host.endIndex {
                    host.remove(at: position)
                }
            }
            if Bool.random(using: &generator) { host += ":" + String(Int.random(in: 0...70_000, using: &generator)) }
            guard !host.isEmpty, HostAllowlist.plainHostAndPort(host) != nil else { continue }
            quick += 1
            XCTAssertEqual(allowlist.allows(host), allowlist.allowsParsed(host), host)
        }
        XCTAssertGreaterThan(quick, 5_000, "the quick path must be exercised")
        XCTAssertTrue(allowlist.allows("localhost:8080"))
        XCTAssertTrue(allowlist.allows("status.example.com:8443"))
        XCTAssertFalse(allowlist.allows("localhost.evil.example:8080"))
    }

    func testAFloodOfPendingRegistrationsIsBoundedPerAddressAndNeverBlocksTheOperator() async throws {
        fixture = try await GatewayFixture.start()
        let fixture = try XCTUnwrap(fixture)
        func register(_ index: Int, admin: Bool = false) async throws -> GatewayFixture.Reply {
            try await fixture.post("/api/v2/subscribers", ["endpoint": .string("http://127.0.0.1:9/hook-\(index)")],
                                   headers: admin ? ["authorization": "Bearer \(GatewayFixture.adminToken)"] : [:])
        }
        for index in 0..<SubscriberRegistry.maximumPendingPerSource {
            let accepted = try await register(index)
            XCTAssertEqual(accepted.status, 201, accepted.text)
        }
        for index in 0..<20 {
            let refused = try await register(100 + index)
            XCTAssertEqual(refused.status, 429, refused.text)
        }
        let pending = fixture.runtime.subscribers.all.filter { $0.state == .pending }
        XCTAssertEqual(pending.count, SubscriberRegistry.maximumPendingPerSource)
        let operatorRegistration = try await register(999, admin: true)
        XCTAssertEqual(operatorRegistration.status, 201, operatorRegistration.text)
        XCTAssertEqual(operatorRegistration.json?["state"], "active")
        // Approving or removing one makes room for the address again.
        let approved = try await fixture.admin("POST", "/subscribers/\(pending[0].id)/approve")
        XCTAssertEqual(approved.status, 200)
        let again = try await register(200)
        XCTAssertEqual(again.status, 201)
        let metrics = try await metricsText()
        XCTAssertTrue(metrics.contains(#"lifeline_request_refusals_total{reason="subscriber_pending_limit"} 20"#), metrics)
    }

    func testPendingRegistrationsBehindATrustedProxyCountPerForwardedClient() async throws {
        fixture = try await GatewayFixture.start { $0.auth.trustedProxies = [IPAddressRange("127.0.0.1")!] }
        let fixture = try XCTUnwrap(fixture)
        func register(from client: String, _ index: Int) async throws -> Int {
            try await fixture.post("/api/v2/subscribers", ["endpoint": .string("http://127.0.0.1:9/h-\(index)")],
                                   headers: ["x-forwarded-for": client]).status
        }
        for index in 0..<SubscriberRegistry.maximumPendingPerSource {
            let status = try await register(from: "203.0.113.7", index)
            XCTAssertEqual(status, 201)
        }
        let sixth = try await register(from: "6.6.6.6, 203.0.113.7", 50)
        XCTAssertEqual(sixth, 429, "a client cannot escape its bound by writing another address to the left")
        let other = try await register(from: "198.51.100.4", 60)
        XCTAssertEqual(other, 201)
    }
}
