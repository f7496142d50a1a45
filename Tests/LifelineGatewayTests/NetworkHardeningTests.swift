import Foundation
import LifelineCore
@testable import LifelineGateway
import LifelineWire
import Synchronization
import XCTest

/// Webhooks that cannot be turned against the gateway's own network, and clients that cannot
/// hold connections open forever or take them all: over real sockets.
final class NetworkHardeningTests: XCTestCase {
    var fixture: GatewayFixture?
    var receivers: [WebhookReceiver] = []

    override func tearDown() async throws {
        await fixture?.stop()
        for receiver in receivers { await receiver.stop() }
    }

    private func receiver() async throws -> WebhookReceiver {
        let receiver = try await WebhookReceiver.start()
        receivers.append(receiver)
        return receiver
    }

    // MARK: Webhooks

    func testASubscriberThatRedirectsIsNotFollowedToTheAddressItNames() async throws {
        let outside = try await receiver()
        let inside = try await receiver()
        outside.redirect(to: inside.url + "/internal")
        fixture = try await GatewayFixture.start(configure: GatewayFixture.fastStatus)
        let fixture = try XCTUnwrap(fixture)
        let subscribed = try await fixture.post("/api/v2/subscribers", ["endpoint": .string(outside.url + "/hook")],
                                                headers: ["authorization": "Bearer \(GatewayFixture.adminToken)"])
        XCTAssertEqual(subscribed.status, 201, subscribed.text)

        let incident = try await fixture.admin("POST", "/incidents", ["name": "Slow answers", "body": "Looking.",
                                                                       "components": ["chat-openai": "degraded_performance"]])
        XCTAssertEqual(incident.status, 201, incident.text)
        let sent = await outside.wait { !$0.isEmpty }
        XCTAssertEqual(sent.count, 1, "the subscriber got the update")
        try await waitFor("the delivery is finished") {
            let log = try await fixture.admin("GET", "/notifications").json?["data"]?.arrayValue ?? []
            return log.contains { $0["status"] == "failed" }
        }
        let log = try await fixture.admin("GET", "/notifications").json?["data"]?.arrayValue ?? []
        XCTAssertEqual(log.first?["response_status"], 307, "a redirect is the delivery's answer, a failed one")
        XCTAssertEqual(log.first?["attempts"], 1, "and not retried")
        XCTAssertEqual(inside.received.count, 0, "nothing is posted where the redirect points")
    }

