import LifelineCore
import XCTest

final class AnswerCacheTests: XCTestCase {
    private func policy(ttl: Double = 60, stale: Double = 600, entries: Int = 100, bytes: Int = 1_000) -> AnswerCachePolicy {
        var policy = AnswerCachePolicy()
        policy.ttlSeconds = ttl
        policy.serveStaleOnErrorSeconds = stale
        policy.maxEntries = entries
        policy.maxBytes = bytes
        return policy
    }

    private func freshValue(_ lookup: AnswerCache<String>.Lookup) -> String? {
        if case .fresh(let value, _) = lookup { return value }
        return nil
    }

    func testAnEntryIsFreshWithinItsTTLThenStaleThenGone() {
        var cache = AnswerCache<String>(policy: policy(ttl: 60, stale: 600))
        cache.insert("k", model: "m", value: "answer", bytes: 6, now: 100)
        guard case .fresh("answer", let age) = cache.lookup("k", now: 160) else { return XCTFail("expected fresh at the TTL") }
        XCTAssertEqual(age, 60)
        guard case .stale("answer", let staleAge) = cache.lookup("k", now: 161) else { return XCTFail("expected stale past the TTL") }
        XCTAssertEqual(staleAge, 61)
        guard case .stale = cache.lookup("k", now: 760) else { return XCTFail("expected stale at the window's end") }
        guard case .absent = cache.lookup("k", now: 761) else { return XCTFail("expected gone past the window") }
        XCTAssertEqual(cache.count, 0)
        XCTAssertEqual(cache.bytes, 0)
    }

    func testTheLeastRecentlyUsedEntryIsEvictedFirst() {
        var cache = AnswerCache<String>(policy: policy(entries: 2))
        cache.insert("a", model: "m", value: "A", bytes: 1, now: 0)
        cache.insert("b", model: "m", value: "B", bytes: 1, now: 0)
        XCTAssertEqual(freshValue(cache.lookup("a", now: 1)), "A")
        XCTAssertEqual(cache.insert("c", model: "m", value: "C", bytes: 1, now: 2), 1)
        guard case .absent = cache.lookup("b", now: 3) else { return XCTFail("b was least recently used") }
        XCTAssertEqual(freshValue(cache.lookup("a", now: 3)), "A")
        XCTAssertEqual(freshValue(cache.lookup("c", now: 3)), "C")
        XCTAssertEqual(cache.evictions, 1)
    }

    func testTheByteBoundEvictsUntilItHoldsAndRefusesAnEntryLargerThanIt() {
        var cache = AnswerCache<String>(policy: policy(entries: 100, bytes: 10))
        cache.insert("a", model: "m", value: "A", bytes: 4, now: 0)
        cache.insert("b", model: "m", value: "B", bytes: 4, now: 0)
        XCTAssertEqual(cache.insert("c", model: "m", value: "C", bytes: 8, now: 0), 2)
        XCTAssertEqual(cache.count, 1)
        XCTAssertEqual(cache.bytes, 8)
        XCTAssertEqual(cache.insert("huge", model: "m", value: "H", bytes: 11, now: 0), 0)
        guard case .absent = cache.lookup("huge", now: 0) else { return XCTFail("larger than max_bytes is not kept") }
        XCTAssertEqual(cache.bytes, 8)
    }

    func testReplacingAnEntryCountsItsBytesOnce() {
        var cache = AnswerCache<String>(policy: policy())
        cache.insert("a", model: "m", value: "old", bytes: 3, now: 0)
        cache.insert("a", model: "m", value: "newer", bytes: 5, now: 10)
        XCTAssertEqual(cache.count, 1)
        XCTAssertEqual(cache.bytes, 5)
        guard case .fresh("newer", 0) = cache.lookup("a", now: 10) else { return XCTFail("expected the new value, age from its store") }
    }

    func testPurgeByModelKeepsTheOtherModels() {
        var cache = AnswerCache<String>(policy: policy())
        cache.insert("a", model: "m1", value: "A", bytes: 1, now: 0)
        cache.insert("b", model: "m2", value: "B", bytes: 2, now: 0)
        cache.insert("c", model: "m1", value: "C", bytes: 3, now: 0)
        XCTAssertEqual(cache.purge(model: "m1"), 2)
        XCTAssertEqual(cache.count, 1)
        XCTAssertEqual(cache.bytes, 2)
        XCTAssertEqual(freshValue(cache.lookup("b", now: 0)), "B")
        XCTAssertEqual(cache.purge(), 1)
        XCTAssertEqual(cache.count, 0)
        // Slots freed by a purge are reused and the recency list still works.
        cache.insert("d", model: "m1", value: "D", bytes: 1, now: 0)
        XCTAssertEqual(freshValue(cache.lookup("d", now: 0)), "D")
    }

