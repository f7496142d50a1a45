import LifelineCore
import XCTest

final class StatusBoardTests: XCTestCase {
    private func board() -> StatusBoard {
        var thresholds = StatusThresholds()
        thresholds.windowSeconds = 10
        thresholds.minimumRequests = 4
        return StatusBoard(models: ["chat-default"], thresholds: thresholds)
    }

    private func send(_ board: inout StatusBoard, _ count: Int, status: Int, latency: Double = 0.1, at time: Double,
                      route: String = "chat_completions")
    {
        for _ in 0..<count {
            board.record(route: route, model: "chat-default", outcome: RequestOutcome(status: status, latencySeconds: latency), at: time)
        }
    }

    func testComponentsAreTheApiChatAndEachModelWithStableIds() {
        let names = board().components.map(\.name)
        XCTAssertEqual(names, ["API", "Chat", "chat-default"])
        XCTAssertEqual(board().components.map(\.id), board().components.map(\.id))
        XCTAssertEqual(board().components[2].id.count, 12)
        XCTAssertNotEqual(board().components[0].id, board().components[1].id)
    }

    func testEveryChatAPIRouteCountsTowardTheChatComponentAndEmbeddingsDoNot() {
        for route in ["chat_completions", "messages", "responses"] {
            XCTAssertEqual(board().components(route: route, model: "chat-default"), ["API", "Chat", "chat-default"], route)
        }
        XCTAssertEqual(board().components(route: "embeddings", model: "chat-default"), ["API", "chat-default"])
    }

    func testErrorShareSetsTheStatusLadder() {
        for (failed, expected) in [(0, ComponentStatus.operational), (1, .partialOutage), (6, .majorOutage)] {
            var board = board()
            send(&board, 10 - failed, status: 200, at: 1)
            send(&board, failed, status: 500, at: 1)
            XCTAssertEqual(board.status(of: "chat-default", at: 2), expected, "\(failed) failed of 10")
            XCTAssertEqual(board.status(of: "API", at: 2), expected)
        }
        var degraded = board()
        send(&degraded, 97, status: 200, at: 1)
        send(&degraded, 3, status: 503, at: 1)
        XCTAssertEqual(degraded.status(of: "chat-default", at: 2), .degradedPerformance)
    }

    func testClientErrorsAndTooFewRequestsDoNotDegrade() {
        var board = board()
        send(&board, 20, status: 400, at: 1)
        send(&board, 3, status: 500, at: 1)
        XCTAssertEqual(board.status(of: "chat-default", at: 2), .operational, "3 requests are below the minimum")
        send(&board, 1, status: 200, at: 1)
        XCTAssertEqual(board.status(of: "chat-default", at: 2), .majorOutage)
    }

    func testSlowFirstTokensAboveTheQuantileDegradePerformance() {
        var board = board()
        send(&board, 95, status: 200, latency: 0.2, at: 1)
        send(&board, 5, status: 200, latency: 9, at: 1)
        XCTAssertEqual(board.status(of: "chat-default", at: 2), .operational, "p95 is still fast")
        send(&board, 2, status: 200, latency: 9, at: 1)
        XCTAssertEqual(board.status(of: "chat-default", at: 2), .degradedPerformance)
    }

    func testTheWindowForgetsOldTraffic() {
        var board = board()
        send(&board, 10, status: 500, at: 1)
        XCTAssertEqual(board.status(of: "chat-default", at: 5), .majorOutage)
        XCTAssertEqual(board.status(of: "chat-default", at: 12), .operational)
    }

    func testEmbeddingsCountForTheApiButNotForChat() {
        var board = board()
        send(&board, 10, status: 500, at: 1, route: "embeddings")
        XCTAssertEqual(board.status(of: "API", at: 2), .majorOutage)
        XCTAssertEqual(board.status(of: "Chat", at: 2), .operational)
    }
}

final class IncidentTrackerTests: XCTestCase {
    private var policy: IncidentPolicy {
        var policy = IncidentPolicy()
        policy.openAfterSeconds = 1
        policy.monitorAfterSeconds = 0.5
        policy.resolveAfterSeconds = 2
        policy.updateIntervalSeconds = 5
        return policy
    }

