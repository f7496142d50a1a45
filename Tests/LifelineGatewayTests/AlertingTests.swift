import LifelineCore
@testable import LifelineGateway
import LifelineWire
import Logging
import XCTest

/// SLO monitoring in the gateway: burn rates, alerts, gauges, history, reloads.
final class AlertingTests: XCTestCase {
    static let scale = 1.0 / 720

    func config() -> LifelineConfig {
        var config = LifelineConfig()
        config.models = [ModelConfig(name: "chat", deployments: [DeploymentConfig(name: "a", protocol: .openai, model: "m")])]
        config.alerting.windowScale = Self.scale
        return config
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
}
