import LifelineCore
import XCTest

final class IncidentEvidenceTests: XCTestCase {
    func testFailedRequestsCountCallersTokensAndTheRecoveryTime() {
        var evidence = IncidentEvidence()
        evidence.record(ObservedRequest(at: 10, available: true, firstTokenSeconds: 0.4, caller: "a", deployment: "sim-b"))
        evidence.record(ObservedRequest(at: 11, available: false, caller: "a", completionTokens: 5))
        evidence.record(ObservedRequest(at: 12, available: false, caller: "b", failoverPhase: "mid_stream", completionTokens: 3))
        evidence.record(ObservedRequest(at: 13, available: false, caller: "a"))
        evidence.record(ObservedRequest(at: 14, available: nil, caller: "c"))
        evidence.record(ObservedRequest(at: 15, available: true, slow: true, firstTokenSeconds: 6, deployment: "sim-b"))
        XCTAssertEqual(evidence.requests, 5, "a client error does not count")
        XCTAssertEqual(evidence.failedRequests, 3)
        XCTAssertEqual(evidence.slowRequests, 1)
        XCTAssertEqual(evidence.callers, ["a", "b"])
        XCTAssertEqual(evidence.tokensLost, 8)
        XCTAssertEqual(evidence.firstFailureAt, 11)
        XCTAssertEqual(evidence.lastFailureAt, 13)
        XCTAssertEqual(evidence.failovers, ["mid_stream": 1])
        XCTAssertEqual(evidence.firstFailoverAt, 12)
        XCTAssertEqual(evidence.slowestFirstTokenSeconds, 6)
        XCTAssertEqual(evidence.servingDeployments, ["sim-b"])
        XCTAssertEqual(evidence.errorShare, 0.6, accuracy: 1e-9)
    }

    func testTheFirstSymptomsCountTheWindowAndTheirFailuresCallersAndTokens() {
        var evidence = IncidentEvidence()
        evidence.seed(failed: 3, total: 10, since: 100, failures: [
            ObservedRequest(at: 96, available: false, caller: "a", completionTokens: 4),
            ObservedRequest(at: 99, available: false, caller: "b", deployment: "sim-a"),
            ObservedRequest(at: 97, available: true, caller: "c"),
        ])
        XCTAssertEqual(evidence.requests, 10, "the totals are the window's, not the failures counted again")
        XCTAssertEqual(evidence.failedRequests, 3)
        XCTAssertEqual(evidence.callers, ["a", "b"], "only callers of failed requests")
        XCTAssertEqual(evidence.tokensLost, 4)
        XCTAssertEqual(evidence.firstFailureAt, 96, "the first failed request, before the incident's start")
        XCTAssertEqual(evidence.lastFailureAt, 99)
        XCTAssertEqual(evidence.servingDeployments, ["sim-a"])
        evidence.record(ObservedRequest(at: 101, available: false, caller: "a"))
        XCTAssertEqual(evidence.lastFailureAt, 101)
        XCTAssertEqual(evidence.callers, ["a", "b"])
        evidence.seed(failed: 9, total: 9, since: 200)
        XCTAssertEqual(evidence.requests, 11, "seeding happens once, before anything was recorded")
    }

    func testTheWorstWindowAndEjectionsAreKept() {
        var evidence = IncidentEvidence()
        evidence.observe(ComponentFigures(requests: 10, errorShare: 0.3, slowShare: 0.1), at: 5)
        evidence.observe(ComponentFigures(requests: 10, errorShare: 0.9, slowShare: 0), at: 6)
        evidence.observe(ComponentFigures(requests: 10, errorShare: 0.5, slowShare: 0.2), at: 7)
        evidence.observe(ComponentFigures(requests: 0, errorShare: 1, slowShare: 1), at: 8)
        XCTAssertEqual(evidence.worstErrorShare, 0.9)
        XCTAssertEqual(evidence.worstErrorShareAt, 6)
        XCTAssertEqual(evidence.worstSlowShare, 0.2)
        evidence.recordEjection(deployment: "sim-a", at: 3)
        evidence.recordEjection(deployment: "sim-a", at: 9)
        XCTAssertEqual(evidence.ejections, ["sim-a": 2])
        XCTAssertEqual(evidence.firstEjectionAt, ["sim-a": 3])
    }

    func testDistinctCallersStopCountingAtTheCap() {
        var evidence = IncidentEvidence()
        for index in 0...IncidentEvidence.callersCounted {
            evidence.record(ObservedRequest(at: 1, available: false, caller: "k\(index)"))
        }
        XCTAssertEqual(evidence.callers.count, IncidentEvidence.callersCounted)
        XCTAssertTrue(evidence.callersCapped)
    }
}

