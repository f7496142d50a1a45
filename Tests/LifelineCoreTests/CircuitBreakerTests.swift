import LifelineCore
import XCTest

final class CircuitBreakerTests: XCTestCase {
    var policy = OutlierDetectionPolicy()

    func testConsecutiveFailuresEjectThenHalfOpenTrialClosesTheBreaker() {
        var detector = OutlierDetector(count: 2, policy: policy)
        var now = 100.0
        for failure in 1...5 {
            XCTAssertTrue(detector.admit(0, at: now))
            XCTAssertEqual(detector.recordFailure(0, at: now), failure == 5, "failure \(failure)")
            now += 0.01
        }
        XCTAssertEqual(detector.breakers[0].state, .open(until: now - 0.01 + 10))
        XCTAssertFalse(detector.isAvailable(0, at: now + 9.9))
        // Ejection over: one trial goes through, a second waits for its outcome.
        now += 10
        XCTAssertTrue(detector.admit(0, at: now))
        XCTAssertFalse(detector.admit(0, at: now))
        detector.recordSuccess(0, at: now)
        XCTAssertEqual(detector.breakers[0].state, .closed)
        XCTAssertTrue(detector.isAvailable(0, at: now))
    }

    func testEachEjectionLastsTwiceAsLongUpToTheMaximum() {
        policy.consecutiveFailures = 1
        policy.maximumEjectionTime = 35
        var detector = OutlierDetector(count: 2, policy: policy)
        var now = 0.0
        var durations: [Double] = []
        for _ in 0..<4 {
            XCTAssertTrue(detector.admit(0, at: now))
            detector.recordFailure(0, at: now)
            guard case .open(let until) = detector.breakers[0].state else { return XCTFail("not open") }
            durations.append(until - now)
            now = until
        }
        XCTAssertEqual(durations, [10, 20, 35, 35])
    }

    func testFailureRateOverTheWindowEjectsWithoutConsecutiveFailures() {
        var detector = OutlierDetector(count: 2, policy: policy)
        var now = 0.0
        var ejected = false
        // Alternate success and failure: never 5 in a row, but 50 % over the window.
        for index in 0..<10 {
            _ = detector.admit(0, at: now)
            if index % 2 == 0 { detector.recordSuccess(0, at: now) } else { ejected = detector.recordFailure(0, at: now) }
            now += 0.5
        }
        XCTAssertTrue(ejected)
    }

    func testFailuresOutsideTheWindowAreForgotten() {
        var detector = OutlierDetector(count: 2, policy: policy)
        for index in 0..<9 {
            let now = Double(index) * 5
            _ = detector.admit(0, at: now)
            if index % 2 == 0 { detector.recordSuccess(0, at: now) } else { XCTAssertFalse(detector.recordFailure(0, at: now)) }
        }
    }

    func testTheCapKeepsAtLeastHalfAModelInRotation() {
        policy.consecutiveFailures = 1
        var detector = OutlierDetector(count: 2, policy: policy)
        XCTAssertTrue(detector.recordFailure(0, at: 0))
        XCTAssertFalse(detector.recordFailure(1, at: 0))
        XCTAssertTrue(detector.isAvailable(1, at: 0))
        var single = OutlierDetector(count: 1, policy: policy)
        XCTAssertFalse(single.recordFailure(0, at: 0))
    }

    func testAFailedTrialReopensAtOnce() {
        policy.consecutiveFailures = 1
        var detector = OutlierDetector(count: 2, policy: policy)
        detector.recordFailure(0, at: 0)
        XCTAssertTrue(detector.admit(0, at: 10))
        XCTAssertTrue(detector.recordFailure(0, at: 10))
        XCTAssertEqual(detector.breakers[0].state, .open(until: 30))
    }

    func testRetryAfterCoolsADeploymentWithoutEjectingIt() {
        var detector = OutlierDetector(count: 2, policy: policy)
        detector.recordRateLimited(0, at: 0, retryAfter: 3)
        XCTAssertFalse(detector.isAvailable(0, at: 2.9))
        XCTAssertTrue(detector.isAvailable(0, at: 3))
        XCTAssertEqual(detector.breakers[0].ejectionCount, 0)
    }

    func testAProbeSuccessClosesAnOpenBreakerEarly() {
        policy.consecutiveFailures = 1
        var detector = OutlierDetector(count: 2, policy: policy)
        detector.recordFailure(0, at: 0)
        XCTAssertFalse(detector.isAvailable(0, at: 1))
        detector.recordProbeSuccess(0, at: 1)
        XCTAssertTrue(detector.isAvailable(0, at: 1))
    }
}

final class RetryBudgetTests: XCTestCase {
    func testRetriesAreCappedAtTheRatioOfRequests() {
        var policy = RetryBudgetPolicy()
        policy.minimumPerSecond = 0
        var budget = RetryBudget(policy: policy)
        for _ in 0..<100 { budget.recordRequest(at: 5) }
        var granted = 0
        for _ in 0..<100 where budget.tryRetry(at: 5) { granted += 1 }
        XCTAssertEqual(granted, 20)
    }

    func testAQuietServiceStillGetsItsMinimumRetries() {
        var budget = RetryBudget(policy: RetryBudgetPolicy())
        budget.recordRequest(at: 0)
        var granted = 0
        for _ in 0..<100 where budget.tryRetry(at: 0) { granted += 1 }
        XCTAssertEqual(granted, 30)
    }

