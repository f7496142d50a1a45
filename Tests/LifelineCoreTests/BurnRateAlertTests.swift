import LifelineCore
import XCTest

/// Multi-window multi-burn-rate alerting, with a manual clock (seconds passed in).
final class BurnRateAlertTests: XCTestCase {
    let availability = ServiceLevelObjective(model: "chat", kind: .availability, target: 0.999)

    func rule(_ name: String, _ evaluator: SLOEvaluator) -> BurnRateRule {
        evaluator.tracked[0].rules.first { $0.name == name }!
    }

    func alert(_ name: String, in statuses: [SLOEvaluator.Status]) -> SLOEvaluator.AlertStatus {
        statuses[0].alerts.first { $0.rule.name == name }!
    }

    /// Feeds `minutes` minutes of traffic with `bad` of every `perMinute` requests failing.
    func feed(_ evaluator: inout SLOEvaluator, minutes: Range<Int>, perMinute: Int, bad: Int, scale: Double = 1) {
        for minute in minutes {
            let at = (Double(minute) * 60 + 30) * scale
            evaluator.record(model: "chat", outcome: RequestOutcome(status: 200), count: perMinute - bad, at: at)
            if bad > 0 { evaluator.record(model: "chat", outcome: RequestOutcome(status: 503), count: bad, at: at) }
        }
    }

    func testTheStandardRulesAreTheWorkbooksForAThirtyDayPeriod() {
        let rules = BurnRateRule.standard(periodDays: 30)
        XCTAssertEqual(rules.map(\.name), ["burn-1h", "burn-6h", "burn-3d"])
        XCTAssertEqual(rules.map(\.severity), [.page, .page, .ticket])
        XCTAssertEqual(rules.map(\.longWindow), [3600, 21_600, 259_200])
        XCTAssertEqual(rules.map(\.shortWindow), [300, 1800, 21_600])
        XCTAssertEqual(rules[0].threshold, 14.4, accuracy: 1e-9)
        XCTAssertEqual(rules[1].threshold, 6, accuracy: 1e-9)
        XCTAssertEqual(rules[2].threshold, 1, accuracy: 1e-9)
        // A shorter period makes the same budget share a lower burn rate.
        XCTAssertEqual(BurnRateRule.standard(periodDays: 7)[0].threshold, 0.02 * 168, accuracy: 1e-9)
        let scaled = BurnRateRule.standard(periodDays: 30, scale: 1.0 / 720)
        XCTAssertEqual(scaled[0].longWindow, 5, accuracy: 1e-9)
        XCTAssertEqual(scaled[0].threshold, 14.4, accuracy: 1e-9)
    }

    func testEachWindowPairFiresAtItsThresholdAndNotJustBelow() {
        // Bad requests per 100,000 that make exactly the threshold's burn rate against 99.9 %.
        for (name, atThreshold) in [("burn-1h", 1440), ("burn-6h", 600), ("burn-3d", 100)] {
            for bad in [atThreshold, atThreshold - 1] {
                var evaluator = SLOEvaluator(objectives: [availability])
                let long = rule(name, evaluator).longWindow
                feed(&evaluator, minutes: 0..<Int(long / 60), perMinute: 100_000, bad: bad)
                let status = alert(name, in: evaluator.evaluate(at: long - 1))
                XCTAssertEqual(status.longBurn, Double(bad) / 100, accuracy: 1e-6)
                XCTAssertEqual(status.state.isFiring, bad == atThreshold, "\(name) with \(bad) bad per 100,000")
                XCTAssertEqual(status.transition, bad == atThreshold ? .fired(at: long - 1) : nil, name)
            }
        }
    }

    func testALongBurnThatHasStoppedDoesNotFire() {
        var evaluator = SLOEvaluator(objectives: [availability])
        // 40 bad minutes, then 20 clean: the hour burns at 667, the last five minutes at 0.
        feed(&evaluator, minutes: 0..<40, perMinute: 100, bad: 100)
        feed(&evaluator, minutes: 40..<60, perMinute: 100, bad: 0)
        let status = alert("burn-1h", in: evaluator.evaluate(at: 3599))
        XCTAssertGreaterThan(status.longBurn, 600)
        XCTAssertEqual(status.shortBurn, 0)
        XCTAssertFalse(status.state.isFiring)
    }