    func testWithoutTheFlagLoopbackTargetsAreRefusedWhenRegisteredConfiguredAndSent() async throws {
        let target = try await receiver()
        fixture = try await GatewayFixture.start { config in
            GatewayFixture.fastStatus(&config)
            config.notifications.allowPrivateTargets = false
        }
        let fixture = try XCTUnwrap(fixture)
        for endpoint in [target.url + "/hook", "http://localhost:9/x", "http://[::ffff:10.0.0.1]/x", "http://169.254.169.254/latest"] {
            for admin in [false, true] {
                let refused = try await fixture.post("/api/v2/subscribers", ["endpoint": .string(endpoint)],
                                                     headers: admin ? ["authorization": "Bearer \(GatewayFixture.adminToken)"] : [:])
                XCTAssertEqual(refused.status, 400, "\(endpoint): \(refused.text)")
                XCTAssertEqual(refused.json?["error"]?["param"], "endpoint")
            }
        }

        // One registered while private targets were allowed (or before they were refused) is refused when sent to.
        let (subscriber, _) = try await fixture.runtime.subscribers.register(
            endpoint: target.url + "/hook?token=secret", components: nil, knownComponents: [], approved: true, allowPrivateTargets: true,
            at: fixture.runtime.wallClock())
        let incident = try await fixture.admin("POST", "/incidents", ["name": "Slow answers", "body": "Looking.",
                                                                       "components": ["chat-openai": "degraded_performance"]])
        XCTAssertEqual(incident.status, 201, incident.text)
        try await waitFor("the delivery is refused") {
            let log = try await fixture.admin("GET", "/notifications").json?["data"]?.arrayValue ?? []
            return log.contains { $0["target"]?.stringValue == subscriber.id && $0["status"] == "failed" }
        }
        let log = try await fixture.admin("GET", "/notifications").json?["data"]?.arrayValue ?? []
        let error = log.first?["error"]?.stringValue ?? ""
        XCTAssertTrue(error.contains("allow_private_targets"), error)
        XCTAssertFalse(error.contains("secret"))
        XCTAssertEqual(target.received.count, 0, "nothing is sent to a loopback target")
        let exposition = try await XCTUnwrap(fixture).metricsText()
        XCTAssertTrue(exposition.contains(#"lifeline_notifications_total{target="subscribers",outcome="refused"} 1"#), exposition)
    }

    func testConfiguredWebhooksOnPrivateAddressesNeedTheFlag() throws {
        let yaml = """
        models:
          - name: m
            deployments: [{name: a, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x}]
        notifications:
          webhooks:
            - {name: local, format: json, url: "http://127.0.0.1:9000/hook"}
            - {name: metadata, format: json, url: "http://169.254.169.254/x"}
            - {name: public, format: json, url: "https://hooks.example.com/x"}
        """
        XCTAssertThrowsError(try ConfigLoader.parse(yaml, environment: [:])) { error in
            let paths = (error as? ConfigError)?.issues.map(\.path) ?? []
            XCTAssertEqual(paths, ["notifications.webhooks[0].url", "notifications.webhooks[1].url"])
        }
        let allowed = try ConfigLoader.parse(yaml + "\n  allow_private_targets: true\n", environment: [:])
        XCTAssertTrue(allowed.notifications.allowPrivateTargets)
        XCTAssertEqual(allowed.notifications.webhooks.count, 3)
    }

    func testPrivateAddressRangesIncludeMappedForms() {
        for address in ["127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "0.0.0.0",
                        "224.0.0.1", "100.64.0.1", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1",
                        "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::10.0.0.1"]
        {
            XCTAssertTrue(PrivateAddress.isPrivate(address: address), address)
        }
        for address in ["8.8.8.8", "172.32.0.1", "192.169.0.1", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"] {
            XCTAssertFalse(PrivateAddress.isPrivate(address: address), address)
        }
        XCTAssertEqual(PrivateAddress.literalIsPrivate("localhost"), true)
        XCTAssertEqual(PrivateAddress.literalIsPrivate("[::1]"), true)
        XCTAssertNil(PrivateAddress.literalIsPrivate("hooks.example.com"))
    }

    /// A resolver that answers every name with `address` and records what it was asked.
    private final class FixedResolver: Sendable {
        let address: String
        let asked = Mutex<[String]>([])
        init(_ address: String) { self.address = address }
        var resolve: WebhookDestination.Resolver {
            { host, port in
                self.asked.withLock { $0.append("\(host):\(port)") }
                return self.address
            }
        }
    }

    func testANameResolvingToLoopbackIsRefusedWithoutTheFlagAndPinnedWithIt() async throws {
        let loopback = FixedResolver("127.0.0.1")
        do throws(WebhookDestination.Refusal) {
            _ = try await WebhookDestination.resolve(url: "https://hooks.example.com/incident", allowPrivate: false, resolver: loopback.resolve)
            XCTFail("a name resolving to loopback was allowed without notifications.allow_private_targets")
        } catch {
            XCTAssertEqual(error, .privateAddress)
        }
        XCTAssertEqual(loopback.asked.withLock { $0 }, ["hooks.example.com:443"], "the name itself was resolved at send time")

        let allowed = try await WebhookDestination.resolve(url: "http://hooks.example.com:8080/incident", allowPrivate: true,
                                                           resolver: loopback.resolve)
        XCTAssertEqual(allowed.host, "hooks.example.com")
        XCTAssertEqual(allowed.pinnedAddress, "127.0.0.1")
        let configuration = allowed.clientConfiguration()
        XCTAssertEqual(configuration.dnsOverride, ["hooks.example.com": "127.0.0.1"], "the client connects to the checked address only")
    }

    func testANameResolvingToAPublicAddressIsAllowedAndPinned() async throws {
        let publicAddress = FixedResolver("93.184.215.14")
        let destination = try await WebhookDestination.resolve(url: "https://hooks.example.com/incident", allowPrivate: false,
                                                               resolver: publicAddress.resolve)
        XCTAssertEqual(destination.pinnedAddress, "93.184.215.14")
        XCTAssertEqual(destination.clientConfiguration().dnsOverride, ["hooks.example.com": "93.184.215.14"])
        // A name that does not resolve is refused as such, whatever the flag.
        let failing: WebhookDestination.Resolver = { _, _ in throw WebhookDestination.Refusal.unresolved }
        for allowPrivate in [false, true] {
            do throws(WebhookDestination.Refusal) {
                _ = try await WebhookDestination.resolve(url: "https://nowhere.example.com/", allowPrivate: allowPrivate, resolver: failing)
                XCTFail("an unresolved name was allowed")
            } catch {
                XCTAssertEqual(error, .unresolved)
            }
        }
    }

    // MARK: Connections

    /// Sends `request`, then one more byte every 100 ms, until an answer arrives or the connection
    /// ends (bounded: 300 bytes); returns what arrived and whether the connection ended.
    private func trickle(_ request: String, byte: String) async throws -> (reply: String, ended: Bool) {
        let connection = try await RawHTTPConnection(port: try XCTUnwrap(fixture).gatewayPort)
        defer { Task { try? await connection.close() } }
        try await connection.send(request)
        var reply = ""
        for _ in 0..<300 {
            if let chunk = try await connection.receive(within: 100) {
                if chunk.isEmpty { return (reply, true) }
                reply += chunk
                continue
            }
            do { try await connection.send(byte) } catch { break }
        }
        // The answer may be followed by the end of the stream.
        while let chunk = try await connection.receive(within: 2_000), !chunk.isEmpty { reply += chunk }
        return (reply, try await connection.receive(within: 2_000) == "")
    }

    func testATrickledBodyIsCutAtTheReadDeadlineWith408() async throws {
        fixture = try await GatewayFixture.start { config in
            config.server.requestReadTimeoutSeconds = 1
            config.server.minBodyBytesPerSecond = 0
        }
        let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
        let (reply, ended) = try await trickle(head, byte: " ")
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 408"), reply)
        XCTAssertTrue(reply.lowercased().contains("connection: close"), reply)
        XCTAssertTrue(ended, "the connection is closed")

        // Headers that never complete: the connection is closed without an answer.
        let (headerReply, headerEnded) = try await trickle("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", byte: "a")
        XCTAssertEqual(headerReply, "")
        XCTAssertTrue(headerEnded)
        let exposition = try await XCTUnwrap(fixture).metricsText()
        XCTAssertTrue(exposition.contains(#"lifeline_slow_requests_total{reason="body_deadline"} 1"#), exposition)
        XCTAssertTrue(exposition.contains(#"lifeline_slow_requests_total{reason="header_deadline"} 1"#), exposition)
    }

    func testABodySlowerThanTheMinimumRateGets408AfterTheGracePeriod() async throws {
        fixture = try await GatewayFixture.start { config in
            config.server.requestReadTimeoutSeconds = 600
            config.server.minBodyBytesPerSecond = 1_000
            config.server.bodyRateGraceSeconds = 0.5
        }
        let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
        let (reply, ended) = try await trickle(head, byte: " ")
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 408"), reply)
        XCTAssertTrue(ended)
        let exposition = try await XCTUnwrap(fixture).metricsText()
        XCTAssertTrue(exposition.contains(#"lifeline_slow_requests_total{reason="body_rate"} 1"#), exposition)
    }

    func testAKeepAliveConnectionWaitingBetweenRequestsIsNotCut() async throws {
        fixture = try await GatewayFixture.start { config in
            config.server.requestReadTimeoutSeconds = 0.3
            config.server.bodyRateGraceSeconds = 0.1
        }
        let connection = try await RawHTTPConnection(port: try XCTUnwrap(fixture).gatewayPort)
        defer { Task { try? await connection.close() } }
        for round in 0..<2 {
            try await connection.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let reply = try await connection.receive(within: 5_000) ?? ""
            XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200"), "round \(round): \(reply)")
            // Longer than the read deadline, shorter than the idle timeout.
            try await Task.sleep(for: .seconds(1))
        }
        let exposition = try await XCTUnwrap(fixture).metricsText()
        XCTAssertFalse(exposition.contains("lifeline_slow_requests_total{"), exposition)
    }

    func testConnectionsBeyondThePerClientCapGet503AndEarlierOnesKeepWorking() async throws {
        fixture = try await GatewayFixture.start { config in config.server.maxConnectionsPerClient = 2 }
        let fixture = try XCTUnwrap(fixture)
        let first = try await RawHTTPConnection(port: fixture.gatewayPort)
        let second = try await RawHTTPConnection(port: fixture.gatewayPort)
        let request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        for connection in [first, second] {
            try await connection.send(request)
            let reply = try await connection.receive(within: 5_000) ?? ""
            XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200"), reply)
        }

        let third = try await RawHTTPConnection(port: fixture.gatewayPort)
        try await third.send(request)
        var refused = ""
        while let chunk = try await third.receive(within: 5_000), !chunk.isEmpty { refused += chunk }
        XCTAssertTrue(refused.hasPrefix("HTTP/1.1 503"), refused)
        XCTAssertTrue(refused.lowercased().contains("retry-after: 1"), refused)
        XCTAssertTrue(refused.contains(#""type":"overloaded""#), refused)
        try await third.close()

        try await first.send(request)
        let still = try await first.receive(within: 5_000) ?? ""
        XCTAssertTrue(still.hasPrefix("HTTP/1.1 200"), "an admitted connection keeps working: \(still)")
        try await first.close()
        try await second.close()

        // Once they are closed, the gauge falls and new connections are taken again.
        try await waitFor("connections are taken again") {
            (try? await fixture.get("/metrics").status) == 200
        }
        let exposition = try await XCTUnwrap(fixture).metricsText()
        XCTAssertTrue(exposition.contains(#"lifeline_connections_refused_total{reason="max_connections_per_client"} 1"#), exposition)
        XCTAssertTrue(exposition.contains("lifeline_open_connections 1"), exposition)
    }

    func testNetworkLimitsAreReadFromTheServerBlockAndBadValuesNameTheirPath() throws {
        let models = """
        models:
          - name: m
            deployments: [{name: a, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x}]

        """
        let config = try ConfigLoader.parse(models + """
        server: {request_read_timeout_s: 10, min_body_bytes_per_second: 0, body_rate_grace_s: 2, max_connections: 100, max_connections_per_client: 10}
        """, environment: [:])
        XCTAssertEqual(config.server.requestReadTimeoutSeconds, 10)
        XCTAssertEqual(config.server.minBodyBytesPerSecond, 0)
        XCTAssertEqual(config.server.bodyRateGraceSeconds, 2)
        XCTAssertEqual(config.server.maxConnections, 100)
        XCTAssertEqual(config.server.maxConnectionsPerClient, 10)
        XCTAssertThrowsError(try ConfigLoader.parse(models + "server: {request_read_timeout_s: 0, max_connections_per_client: 0}\n", environment: [:])) {
            XCTAssertEqual(($0 as? ConfigError)?.issues.map(\.path), ["server.request_read_timeout_s", "server.max_connections_per_client"])
        }
    }

    func testDefaultConnectionCapsFollowTheOpenFileLimitAndTakeThousandsOfStreamsFromOneAddress() {
        // Each stream holds two descriptors: the client's connection and the upstream's.
        XCTAssertGreaterThanOrEqual(ConnectionLimits.defaultMaximum(openFileLimit: 20_000), 5_000)
        XCTAssertLessThanOrEqual(ConnectionLimits.defaultMaximum(openFileLimit: 20_000) * 2, 20_000)
        XCTAssertLessThanOrEqual(ConnectionLimits.defaultMaximum(openFileLimit: 1_024) * 2, 1_024)
        let limits = ConnectionLimits(ServerConfig(), metrics: GatewayMetrics())
        XCTAssertEqual(limits.maximum, ConnectionLimits.defaultMaximum(openFileLimit: ConnectionLimits.openFileLimit()))
        XCTAssertEqual(limits.maximumPerClient, limits.maximum, "one address may open as many as the server takes")
    }
}