    func testTheBudgetRefillsAsTheWindowSlides() {
        var policy = RetryBudgetPolicy()
        policy.minimumPerSecond = 1
        var budget = RetryBudget(policy: policy)
        for _ in 0..<10 { XCTAssertTrue(budget.tryRetry(at: 0)) }
        XCTAssertFalse(budget.tryRetry(at: 9.9))
        XCTAssertTrue(budget.tryRetry(at: 10.0))
    }

    func testBackoffStaysWithinItsGrowingCap() {
        var random = SeededGenerator(seed: 9)
        let backoff = Backoff(base: 0.1, maximum: 0.5)
        for retry in 1...6 {
            let cap = min(0.5, 0.1 * Double(1 << (retry - 1)))
            for _ in 0..<100 {
                let delay = backoff.delay(beforeRetry: retry, using: &random)
                XCTAssertGreaterThanOrEqual(delay, 0)
                XCTAssertLessThanOrEqual(delay, cap)
            }
        }
    }
}

final class HedgeDelayTests: XCTestCase {
    func testTheDelayIsThePercentileOfRecentFirstTokensClamped() {
        var hedge = HedgeDelay(percentile: 0.9, minimum: 0.05, maximum: 2)
        XCTAssertEqual(hedge.delay, 2, "no hedge before enough samples")
        for index in 1...100 { hedge.record(Double(index) / 100) }
        XCTAssertEqual(hedge.delay, 0.9, accuracy: 1e-9)
        var fast = HedgeDelay(percentile: 0.9, minimum: 0.05, maximum: 2)
        for _ in 0..<50 { fast.record(0.001) }
        XCTAssertEqual(fast.delay, 0.05)
    }

    func testOnlyRecentSamplesCount() {
        var hedge = HedgeDelay(percentile: 0.5, minimum: 0, maximum: 10)
        for _ in 0..<256 { hedge.record(5) }
        for _ in 0..<256 { hedge.record(1) }
        XCTAssertEqual(hedge.delay, 1)
    }
}

final class RetryGrantTests: XCTestCase {
    private func target(failed: Bool = false, healthy: Bool = true, inFlight: Int = 10, limit: Int = 100) -> RetryTarget {
        RetryTarget(failedJustNow: failed, healthy: healthy, inFlight: inFlight, limit: limit)
    }

    func testABurstOfContinuationsOntoAHealthyDeploymentWithRoomIsNeverRefused() {
        var budget = RetryBudget(policy: RetryBudgetPolicy())
        // 500 streams cut at once, each continuing on the healthy deployment as it fills up.
        for index in 0..<500 {
            XCTAssertEqual(budget.grant(onto: target(inFlight: index, limit: 1024), at: 3), .free)
        }
        XCTAssertEqual(budget.available(at: 3), 30, "free retries spend nothing")
    }

    func testRetriesBackOntoTheFailedDeploymentSpendTheBudget() {
        var budget = RetryBudget(policy: RetryBudgetPolicy())
        var granted = 0
        for _ in 0..<100 where budget.grant(onto: target(failed: true), at: 0) == .budgeted { granted += 1 }
        XCTAssertEqual(granted, 30, "3 a second over the 10 s window")
        XCTAssertEqual(budget.grant(onto: target(failed: true), at: 0.5), .refused)
    }

    func testRetriesOntoFailingOrNearlyFullDeploymentsSpendTheBudget() {
        var policy = RetryBudgetPolicy()
        policy.minimumPerSecond = 0.1
        var budget = RetryBudget(policy: policy)
        XCTAssertEqual(budget.grant(onto: target(healthy: false), at: 0), .budgeted)
        XCTAssertEqual(budget.grant(onto: target(inFlight: 90, limit: 100), at: 0), .refused, "at 90 % of its limit")
        XCTAssertEqual(budget.grant(onto: target(inFlight: 89, limit: 100), at: 0), .free)
        XCTAssertEqual(budget.grant(onto: nil, at: 0), .refused)
        // The window moves on: the budget comes back.
        XCTAssertEqual(budget.grant(onto: target(healthy: false), at: 10.5), .budgeted)
    }

    func testTheBudgetGrowsWithTraffic() {
        var policy = RetryBudgetPolicy()
        policy.minimumPerSecond = 0
        var budget = RetryBudget(policy: policy)
        for _ in 0..<1_000 { budget.recordRequest(at: 1) }
        var granted = 0
        for _ in 0..<1_000 where budget.grant(onto: target(healthy: false), at: 2) == .budgeted { granted += 1 }
        XCTAssertEqual(granted, 200)
    }

    func testAHealthyBreakerIsOneWithoutRecentFailures() {
        let policy = OutlierDetectionPolicy()
        var breaker = CircuitBreaker(policy: policy)
        XCTAssertTrue(breaker.isHealthy(at: 0, policy: policy))
        breaker.recordFailure(at: 1, policy: policy, mayEject: true)
        XCTAssertFalse(breaker.isHealthy(at: 1, policy: policy), "its last outcome failed")
        breaker.recordSuccess(at: 2, policy: policy)
        XCTAssertTrue(breaker.isHealthy(at: 2, policy: policy), "one failure among few requests")
        for second in 3..<8 {
            breaker.recordFailure(at: Double(second), policy: policy, mayEject: false)
            breaker.recordSuccess(at: Double(second), policy: policy)
        }
        XCTAssertFalse(breaker.isHealthy(at: 8, policy: policy), "6 failures in 12: above half the ejection threshold")
        breaker.recordRateLimited(at: 50, retryAfter: 5)
        XCTAssertFalse(breaker.isHealthy(at: 51, policy: policy), "cooling off a 429")
        XCTAssertTrue(breaker.isHealthy(at: 56, policy: policy))
    }
}