    func testAShortSpikeInACleanHourDoesNotFire() {
        var evaluator = SLOEvaluator(objectives: [availability])
        feed(&evaluator, minutes: 0..<59, perMinute: 1000, bad: 0)
        feed(&evaluator, minutes: 59..<60, perMinute: 1000, bad: 500)
        let status = alert("burn-1h", in: evaluator.evaluate(at: 3599))
        XCTAssertGreaterThan(status.shortBurn, 14.4)
        XCTAssertLessThan(status.longBurn, 14.4)
        XCTAssertFalse(status.state.isFiring)
    }

    func testAPageResolvesWhenBothWindowsStayBelowForTheShortWindow() {
        var evaluator = SLOEvaluator(objectives: [availability])
        var transitions: [(minute: Int, BurnRateAlertState.Transition)] = []
        for minute in 0..<180 {
            feed(&evaluator, minutes: minute..<(minute + 1), perMinute: 10, bad: minute < 60 ? 10 : 0)
            if let transition = alert("burn-1h", in: evaluator.evaluate(at: Double(minute) * 60 + 59)).transition {
                transitions.append((minute, transition))
            }
        }
        // Fired on the first minute of the outage. The hour is clean again at minute 119; five
        // quiet minutes later the page resolves, once.
        XCTAssertEqual(transitions.map(\.minute), [0, 124])
        XCTAssertEqual(transitions.map(\.1), [.fired(at: 59), .resolved(firedAt: 59, at: 124 * 60 + 59)])
    }

    func testABurnRateHoveringAtTheThresholdKeepsOneAlertOpen() {
        let rule = BurnRateRule.standard(periodDays: 30)[0]
        var state = BurnRateAlertState()
        var transitions: [BurnRateAlertState.Transition] = []
        var now = 0.0
        // An hour of burn rates alternating just above and just below 14.4, every 30 s, ending above.
        for step in 0...120 {
            let burn = step.isMultiple(of: 2) ? 14.5 : 14.3
            if let transition = state.advance(rule: rule, longBurn: burn, shortBurn: burn, at: now) { transitions.append(transition) }
            now += 30
        }
        XCTAssertEqual(transitions, [.fired(at: 0)])
        // Below for less than the short window: still firing.
        let quietFrom = now
        while now < quietFrom + 300 {
            XCTAssertNil(state.advance(rule: rule, longBurn: 14.3, shortBurn: 14.3, at: now))
            now += 30
        }
        XCTAssertEqual(state.advance(rule: rule, longBurn: 14.3, shortBurn: 14.3, at: now), .resolved(firedAt: 0, at: quietFrom + 300))
        // Exactly at the threshold fires again.
        XCTAssertEqual(state.advance(rule: rule, longBurn: 14.4, shortBurn: 14.4, at: now + 30), .fired(at: now + 30))
    }

    func testOneWindowStillHighKeepsAFiringAlertOpen() {
        let rule = BurnRateRule.standard(periodDays: 30)[0]
        var state = BurnRateAlertState()
        XCTAssertEqual(state.advance(rule: rule, longBurn: 20, shortBurn: 20, at: 0), .fired(at: 0))
        // The short window recovers, the long one does not: the alert stays open.
        for step in 1...20 { XCTAssertNil(state.advance(rule: rule, longBurn: 20, shortBurn: 0, at: Double(step) * 60)) }
        XCTAssertTrue(state.isFiring)
        XCTAssertNil(state.advance(rule: rule, longBurn: 10, shortBurn: 0, at: 1260))
        XCTAssertEqual(state.advance(rule: rule, longBurn: 10, shortBurn: 0, at: 1560), .resolved(firedAt: 0, at: 1560))
    }

    func testScaledWindowsFireAndResolveInSecondsWithFinerBuckets() {
        let scale = 1.0 / 720
        var evaluator = SLOEvaluator(objectives: [availability], windowScale: scale)
        XCTAssertEqual(evaluator.tracked[0].buckets.width, 60 * scale, accuracy: 1e-12)
        var firedAt: Double?
        var resolvedAt: Double?
        var now = 0.0
        // 20 requests a second: all failing for 3 s, then all good.
        while now < 20 {
            evaluator.record(model: "chat", outcome: RequestOutcome(status: now < 3 ? 500 : 200), at: now)
            if Int((now * 20).rounded()) % 5 == 0 {
                switch alert("burn-1h", in: evaluator.evaluate(at: now)).transition {
                case .fired(let at)?: firedAt = at
                case .resolved(_, let at)?: resolvedAt = at
                case nil: break
                }
            }
            now += 0.05
        }
        XCTAssertEqual(try XCTUnwrap(firedAt), 0, accuracy: 0.01)
        // The 5 s "hour" is clean about 5 s after recovery; the 0.42 s "five minutes" later it resolves.
        let resolved = try? XCTUnwrap(resolvedAt)
        XCTAssertNotNil(resolved)
        XCTAssertGreaterThanOrEqual(resolved ?? 0, 3 + 5 - 0.2)
        XCTAssertLessThanOrEqual(resolved ?? 99, 3 + 5 + 0.42 + 0.5)
    }

