import LifelineCore
import XCTest

final class HoltWintersTests: XCTestCase {
    /// 100 + 2 per hour of trend, a daily wave of ±20, and a little deterministic noise.
    func series(hours: Int) -> [Double] {
        var random = SeededGenerator(seed: 7)
        return (0..<hours).map { hour in
            100 + 2 * Double(hour) + 20 * sin(Double(hour % 24) / 24 * 2 * .pi) + Double.random(in: -1...1, using: &random)
        }
    }

    func testASeasonalTrendIsForecastWithinItsBand() throws {
        let history = series(hours: 24 * 7)
        let model = try XCTUnwrap(HoltWinters.fit(history))
        XCTAssertEqual(model.seasonLength, 24)
        for ahead in [1, 12, 24] {
            let truth = 100 + 2 * Double(history.count - 1 + ahead) + 20 * sin(Double((history.count - 1 + ahead) % 24) / 24 * 2 * .pi)
            let forecast = model.forecast(ahead)
            XCTAssertEqual(forecast.mean, truth, accuracy: 6, "\(ahead) h ahead")
            XCTAssertLessThanOrEqual(forecast.low, truth)
            XCTAssertGreaterThanOrEqual(forecast.high, truth)
        }
        XCTAssertGreaterThan(model.forecast(24).high - model.forecast(24).low, model.forecast(1).high - model.forecast(1).low,
                             "the band widens with the horizon")
    }

    func testItSaysWhenAGrowingLoadReachesALimit() throws {
        let history = series(hours: 24 * 7)
        let model = try XCTUnwrap(HoltWinters.fit(history))
        // Trend 2/h from about 434 now: 600 is reached around 80 h ahead, earlier at the wave's peak.
        let reach = model.firstReaching(600, horizon: 720)
        let mean = try XCTUnwrap(reach.mean)
        XCTAssertGreaterThan(mean, 50)
        XCTAssertLessThan(mean, 100)
        XCTAssertLessThanOrEqual(try XCTUnwrap(reach.earliest), mean)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(reach.latest), mean)
        XCTAssertEqual(model.firstReaching(1e9, horizon: 720).mean, nil, "not within the horizon")
    }

    func testShortHistoryFallsBackToATrendOrDeclines() {
        XCTAssertNil(HoltWinters.fit([1, 2, 3]), "too few points")
        let trend = HoltWinters.fit((0..<10).map { Double($0) * 3 })
        XCTAssertEqual(trend?.seasonLength, 0, "under two days: trend only")
        XCTAssertEqual(trend?.forecast(5).mean ?? 0, 27 + 15, accuracy: 1)
    }
}

final class CapacityPlannerTests: XCTestCase {
    let now = 1_800_003_600.0 // on an hour boundary

    func minutes(_ scope: String, count: Int, requests: Int, tokens: Int = 100, latency: Double = 0.5, peak: Int = 2,
                 rateLimited: Int = 0) -> [TrafficMinute]
    {
        (1...count).map { back in
            TrafficMinute(scope: scope, minute: Int(now) - back * 60, requests: requests, tokens: tokens * requests,
                          busySeconds: latency * Double(requests), peakConcurrency: peak, rateLimited: rateLimited)
        }
    }

    func testHeadroomComesFromConfiguredAndLearnedLimits() throws {
        let limits = ["chat": [
            DeploymentLimits(name: "a", model: "chat", configuredRequestsPerMinute: 120, learnedConcurrency: 8),
            DeploymentLimits(name: "b", model: "chat", learnedConcurrency: 4),
        ]]
        let history = minutes("model:chat", count: 10, requests: 90, peak: 6) + minutes("deployment:a", count: 10, requests: 60, peak: 4)
            + minutes("deployment:b", count: 10, requests: 30, latency: 1, peak: 2)
        let report = try XCTUnwrap(CapacityPlanner.plan(models: limits, history: history, now: now).first)
        XCTAssertEqual(report.current.requestsPerMinute, 90)
        XCTAssertEqual(report.peak.requestsPerMinute, 90)
        // a: min(120 configured, 8 × 60 / 0.5 = 960 learned) = 120; b: 4 × 60 / 1 = 240.
        XCTAssertEqual(report.deployments.map(\.capacity.requestsPerMinute), [120, 240])
        XCTAssertEqual(report.capacity.requestsPerMinute, 360)
        XCTAssertEqual(report.capacity.concurrency, 12)
        // Concurrency binds: peak 6 of 12 → 50 % headroom; requests 90 of 360 would be 75 %.
        XCTAssertEqual(report.bindingDimension, "concurrency")
        XCTAssertEqual(try XCTUnwrap(report.headroom), 0.5, accuracy: 1e-9)
        XCTAssertEqual(report.survivesLargestFailure, false, "6 in flight would not fit in b's 4")
        XCTAssertTrue(report.warnings.contains { $0.hasPrefix("Redundancy is gone: chat's peak would not fit if a failed") }, "\(report.warnings)")
        XCTAssertEqual(report.forecast.method, "none", "ten minutes are not enough to forecast")
    }

    func testASingleDeploymentAndUpstream429sAreWarnedAbout() throws {
        let limits = ["solo": [DeploymentLimits(name: "only", model: "solo", learnedConcurrency: 10)]]
        let history = minutes("model:solo", count: 5, requests: 10) + minutes("deployment:only", count: 5, requests: 10, rateLimited: 1)
        let report = try XCTUnwrap(CapacityPlanner.plan(models: limits, history: history, now: now).first)
        XCTAssertEqual(report.survivesLargestFailure, false)
        XCTAssertTrue(report.warnings.contains("solo has one deployment: no redundancy."))
        XCTAssertEqual(report.deployments[0].rateLimitedShare, 5.0 / 55, accuracy: 1e-9)
        XCTAssertTrue(report.warnings.contains { $0.contains("with 429") })
    }

    func testAWeekOfGrowingTrafficForecastsWhenCapacityRunsOut() throws {
        // Hour h carries 10 + h/4 requests a minute with a daily wave; capacity is 120 a minute.
        var history: [TrafficMinute] = []
        let hours = 24 * 7
        for hour in 0..<hours {
            let rate = 10 + Double(hour) / 4 + 5 * sin(Double(hour % 24) / 24 * 2 * .pi)
            let start = Int(now) - (hours - hour) * 3600
            history.append(TrafficMinute(scope: "model:grow", minute: start, requests: Int((rate * 60).rounded())))
        }
        let limits = ["grow": [DeploymentLimits(name: "g1", model: "grow", configuredRequestsPerMinute: 60, learnedConcurrency: 4),
                               DeploymentLimits(name: "g2", model: "grow", configuredRequestsPerMinute: 60, learnedConcurrency: 4)]]
        // The deployments need traffic for their learned limits; configured ones bind regardless.
        history += minutes("deployment:g1", count: 1, requests: 1) + minutes("deployment:g2", count: 1, requests: 1)
        let report = try XCTUnwrap(CapacityPlanner.plan(models: limits, history: history, now: now).first)
        XCTAssertEqual(report.forecast.method, "holt_winters")
        XCTAssertEqual(report.forecast.historyHours, hours)
        // Now about 52 a minute, growing 0.25 an hour: 120 is about 270 h (11 days) away.
        let hoursLeft = try XCTUnwrap(report.forecast.hoursToCapacity)
        XCTAssertGreaterThan(hoursLeft, 200)
        XCTAssertLessThan(hoursLeft, 330)
        XCTAssertLessThanOrEqual(try XCTUnwrap(report.forecast.earliestHours), hoursLeft)
    }
}