final class PostmortemDraftTests: XCTestCase {
    /// An automatic incident over 2026-12-01 12:00:00 … 12:04:10 UTC with measured evidence.
    func resolvedIncident() -> Incident {
        let start = 1_796_126_400.0 // 2026-12-01T12:00:00Z
        var incident = Incident(id: "i1", name: "Elevated errors on chat-default", status: .investigating, impact: .critical,
                                createdAt: start + 20, components: ["chat-default", "API"], automatic: true, published: true)
        incident.startedAt = start
        incident.add(status: .investigating, body: "We are investigating.", at: start + 20)
        incident.evidence.record(ObservedRequest(at: start + 21, available: false, caller: "k1", completionTokens: 12))
        incident.evidence.record(ObservedRequest(at: start + 22, available: true, firstTokenSeconds: 2.5, caller: "k2", deployment: "sim-b",
                                                 failoverPhase: "before_first_byte"))
        incident.evidence.record(ObservedRequest(at: start + 200, available: false, caller: "k2"))
        incident.evidence.observe(ComponentFigures(requests: 40, errorShare: 0.75, slowShare: 0.1), at: start + 30)
        incident.evidence.recordEjection(deployment: "sim-a", at: start + 25)
        incident.evidence.recordUpstreamFailure(deployment: "sim-a", outcome: "error_5xx")
        incident.evidence.recordUpstreamFailure(deployment: "sim-a", outcome: "timeout")
        incident.add(status: .monitoring, body: "Back to normal.", at: start + 230)
        incident.add(status: .resolved, body: "Resolved.", at: start + 250)
        return incident
    }

    func testTheDraftHasTheTimelineImpactAndDeploymentsInOrder() {
        let draft = PostmortemDraft.write(resolvedIncident())
        XCTAssertTrue(draft.contains("From 2026-12-01 12:00:00 to 2026-12-01 12:04:10 UTC (4 min 10 s)"), draft)
        XCTAssertTrue(draft.contains("- Requests: 2 of 3 failed (67 %); 0 more were slow to start."), draft)
        XCTAssertTrue(draft.contains("- Callers affected: 2 "), draft)
        XCTAssertTrue(draft.contains("- At worst: 75 % of requests failed (12:00:30 UTC)"), draft)
        XCTAssertTrue(draft.contains("- Tokens lost: 12 completion tokens"), draft)
        XCTAssertTrue(draft.contains("- sim-a: 2 failed attempts (error 5xx 1, timeout 1), ejected 1 time."), draft)
        XCTAssertTrue(draft.contains("- sim-b: answered requests."), draft)
        let timeline = draft.split(separator: "\n").filter { $0.hasPrefix("- 12:") }.map(String.init)
        XCTAssertEqual(timeline, [
            "- 12:00:00 — First symptom: requests began to fail or slow down.",
            "- 12:00:20 — Detected: the incident opened automatically from client-visible error rates and latency.",
            "- 12:00:20 — Investigating: We are investigating.",
            "- 12:00:22 — Mitigation: failover moved requests to other deployments (1 before first byte).",
            "- 12:00:25 — Mitigation: outlier detection ejected sim-a.",
            "- 12:03:20 — Recovery: the last failed request.",
            "- 12:03:50 — Monitoring: Back to normal.",
            "- 12:04:10 — Resolved: Resolved.",
        ])
    }

    func testAnIncidentWithNoTrafficSaysSoRatherThanInventingFigures() {
        var incident = Incident(id: "i2", name: "Planned work overran", status: .investigating, impact: .minor, createdAt: 0,
                                components: [], automatic: false, published: true)
        incident.add(status: .resolved, body: "Done.", at: 60)
        let draft = PostmortemDraft.write(incident)
        XCTAssertTrue(draft.contains("- Requests: none were recorded while the incident lasted."), draft)
        XCTAssertTrue(draft.contains("Detected: an operator opened the incident."), draft)
        XCTAssertTrue(draft.contains("Start, as the operator reported it (no failed request was recorded)."), draft)
        XCTAssertFalse(draft.contains("First symptom"), draft)
        XCTAssertTrue(draft.contains("- None recorded."), draft)
        XCTAssertFalse(draft.contains("At worst"), draft)
    }

    func testUTCTimesAndDurations() {
        XCTAssertEqual(UTCTime.dateTime(0), "1970-01-01 00:00:00")
        XCTAssertEqual(UTCTime.dateTime(951_782_400), "2000-02-29 00:00:00")
        XCTAssertEqual(UTCTime.date(day: 20_423), "2025-12-01")
        XCTAssertEqual(UTCTime.duration(59.4), "59 s")
        XCTAssertEqual(UTCTime.duration(3_725), "1 h 2 min")
    }
}

