import Foundation
import LifelineCore
@testable import LifelineGateway
import LifelineStore
import LifelineWire
import Logging
import XCTest

/// SLO monitoring, alerts and their notifications: payloads, retries, at-most-once delivery,
/// and an outage that pages and resolves over real sockets.
final class AlertingTests: XCTestCase {
    var fixture: GatewayFixture?
    var receiver: WebhookReceiver?

    override func tearDown() async throws {
        await fixture?.stop()
        await receiver?.stop()
    }

    static let scale = 1.0 / 720
    static let quietLogger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }()

    func config(webhooks: [WebhookConfig] = []) -> LifelineConfig {
        var config = LifelineConfig()
        config.models = [ModelConfig(name: "chat", deployments: [DeploymentConfig(name: "a", protocol: .openai, model: "m")])]
        config.alerting.windowScale = Self.scale
        config.notifications.webhooks = webhooks
        config.notifications.backoff = Backoff(base: 0.01, maximum: 0.05)
        // The receivers listen on loopback.
        config.notifications.allowPrivateTargets = true
        return config
    }

    /// A real alert change: a monitor fed a burst of failures.
    func firingChange(at now: Double = 1_700_000_000) -> AlertChange {
        let monitor = SLOMonitor(config: config(), metrics: GatewayMetrics(), now: now)
        for _ in 0..<20 { monitor.record(model: "chat", outcome: RequestOutcome(status: 503), at: now) }
        return monitor.evaluate(at: now).first { $0.alert.rule == "burn-1h" }!
    }

    func testAMonitorFiresAndResolvesWithBurnRatesGaugesAndHistory() {
        let metrics = GatewayMetrics()
        let monitor = SLOMonitor(config: config(), metrics: metrics, now: 0)
        for step in 0..<10 { monitor.record(model: "chat", outcome: RequestOutcome(status: 500), at: Double(step) * 0.1) }
        let fired = monitor.evaluate(at: 1)
        XCTAssertEqual(Set(fired.map(\.alert.alert)), ["chat:availability:burn-1h", "chat:availability:burn-6h", "chat:availability:burn-3d"])
        XCTAssertTrue(fired.allSatisfy { $0.transition == .firing })
        XCTAssertEqual(monitor.firing.count, 3)
        let exposition = String(decoding: metrics.exposition(), as: UTF8.self)
        XCTAssertTrue(exposition.contains(#"lifeline_alerts_firing{alert="chat:availability:burn-1h",severity="page"} 1"#), exposition)
        let burnLine = exposition.split(separator: "\n").first { $0.hasPrefix(#"lifeline_slo_burn_rate{slo="chat:availability",window="1h"} "#) }
        XCTAssertEqual(Double(burnLine?.split(separator: " ").last ?? "") ?? 0, 1000, accuracy: 1e-6)
        XCTAssertTrue(exposition.contains(#"lifeline_slo_objective{slo="chat:latency",model="chat",sli="latency"} 0.99"#), exposition)
        // Nothing changes while it keeps burning: no second firing.
        XCTAssertEqual(monitor.evaluate(at: 1.5), [])
        // Good traffic from now on: the 5 s "hour" drains, then 0.42 s quiet resolves the page.
        var resolved: [AlertChange] = []
        var now = 1.5
        while now < 8 {
            monitor.record(model: "chat", outcome: RequestOutcome(status: 200), at: now)
            resolved += monitor.evaluate(at: now)
            now += 0.1
        }
        XCTAssertEqual(resolved.map(\.alert.alert), ["chat:availability:burn-1h"])
        let record = resolved[0].alert
        XCTAssertEqual(resolved[0].transition, .resolved)
        XCTAssertEqual(record.startedAt, 1)
        XCTAssertGreaterThan(try XCTUnwrap(record.resolvedAt), 5)
        XCTAssertEqual(record.peakBurn, 1000, accuracy: 1e-6)
        XCTAssertEqual(monitor.resolved.map(\.alert), ["chat:availability:burn-1h"])
        let json = monitor.json
        XCTAssertEqual(json["resolved"]?.arrayValue?.first?["state"], "resolved")
        XCTAssertEqual(json["firing"]?.arrayValue?.count, 2)
        XCTAssertNotNil(json["resolved"]?.arrayValue?.first?["until"]?.stringValue)
    }

    func testAReloadKeepsFiringAlertsOpenAndResolvesThoseOfRemovedSLOs() {
        let monitor = SLOMonitor(config: config(), metrics: GatewayMetrics(), now: 0)
        for _ in 0..<10 { monitor.record(model: "chat", outcome: RequestOutcome(status: 500), at: 0.9) }
        XCTAssertEqual(monitor.evaluate(at: 1).count, 3)
        // Same SLOs: nothing fires again, the buckets come back through the store.
        XCTAssertEqual(monitor.reload(config(), at: 1.1), [])
        XCTAssertEqual(monitor.evaluate(at: 1.2), [])
        XCTAssertEqual(monitor.firing.count, 3)
        // Availability dropped from the config: its alerts resolve now.
        var latencyOnly = config()
        latencyOnly.slos = [SLOConfig(model: "chat", latency: LatencySLOConfig())]
        let changes = monitor.reload(latencyOnly, at: 1.3)
        XCTAssertEqual(changes.count, 3)
        XCTAssertTrue(changes.allSatisfy { $0.transition == .resolved && $0.alert.resolvedAt == 1.3 })
        XCTAssertEqual(monitor.firing, [])
    }

    func testAnSLORemovedByAReloadIsExportedAgainWhenAReloadRestoresIt() {
        let metrics = GatewayMetrics()
        let monitor = SLOMonitor(config: config(), metrics: metrics, now: 0)
        func burnRateExported() -> Bool {
            String(decoding: metrics.exposition(), as: UTF8.self).contains(#"lifeline_slo_burn_rate{slo="chat:availability",window="1h"} "#)
        }
        _ = monitor.evaluate(at: 1)
        XCTAssertTrue(burnRateExported())
        var latencyOnly = config()
        latencyOnly.slos = [SLOConfig(model: "chat", latency: LatencySLOConfig())]
        _ = monitor.reload(latencyOnly, at: 1.1)
        XCTAssertFalse(burnRateExported())
        _ = monitor.reload(config(), at: 1.2)
        _ = monitor.evaluate(at: 1.3)
        XCTAssertTrue(burnRateExported())
    }

    func testPayloadsInEachFormat() throws {
        let change = firingChange()
        let url = "http://lifeline.example/admin/v1/alerts"
        let slack = WebhookPayload.slack(change, alertsURL: url)
        XCTAssertTrue(try XCTUnwrap(slack["text"]?.stringValue).hasPrefix("[FIRING] page: chat availability"))
        let blocks = try XCTUnwrap(slack["blocks"]?.arrayValue)
        XCTAssertEqual(blocks.map { $0["type"]?.stringValue }, ["header", "section", "section", "context"])
        XCTAssertEqual(blocks[0]["text"]?["type"], "plain_text")

        let json = WebhookPayload.json(change, alertsURL: url)
        XCTAssertEqual(json["alert"], "chat:availability:burn-1h")
        XCTAssertEqual(json["severity"], "page")
        XCTAssertEqual(json["state"], "firing")
        XCTAssertEqual(json["slo"], "chat:availability")
        XCTAssertEqual(json["burn_rates"]?["1h"], 1000)
        XCTAssertEqual(json["burn_rates"]?["5m"], 1000)
        XCTAssertEqual(json["started_at"], "2023-11-14T22:13:20.000Z")
        XCTAssertEqual(json["resolved_at"], .null)
        XCTAssertNotNil(json["summary"]?.stringValue)

        let (amURL, am) = WebhookPayload.request(for: WebhookConfig(name: "am", format: .alertmanager, url: "http://am:9093"),
                                                 change: change, alertsURL: url, now: 1_700_000_000)
        XCTAssertEqual(amURL, "http://am:9093/api/v2/alerts")
        let alert = try XCTUnwrap(am.arrayValue?.first)
        XCTAssertEqual(alert["labels"]?["alertname"], "LifelineAvailabilityBudgetBurn")
        XCTAssertEqual(alert["labels"]?["severity"], "page")
        XCTAssertEqual(alert["labels"]?["model"], "chat")
        XCTAssertEqual(alert["labels"]?["long_window"], "1h")
        XCTAssertEqual(alert["startsAt"], "2023-11-14T22:13:20.000Z")
        XCTAssertEqual(alert["endsAt"], "2023-11-15T22:13:20.000Z")
        XCTAssertEqual(alert["generatorURL"], .string(url))
        XCTAssertNotNil(alert["annotations"]?["summary"]?.stringValue)
    }

    /// The newest delivery once it has finished (delivered, failed or suppressed).
    func finishedDelivery(_ notifier: Notifier) async throws -> NotificationDelivery {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while clock.now < deadline {
            if let delivery = notifier.deliveries.first, delivery.status != .pending { return delivery }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try XCTUnwrap(notifier.deliveries.first)
    }

    func testDeliveriesRetryWithBackoffAreLoggedAndNeverRepeat() async throws {
        let receiver = try await WebhookReceiver.start()
        self.receiver = receiver
        var settings = config(webhooks: [WebhookConfig(name: "ops", format: .json, url: receiver.url + "/hook")])
        settings.notifications.maxAttempts = 3
        let notifier = Notifier(metrics: GatewayMetrics(), logger: Self.quietLogger, clock: { 1_700_000_000 })
        let running = Task { try await notifier.run() }
        defer { running.cancel() }

        // Two 503s, then accepted: delivered on the third attempt, and only once however often it is asked.
        receiver.fail(next: 2, status: 503)
        let change = firingChange()
        for _ in 0..<3 { notifier.notify(change, config: settings.notifications, deployments: ["a"], alertsURL: "http://x/") }
        var delivery = try await finishedDelivery(notifier)
        try await Task.sleep(for: .milliseconds(200))
        XCTAssertEqual(receiver.received.count, 3)
        XCTAssertEqual(receiver.received.last?.body["state"], "firing")
        XCTAssertEqual(receiver.received.last?.headers["content-type"], "application/json")
        XCTAssertEqual(delivery.status, .delivered)
        XCTAssertEqual(delivery.attempts, 3)
        XCTAssertEqual(delivery.responseStatus, 200)
        XCTAssertEqual(notifier.deliveries.count, 1)

        // A refusal that no retry can fix (400) is final after one attempt.
        receiver.fail(next: 1, status: 400)
        var resolved = change
        resolved.transition = .resolved
        resolved.alert.resolvedAt = change.alert.startedAt + 60
        notifier.notify(resolved, config: settings.notifications, deployments: ["a"], alertsURL: "http://x/")
        _ = await receiver.wait { $0.count >= 4 }
        delivery = try await finishedDelivery(notifier)
        XCTAssertEqual(delivery.transition, .resolved)
        XCTAssertEqual(delivery.status, .failed)
        XCTAssertEqual(delivery.attempts, 1)
        XCTAssertEqual(delivery.error, "HTTP 400")

        // A target that keeps failing gets max_attempts tries, no more.
        receiver.fail(next: 10, status: 500)
        let other = firingChange(at: 1_700_000_500)
        notifier.notify(other, config: settings.notifications, deployments: ["a"], alertsURL: "http://x/")
        _ = await receiver.wait { $0.count >= 7 }
        delivery = try await finishedDelivery(notifier)
        XCTAssertEqual(receiver.received.count, 7)
        XCTAssertEqual(delivery.status, .failed)
        XCTAssertEqual(delivery.attempts, 3)
        XCTAssertEqual(delivery.responseStatus, 500)
    }

    /// A new leader resumes what the old one queued, but a delivery the old one (cut off from the
    /// database, still alive) began meanwhile is its own: claimed in the store, sent once, by it.
    func testADeliveryAnotherInstanceTookIsNotSentAgainAndOneLeftQueuedIs() async throws {
        let receiver = try await WebhookReceiver.start()
        self.receiver = receiver
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lifeline-claim-\(UUID().uuidString).sqlite").path
        let store = try await SQLiteStore.open(path: path)
        for n in 1...2 {
            _ = try await store.insert(StoredDelivery(id: "d\(n)", key: "k\(n)", kind: "alert", target: "ops", format: "json", subjectID: "a",
                                                      subject: "page", event: "firing", status: "pending", body: #"{"n":\#(n)}"#,
                                                      createdAt: 1_700_000_000))
        }
        let settings = config(webhooks: [WebhookConfig(name: "ops", format: .json, url: receiver.url + "/hook")])
        let notifier = Notifier(metrics: GatewayMetrics(), logger: Self.quietLogger, store: store, clock: { 1_700_000_010 })
        await notifier.restore { _ in WebhookTarget(settings.notifications.webhooks[0], notifications: settings.notifications) }
        let tookByTheOther = try await store.claim(deliveryID: "d1")
        XCTAssertTrue(tookByTheOther)
        let running = Task { try await notifier.run() }
        defer { running.cancel() }
        _ = await receiver.wait { $0.count >= 1 }
        try await Task.sleep(for: .milliseconds(300))
        XCTAssertEqual(receiver.received.map { $0.body["n"] }, [2], "d1 belongs to the instance that claimed it")
        XCTAssertEqual(notifier.deliveries.map(\.id), ["d2"])
        try await store.close()
    }

    func testASuppressionPolicyHoldsNotificationsBack() async throws {
        struct EverythingInMaintenance: SuppressionPolicy {
            func suppresses(_ alert: AlertRecord, deployments: [String], at now: Double) -> Bool { deployments.contains("a") }
        }
        let notifier = Notifier(metrics: GatewayMetrics(), logger: Self.quietLogger, suppression: EverythingInMaintenance(),
                                clock: { 0 })
        let settings = config(webhooks: [WebhookConfig(name: "ops", format: .json, url: "http://127.0.0.1:9/never")])
        notifier.notify(firingChange(), config: settings.notifications, deployments: ["a"], alertsURL: "http://x/")
        XCTAssertEqual(notifier.deliveries.map(\.status), [.suppressed])
    }

    func testAnOutageOfBothDeploymentsPagesNotifiesOnceAndResolves() async throws {
        let receiver = try await WebhookReceiver.start()
        self.receiver = receiver
        fixture = try await GatewayFixture.start { config in
            config.alerting.windowScale = Self.scale
            config.alerting.evaluationIntervalSeconds = 0.1
            config.slos = [SLOConfig(model: "chat-openai", availability: AvailabilitySLOConfig())]
            config.routing.backoff = Backoff(base: 0, maximum: 0)
            config.notifications.webhooks = [
                WebhookConfig(name: "ops-json", format: .json, url: receiver.url + "/json"),
                WebhookConfig(name: "ops-slack", format: .slack, url: receiver.url + "/slack"),
                WebhookConfig(name: "ops-am", format: .alertmanager, url: receiver.url + "/am"),
            ]
        }
        let fixture = try XCTUnwrap(fixture)
        for deployment in ["oa-1", "oa-2"] {
            let reply = try await fixture.admin("POST", "/faults", ["deployment": .string(deployment), "kind": "error", "status": 500, "duration_s": 30])
            XCTAssertEqual(reply.status, 201, reply.text)
        }
        let page = "chat-openai:availability:burn-1h"
        func firing() async throws -> [String] {
            try await fixture.admin("GET", "/alerts").json?["firing"]?.arrayValue?.compactMap { $0["alert"]?.stringValue } ?? []
        }
        let clock = ContinuousClock()
        var deadline = clock.now + .seconds(10)
        while clock.now < deadline, !(try await firing().contains(page)) {
            let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "outage"))
            XCTAssertEqual(reply.status, 503)
        }
        let fired = try await firing()
        XCTAssertTrue(fired.contains(page))
        let metrics = String(decoding: try await fixture.get("/metrics").body, as: UTF8.self)
        XCTAssertTrue(metrics.contains(#"lifeline_alerts_firing{alert="chat-openai:availability:burn-1h",severity="page"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"lifeline_slo_burn_rate{slo="chat-openai:availability",window="5m"}"#))

        _ = try await fixture.admin("DELETE", "/faults")
        deadline = clock.now + .seconds(15)
        while clock.now < deadline, try await firing().contains(page) {
            _ = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "recovered"))
            try await Task.sleep(for: .milliseconds(100))
        }
        let stillFiring = try await firing()
        XCTAssertFalse(stillFiring.contains(page))
        let alerts = try await fixture.admin("GET", "/alerts").json
        let resolved = try XCTUnwrap(alerts?["resolved"]?.arrayValue?.first { $0["alert"]?.stringValue == page })
        XCTAssertNotNil(resolved["until"]?.stringValue)

        func posts(_ path: String, _ state: String) -> [WebhookReceiver.Post] {
            receiver.received.filter { post in
                guard post.path == path else { return false }
                switch path {
                case "/json": return post.body["alert"]?.stringValue == page && post.body["state"]?.stringValue == state
                case "/slack": return post.body["text"]?.stringValue?.hasPrefix("[\(state.uppercased())] page") == true
                        && post.body["text"]?.stringValue?.contains("(1h/5m)") == true
                default:
                    let alert = post.body.arrayValue?.first
                    return alert?["labels"]?["long_window"] == "1h"
                        && alert?["annotations"]?["summary"]?.stringValue?.hasPrefix("[\(state.uppercased())]") == true
                }
            }
        }
        _ = await receiver.wait { _ in ["/json", "/slack", "/am/api/v2/alerts"].allSatisfy { posts($0, "resolved").count >= 1 } }
        try await Task.sleep(for: .milliseconds(300))
        for path in ["/json", "/slack", "/am/api/v2/alerts"] {
            XCTAssertEqual(posts(path, "firing").count, 1, path)
            XCTAssertEqual(posts(path, "resolved").count, 1, path)
        }
        let deliveries = try await fixture.admin("GET", "/notifications").json?["data"]?.arrayValue ?? []
        XCTAssertTrue(deliveries.contains { $0["alert"]?.stringValue == page && $0["status"] == "delivered" && $0["transition"] == "resolved" })
        XCTAssertFalse(deliveries.contains { $0["status"] == "failed" })
    }
}