    private let down: [String: ComponentStatus] = ["chat-default": .majorOutage, "API": .majorOutage, "Chat": .operational]
    private let fine: [String: ComponentStatus] = ["chat-default": .operational, "API": .operational, "Chat": .operational]
    private let figures = ["chat-default": ComponentFigures(requests: 40, errorShare: 1, slowShare: 0)]

    /// Steps the tracker every 0.1 s from `from` to `to` with `statuses`; returns every change.
    private func run(_ tracker: inout IncidentTracker, _ statuses: [String: ComponentStatus], from: Double, to: Double) -> [Incident] {
        var changes: [Incident] = []
        var now = from
        while now <= to + 1e-9 {
            if let change = tracker.evaluate(statuses: statuses, figures: figures, at: now) { changes.append(change) }
            now += 0.1
        }
        return changes
    }

    func testABlipShorterThanOpenAfterOpensNothing() {
        var tracker = IncidentTracker(policy: policy, windowSeconds: 10)
        XCTAssertTrue(run(&tracker, down, from: 0, to: 0.8).isEmpty)
        XCTAssertTrue(run(&tracker, fine, from: 0.9, to: 5).isEmpty)
        XCTAssertNil(tracker.incident)
    }

    func testAnOutageOpensOneIncidentThatMonitorsAndResolves() throws {
        var tracker = IncidentTracker(policy: policy, windowSeconds: 10)
        let opening = run(&tracker, down, from: 0, to: 1.0)
        XCTAssertEqual(opening.count, 1)
        let opened = try XCTUnwrap(opening.first)
        XCTAssertEqual(opened.status, .investigating)
        XCTAssertEqual(opened.impact, .critical)
        XCTAssertEqual(opened.components, ["API", "chat-default"])
        XCTAssertTrue(opened.published)
        XCTAssertTrue(opened.name.contains("chat-default"))
        XCTAssertTrue(opened.updates[0].body.contains("100 % of 40 requests failed"), opened.updates[0].body)
        XCTAssertEqual(opened.updates[0].affected["chat-default"], .majorOutage)
        // Still down: updates come on the cadence, not every evaluation.
        let during = run(&tracker, down, from: 1.1, to: 6.05)
        XCTAssertEqual(during.count, 1)
        XCTAssertTrue(during[0].updates.last!.body.hasPrefix("Still under way."))
        // Recovery: monitoring after 0.5 s, resolved 2 s later.
        let after = run(&tracker, fine, from: 6.1, to: 10)
        XCTAssertEqual(after.map(\.status), [.monitoring, .resolved])
        XCTAssertEqual(after.map(\.id), [opened.id, opened.id])
        XCTAssertEqual(after[1].resolvedAt!, 8.6, accuracy: 0.05)
        XCTAssertNotNil(after[1].monitoringAt)
        XCTAssertNil(tracker.incident)
    }

    func testFlappingAtTheThresholdKeepsOneIncidentAndDoesNotFlipIt() {
        var tracker = IncidentTracker(policy: policy, windowSeconds: 10)
        var changes = run(&tracker, down, from: 0, to: 1.2)
        XCTAssertEqual(changes.count, 1)
        // Alternating every evaluation: never 0.5 s recovered, never 1 s worse.
        var now = 1.3
        for step in 0..<100 {
            if let change = tracker.evaluate(statuses: step % 2 == 0 ? fine : down, figures: figures, at: now) { changes.append(change) }
            now += 0.1
        }
        XCTAssertEqual(Set(changes.map(\.id)).count, 1)
        XCTAssertFalse(changes.contains { $0.status == .monitoring || $0.status == .resolved })
    }

    func testAProblemReturningDuringMonitoringReopensTheSameIncident() {
        var tracker = IncidentTracker(policy: policy, windowSeconds: 10)
        let first = run(&tracker, down, from: 0, to: 1)[0]
        XCTAssertEqual(run(&tracker, fine, from: 1.1, to: 1.7).map(\.status), [.monitoring])
        let back = run(&tracker, down, from: 1.8, to: 3)
        XCTAssertEqual(back.map(\.status), [.investigating])
        XCTAssertEqual(back[0].id, first.id)
        XCTAssertTrue(back[0].updates.last!.body.hasPrefix("The problem is back."))
    }