final class SubscriberDispatchTests: XCTestCase {
    func subscriber(_ id: String, state: Subscriber.State = .active, components: [String] = [], approvedAt: Double? = 100) -> Subscriber {
        Subscriber(id: id, endpoint: "http://127.0.0.1:9/\(id)", tokenHash: "", state: state, components: components, createdAt: 50,
                   approvedAt: state == .active ? approvedAt : nil)
    }

    func incident(published: Bool = true, components: [String] = ["chat-default"]) -> Incident {
        var incident = Incident(id: "i1", name: "Errors", status: .investigating, impact: .major, createdAt: 90, components: components,
                                automatic: true, published: published)
        incident.add(status: .investigating, body: "before approval", at: 90)
        incident.add(status: .investigating, body: "after approval", at: 110)
        return incident
    }

    func testActiveSubscribersAreOwedEachUpdateAfterApprovalOnce() {
        var sent: Set<String> = []
        let subscribers = [subscriber("s1"), subscriber("pending", state: .pending)]
        var incident = incident()
        let first = SubscriberDispatch.due(subscribers: subscribers, incidents: [incident], maintenances: [], sent: sent.contains)
        XCTAssertEqual(first.map(\.event), [incident.updates[1].id], "nothing from before approval, nothing for a pending subscriber")
        sent.formUnion(first.map(\.key))
        XCTAssertEqual(SubscriberDispatch.due(subscribers: subscribers, incidents: [incident], maintenances: [], sent: sent.contains), [])
        incident.add(status: .resolved, body: "done", at: 120)
        incident.postmortemBody = "text"
        incident.postmortemPublishedAt = 130
        let next = SubscriberDispatch.due(subscribers: subscribers, incidents: [incident], maintenances: [], sent: sent.contains)
        XCTAssertEqual(next.map(\.event), [incident.updates[2].id, "postmortem"])
        XCTAssertTrue(next.allSatisfy { $0.subscriberID == "s1" && $0.subject == .incident })
    }

    func testDraftsOtherComponentsAndOldUpdatesAreNotOwed() {
        let maintenance = Maintenance(id: "m1", name: "Upgrade", message: "m", deployments: ["a"], components: ["chat-default"],
                                      scheduledFor: 200, scheduledUntil: 300, createdAt: 150)
        let followers = [subscriber("api", components: ["API"]), subscriber("model", components: ["chat-default"])]
        let due = SubscriberDispatch.due(subscribers: followers, incidents: [incident(published: false)], maintenances: [maintenance],
                                         sent: { _ in false })
        XCTAssertEqual(due.map(\.subscriberID), ["model"], "a draft is owed to nobody; the maintenance only to its component's follower")
        XCTAssertEqual(due.first?.subject, .maintenance)
        let late = SubscriberDispatch.due(subscribers: followers, incidents: [incident()], maintenances: [maintenance], since: 160,
                                          sent: { _ in false })
        XCTAssertEqual(late, [], "nothing older than the horizon")
    }
}

final class AlertRestoreTests: XCTestCase {
    func testAFiringAlertRestoredAfterARestartDoesNotFireAgainAndStillResolves() {
        let objective = ServiceLevelObjective(model: "chat", kind: .availability, target: 0.999)
        var before = SLOEvaluator(objectives: [objective], windowScale: 1.0 / 3600)
        for _ in 0..<50 { before.record(model: "chat", outcome: RequestOutcome(status: 500), at: 0.5) }
        let fired = before.evaluate(at: 0.6).flatMap(\.alerts).filter { $0.transition != nil }
        XCTAssertFalse(fired.isEmpty)
        let saved = before.alertStates.filter(\.value.isFiring)

        // A new process: same buckets, saved states put back.
        var after = SLOEvaluator(objectives: [objective], windowScale: 1.0 / 3600)
        for item in before.tracked {
            if let snapshot = before.snapshot(of: item.objective.name, changedSince: 0) { after.restore(slo: item.objective.name, from: snapshot) }
        }
        after.restoreAlertStates(saved)
        XCTAssertEqual(after.evaluate(at: 0.7).flatMap(\.alerts).compactMap(\.transition), [], "no second firing")
        var resolved: [BurnRateAlertState.Transition] = []
        var now = 0.7
        while now < 400 {
            after.record(model: "chat", outcome: RequestOutcome(status: 200), at: now)
            resolved += after.evaluate(at: now).flatMap(\.alerts).compactMap(\.transition)
            now += 0.5
        }
        XCTAssertEqual(Set(resolved.map { if case .resolved(let firedAt, _) = $0 { firedAt } else { -1 } }), [0.6],
                       "each restored alert resolves as the episode that fired before the restart")
    }
}
