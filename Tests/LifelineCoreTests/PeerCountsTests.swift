import LifelineCore
import XCTest

/// Several instances' counts judged together: each instance's share of a bucket is replaced,
/// never added twice, and the whole service's figures drive SLOs and component statuses.
final class PeerCountsTests: XCTestCase {
    func testAnInstancesNewerCountReplacesItsOlderOneAndInstancesAddUp() {
        var peers = PeerCounts()
        peers.take(instance: "b", series: "s", width: 60, index: 5, good: 1, total: 2, keepUntil: 1_000)
        peers.take(instance: "b", series: "s", width: 60, index: 5, good: 3, total: 4, keepUntil: 1_000)
        peers.take(instance: "c", series: "s", width: 60, index: 5, good: 10, total: 10, keepUntil: 1_000)
        peers.take(instance: "c", series: "s", width: 30, index: 5, good: 7, total: 7, keepUntil: 1_000)
        XCTAssertEqual(peers.buckets(series: "s", width: 60), [SLIBucket(index: 5, good: 13, total: 14)])
        XCTAssertEqual(peers.buckets(series: "s", width: 30), [SLIBucket(index: 5, good: 7, total: 7)], "another width is another ring")
        XCTAssertEqual(peers.buckets(series: "other", width: 60), [])
        peers.forget(before: 1_001)
        XCTAssertTrue(peers.isEmpty)
        XCTAssertEqual(peers.buckets(series: "s", width: 60), [])
    }

    func testARingWithPeersCountsTheirBucketsAndSkipsOnesTooOldForIt() {
        var ring = SLIBuckets(width: 10, span: 30)
        ring.record(good: true, at: 95)
        let merged = ring.adding([SLIBucket(index: 9, good: 0, total: 3), SLIBucket(index: 1, good: 5, total: 5)])
        XCTAssertEqual(merged.counts(over: 30, at: 95).good, 1)
        XCTAssertEqual(merged.counts(over: 30, at: 95).total, 4, "the old bucket is outside the window and left out")
        XCTAssertEqual(ring.counts(over: 30, at: 95).total, 1, "the local ring itself is unchanged")
    }

    func testTheStatusBoardJudgesEveryInstancesTraffic() {
        var thresholds = StatusThresholds()
        thresholds.windowSeconds = 10
        thresholds.minimumRequests = 4
        var here = StatusBoard(models: ["chat"], thresholds: thresholds)
        var there = StatusBoard(models: ["chat"], thresholds: thresholds)
        for _ in 0..<10 { here.record(route: "chat_completions", model: "chat", outcome: RequestOutcome(status: 200), at: 100) }
        for _ in 0..<10 { there.record(route: "chat_completions", model: "chat", outcome: RequestOutcome(status: 503), at: 100) }
        var peers = PeerCounts()
        for shared in there.changedBuckets(since: 90) {
            peers.take(instance: "there", series: shared.series, width: shared.width, index: shared.bucket.index, good: shared.bucket.good,
                       total: shared.bucket.total, keepUntil: shared.keepUntil)
        }
        XCTAssertEqual(here.status(of: "chat", at: 101), .operational, "alone, this instance saw no failure")
        let whole = here.figures(of: "chat", at: 101, peers: peers)
        XCTAssertEqual(whole.requests, 20)
        XCTAssertEqual(whole.errorShare, 0.5, accuracy: 1e-9)
        XCTAssertEqual(here.status(of: "chat", at: 101, peers: peers), .majorOutage)
        XCTAssertTrue(there.changedBuckets(since: 90).allSatisfy { $0.keepUntil >= 100 + thresholds.windowSeconds - 1 })
    }

    func testAnSLOBurnsOnTheWholeServicesErrors() {
        let objective = ServiceLevelObjective(model: "chat", kind: .availability, target: 0.99)
        var here = SLOEvaluator(objectives: [objective])
        var there = SLOEvaluator(objectives: [objective])
        here.record(model: "chat", outcome: RequestOutcome(status: 200), count: 900, at: 1_000)
        there.record(model: "chat", outcome: RequestOutcome(status: 503), count: 100, at: 1_000)
        var peers = PeerCounts()
        for shared in there.changedBuckets(since: 0) {
            peers.take(instance: "there", series: shared.series, width: shared.width, index: shared.bucket.index, good: shared.bucket.good,
                       total: shared.bucket.total, keepUntil: shared.keepUntil)
        }
        var alone = here
        let local = alone.evaluate(at: 1_001)[0]
        let whole = here.evaluate(at: 1_001, peers: peers)[0]
        XCTAssertEqual(local.burnRates["5m"], 0)
        XCTAssertEqual(whole.burnRates["5m"] ?? 0, 10, accuracy: 1e-9, "10 % errors against a 1 % budget")
        XCTAssertTrue(whole.alerts.contains { $0.transition != nil }, "the page fires on the whole service's burn")
        XCTAssertLessThan(whole.budgetRemaining, 0)
    }
}