    func testSpreadingToAnotherComponentAddsAnUpdateAtOnceAndRaisesTheImpact() {
        var tracker = IncidentTracker(policy: policy, windowSeconds: 10)
        let degraded: [String: ComponentStatus] = ["chat-default": .degradedPerformance]
        let opened = run(&tracker, degraded, from: 0, to: 1)
        XCTAssertEqual(opened.last?.impact, .minor)
        let grown = run(&tracker, down, from: 1.1, to: 1.1)
        XCTAssertEqual(grown.count, 1)
        XCTAssertEqual(grown[0].impact, .critical)
        XCTAssertTrue(grown[0].updates.last!.body.hasPrefix("The problem has grown."))
    }

    func testApprovalModeOpensDrafts() {
        var strict = policy
        strict.requireApproval = true
        var tracker = IncidentTracker(policy: strict, windowSeconds: 10)
        XCTAssertEqual(run(&tracker, down, from: 0, to: 1).first?.published, false)
    }

    func testAnAdoptedIncidentResolvesAfterARestartWithoutANewOne() {
        var before = IncidentTracker(policy: policy, windowSeconds: 10)
        let open = run(&before, down, from: 0, to: 1)[0]
        var after = IncidentTracker(policy: policy, windowSeconds: 10)
        after.adopt(open, at: 100)
        let changes = run(&after, fine, from: 100, to: 103)
        XCTAssertEqual(changes.map(\.status), [.monitoring, .resolved])
        XCTAssertEqual(Set(changes.map(\.id)), [open.id])
    }

    func testResolvingByHandWaitsAFullOpenDelayBeforeANewIncident() {
        var tracker = IncidentTracker(policy: policy, windowSeconds: 10)
        var open = run(&tracker, down, from: 0, to: 1)[0]
        open.add(status: .resolved, body: "Fixed.", at: 1.5)
        tracker.operatorChanged(open, at: 1.5)
        XCTAssertTrue(run(&tracker, down, from: 1.6, to: 2.4).isEmpty)
        XCTAssertEqual(run(&tracker, down, from: 2.5, to: 2.6).count, 1)
    }
}

/// The timings the defaults promise, on a manual clock: the default `StatusThresholds` and
/// `IncidentPolicy`, evaluated every 5 s as the gateway does, with ten requests a second.
final class StatusTimingTests: XCTestCase {
    private static let evaluationInterval = 5.0

    /// Sends ten requests a second from 0 to `end` (each failing when `fails(time, index)` says so)
    /// and evaluates the board and tracker on the gateway's tick; returns every incident change with its time.
    private func simulate(until end: Double, fails: (Double, Int) -> Bool) -> [(at: Double, incident: Incident)] {
        var board = StatusBoard(models: ["chat-default"], thresholds: StatusThresholds())
        var tracker = IncidentTracker(policy: IncidentPolicy(), windowSeconds: board.thresholds.windowSeconds)
        var changes: [(at: Double, incident: Incident)] = []
        var nextEvaluation = 0.0
        for index in 0...Int(end * 10) {
            let now = Double(index) / 10
            if now >= nextEvaluation - 1e-9 {
                var statuses: [String: ComponentStatus] = [:]
                var figures: [String: ComponentFigures] = [:]
                for component in board.components {
                    figures[component.name] = board.figures(of: component.name, at: now)
                    statuses[component.name] = board.status(of: component.name, at: now)
                }
                if let change = tracker.evaluate(statuses: statuses, figures: figures, at: now) { changes.append((now, change)) }
                nextEvaluation += Self.evaluationInterval
            }
            let outcome = RequestOutcome(status: fails(now, index) ? 503 : 200, latencySeconds: 0.2)
            board.record(route: "chat_completions", model: "chat-default", outcome: outcome, at: now)
        }
        return changes
    }

    func testAMajorOutageIsPublicWithin20To30SecondsAndResolvesWithinFiveMinutesOfRecovery() throws {
        // Healthy for a minute, every request failing for ten minutes, then healthy again.
        let changes = simulate(until: 1200) { time, _ in time >= 60 && time < 660 }
        let opened = try XCTUnwrap(changes.first)
        XCTAssertEqual(opened.incident.status, .investigating)
        XCTAssertEqual(opened.incident.impact, .critical)
        XCTAssertGreaterThanOrEqual(opened.at - 60, 20, "not before the major-outage delay")
        XCTAssertLessThanOrEqual(opened.at - 60, 30)
        let monitoring = try XCTUnwrap(changes.first { $0.incident.status == .monitoring })
        let resolved = try XCTUnwrap(changes.first { $0.incident.status == .resolved })
        XCTAssertGreaterThan(monitoring.at, 660)
        XCTAssertLessThanOrEqual(resolved.at - 660, 300, "resolved within five minutes of recovery")
        XCTAssertGreaterThanOrEqual(resolved.at - monitoring.at, IncidentPolicy().resolveAfterSeconds - 1e-6)
        XCTAssertEqual(Set(changes.map(\.incident.id)), [opened.incident.id], "one event, one incident")
    }