    func testRemoveExpiredDropsOnlyEntriesPastTheStaleWindow() {
        var cache = AnswerCache<String>(policy: policy(ttl: 10, stale: 10))
        cache.insert("old", model: "m", value: "O", bytes: 1, now: 0)
        cache.insert("new", model: "m", value: "N", bytes: 1, now: 15)
        XCTAssertEqual(cache.removeExpired(now: 21, limit: 10), 1)
        XCTAssertEqual(cache.count, 1)
        guard case .stale("N", _) = cache.lookup("new", now: 26) else { return XCTFail("the newer entry stays, stale") }
        // Only the `limit` least recently used are examined.
        cache.insert("a", model: "m", value: "A", bytes: 1, now: 30)
        cache.insert("b", model: "m", value: "B", bytes: 1, now: 30)
        XCTAssertEqual(cache.removeExpired(now: 36, limit: 1), 1)
        XCTAssertEqual(cache.count, 2)
        XCTAssertEqual(cache.removeExpired(now: 51, limit: 1), 1)
        XCTAssertEqual(cache.removeExpired(now: 51, limit: 5), 1)
        XCTAssertEqual(cache.count, 0)
    }

    func testAShrunkPolicyEvictsAtOnce() {
        var cache = AnswerCache<String>(policy: policy(entries: 10))
        for index in 0..<10 { cache.insert("k\(index)", model: "m", value: "v", bytes: 1, now: 0) }
        XCTAssertEqual(cache.update(policy: policy(entries: 3)), 7)
        XCTAssertEqual(cache.count, 3)
        XCTAssertEqual(freshValue(cache.lookup("k9", now: 0)), "v")
    }

    func testOneHundredThousandDistinctInsertsStayWithinBothBounds() {
        var cache = AnswerCache<String>(policy: policy(entries: 1_000, bytes: 50_000))
        var evicted = 0
        for index in 0..<100_000 {
            let value = "answer \(index)"
            evicted += cache.insert("key-\(index)", model: "m", value: value, bytes: value.utf8.count + 64, now: Double(index) / 1_000)
            XCTAssertLessThanOrEqual(cache.count, 1_000)
            XCTAssertLessThanOrEqual(cache.bytes, 50_000)
        }
        XCTAssertEqual(evicted, 100_000 - cache.count)
        XCTAssertEqual(cache.evictions, evicted)
        // The newest survive, the oldest are gone.
        XCTAssertEqual(freshValue(cache.lookup("key-99999", now: 100)), "answer 99999")
        guard case .absent = cache.lookup("key-0", now: 100) else { return XCTFail("the oldest entry was evicted") }
    }

    func testSampledRequestsWithoutASeedBypassUnlessConfigured() {
        var policy = AnswerCachePolicy()
        XCTAssertNil(policy.bypassReason(temperature: 0, seed: nil, choiceCount: 1, logprobs: false))
        XCTAssertNil(policy.bypassReason(temperature: 0.7, seed: 42, choiceCount: 1, logprobs: false))
        XCTAssertEqual(policy.bypassReason(temperature: 0.7, seed: nil, choiceCount: 1, logprobs: false), "sampled without a seed")
        // Absent, both APIs sample at 1.
        XCTAssertEqual(policy.bypassReason(temperature: nil, seed: nil, choiceCount: 1, logprobs: false), "sampled without a seed")
        XCTAssertEqual(policy.bypassReason(temperature: 0, seed: nil, choiceCount: 2, logprobs: false), "n above 1")
        XCTAssertEqual(policy.bypassReason(temperature: 0, seed: nil, choiceCount: 1, logprobs: true), "logprobs")
        policy.cacheSampled = true
        XCTAssertNil(policy.bypassReason(temperature: 0.7, seed: nil, choiceCount: 1, logprobs: false))
        XCTAssertEqual(policy.bypassReason(temperature: 0.7, seed: nil, choiceCount: 3, logprobs: false), "n above 1")
    }
}