    func testRequestsAreJudgedPerSLI() {
        let latency = ServiceLevelObjective(model: "chat", kind: .latency(thresholdSeconds: 2), target: 0.99)
        XCTAssertEqual(availability.name, "chat:availability")
        XCTAssertEqual(latency.name, "chat:latency")
        XCTAssertEqual(availability.judge(RequestOutcome(status: 200)), true)
        XCTAssertEqual(availability.judge(RequestOutcome(status: 500)), false)
        XCTAssertEqual(availability.judge(RequestOutcome(status: 503)), false)
        XCTAssertNil(availability.judge(RequestOutcome(status: 400)), "a client's mistake is not the service's")
        XCTAssertNil(availability.judge(RequestOutcome(status: 429)), "a caller over its own limit")
        XCTAssertNil(availability.judge(RequestOutcome(status: 499)))
        XCTAssertEqual(availability.judge(RequestOutcome(status: 429, shedByService: true)), false, "shed by the service")
        XCTAssertEqual(latency.judge(RequestOutcome(status: 200, latencySeconds: 2)), true)
        XCTAssertEqual(latency.judge(RequestOutcome(status: 200, latencySeconds: 2.001)), false)
        XCTAssertNil(latency.judge(RequestOutcome(status: 503, latencySeconds: 0.1)))
    }

    func testBucketsForgetWhatLeftTheWindowAndWrapAround() {
        var buckets = SLIBuckets(width: 60, span: 300)
        buckets.record(good: false, at: 10)
        buckets.record(good: true, at: 70)
        XCTAssertEqual(buckets.counts(over: 120, at: 100).total, 2)
        XCTAssertEqual(buckets.counts(over: 60, at: 100).total, 1)
        XCTAssertEqual(buckets.errorRatio(over: 300, at: 100), 0.5)
        // Long after, the ring has wrapped: old slots do not leak into new windows.
        buckets.record(good: true, at: 10_000)
        XCTAssertEqual(buckets.counts(over: 300, at: 10_000).total, 1)
        XCTAssertEqual(buckets.errorRatio(over: 300, at: 20_000), 0, "no traffic burns no budget")
    }

    func testSnapshotsRestoreBurnRatesAndBudgetThroughTheStore() {
        let store = InMemorySLIBucketStore()
        var evaluator = SLOEvaluator(objectives: [availability])
        feed(&evaluator, minutes: 0..<30, perMinute: 100, bad: 2)
        store.save(slo: "chat:availability", evaluator.snapshot(of: "chat:availability", changedSince: 0)!)
        feed(&evaluator, minutes: 30..<60, perMinute: 100, bad: 4)
        store.save(slo: "chat:availability", evaluator.snapshot(of: "chat:availability", changedSince: 29 * 60)!)
        let before = evaluator.evaluate(at: 3599)

        var restored = SLOEvaluator(objectives: [availability])
        restored.restore(slo: "chat:availability", from: store.load(slo: "chat:availability")!)
        let after = restored.evaluate(at: 3599)
        XCTAssertEqual(after[0].burnRates, before[0].burnRates)
        XCTAssertEqual(after[0].budgetRemaining, before[0].budgetRemaining, accuracy: 1e-12)
        XCTAssertEqual(after[0].burnRates["1h"]!, 30, accuracy: 1e-9)
        // A snapshot taken with other bucket widths is not mapped onto these.
        var rescaled = SLOEvaluator(objectives: [availability], windowScale: 0.5)
        rescaled.restore(slo: "chat:availability", from: store.load(slo: "chat:availability")!)
        XCTAssertEqual(rescaled.evaluate(at: 1799)[0].burnRates["1h"], 0)
    }

    func testBudgetRemainingFollowsThePeriod() {
        var evaluator = SLOEvaluator(objectives: [availability])
        // Errors at half the budget's rate: half of the budget is spent.
        feed(&evaluator, minutes: 0..<600, perMinute: 2000, bad: 1)
        XCTAssertEqual(evaluator.evaluate(at: 36_000)[0].budgetRemaining, 0.5, accuracy: 1e-9)
    }
}