    func testAPartialOutageOpensLaterThanAMajorOneAndADegradationLaterStill() throws {
        // Three requests in ten fail: a partial outage.
        let partial = try XCTUnwrap(simulate(until: 200) { time, index in time >= 60 && index % 10 < 3 }.first)
        XCTAssertEqual(partial.incident.impact, .major)
        XCTAssertGreaterThanOrEqual(partial.at - 60, 30)
        XCTAssertLessThanOrEqual(partial.at - 60, 45)
        // One request in twenty fails: degraded performance.
        let degraded = try XCTUnwrap(simulate(until: 200) { time, index in time >= 60 && index % 20 == 0 }.first)
        XCTAssertEqual(degraded.incident.impact, .minor)
        XCTAssertGreaterThanOrEqual(degraded.at - 60, 45)
        XCTAssertLessThanOrEqual(degraded.at - 60, 65)
    }

    func testAProblemThatWorsensOpensOnceTheWorseDelayHasPassedSinceItBegan() throws {
        // Degraded from 60 s (one request in twenty failing, seen from 75 s), every request failing from 90 s.
        let changes = simulate(until: 200) { time, index in time >= 90 || (time >= 60 && index % 20 == 0) }
        let opened = try XCTUnwrap(changes.first)
        XCTAssertEqual(opened.incident.impact, .critical)
        XCTAssertLessThan(opened.at - 90, IncidentPolicy().openAfterMajorOutageSeconds, "counted from when the problem began")
        XCTAssertLessThan(opened.at, 75 + IncidentPolicy().openAfterSeconds, "not the degradation's delay")
    }

    func testATwoSecondBurstOfFailuresOpensNothing() {
        XCTAssertTrue(simulate(until: 400) { time, _ in time >= 60 && time < 62 }.isEmpty)
    }

    func testAWorseStatusNeverWaitsLongerThanAMilderOne() {
        var policy = IncidentPolicy()
        policy.openAfterSeconds = 1
        XCTAssertEqual(policy.openAfter(.majorOutage), 1)
        XCTAssertEqual(policy.openAfter(.partialOutage), 1)
        policy.openAfterSeconds = 45
        XCTAssertEqual(policy.openAfter(.degradedPerformance), 45)
        XCTAssertEqual(policy.openAfter(.partialOutage), 30)
        XCTAssertEqual(policy.openAfter(.majorOutage), 20)
    }
}

final class MaintenanceTests: XCTestCase {
    func testTheScheduleMovesAMaintenanceThroughItsStatuses() {
        var maintenance = Maintenance(id: "m1", name: "Upgrade", message: "Upgrading sim-a", deployments: ["sim-a"],
                                      components: ["chat-default"], scheduledFor: 10, scheduledUntil: 20, createdAt: 0)
        XCTAssertNil(maintenance.transition(at: 5))
        XCTAssertEqual(maintenance.transition(at: 10), .inProgress)
        maintenance.move(to: .inProgress, body: "Started", at: 10)
        XCTAssertTrue(maintenance.isActive)
        XCTAssertNil(maintenance.transition(at: 15))
        XCTAssertEqual(maintenance.transition(at: 20), .completed)
        maintenance.move(to: .completed, body: "Done", at: 20)
        XCTAssertNil(maintenance.transition(at: 30))
        XCTAssertEqual(maintenance.updates.map(\.status), [.scheduled, .inProgress, .completed])
        XCTAssertEqual(maintenance.completedAt, 20)
    }

    func testAWindowMissedEntirelyCompletesWithoutStarting() {
        let maintenance = Maintenance(id: "m1", name: "x", message: "x", deployments: [], components: [], scheduledFor: 10,
                                      scheduledUntil: 20, createdAt: 0)
        XCTAssertEqual(maintenance.transition(at: 25), .completed)
    }
}
