import LifelineCore
import XCTest

final class CallerLimiterTests: XCTestCase {
    func testRequestsPerMinuteRefuseWithTheWaitUntilTheNextSlot() {
        var limiter = CallerLimiter(policy: CallerLimitPolicy(requestsPerMinute: 2), now: 0)
        XCTAssertNil(limiter.admit(estimatedTokens: 1, at: 0))
        XCTAssertNil(limiter.admit(estimatedTokens: 1, at: 0))
        XCTAssertEqual(limiter.admit(estimatedTokens: 1, at: 0), .requestsPerMinute(retryAfter: 30))
        XCTAssertNil(limiter.admit(estimatedTokens: 1, at: 30))
        XCTAssertEqual(limiter.snapshot(at: 30).requestsRemaining, 0)
    }

    func testTokenReservationsAreReconciledWithActualUse() {
        var limiter = CallerLimiter(policy: CallerLimitPolicy(tokensPerMinute: 1000), now: 0)
        XCTAssertNil(limiter.admit(estimatedTokens: 800, at: 0))
        XCTAssertNotNil(limiter.admit(estimatedTokens: 300, at: 0))
        // The first request used only 100: 700 come back.
        limiter.complete(estimatedTokens: 800, actualTokens: 100, at: 0)
        XCTAssertEqual(limiter.snapshot(at: 0).tokensRemaining, 900)
        XCTAssertNil(limiter.admit(estimatedTokens: 300, at: 0))
        // Using more than reserved takes the difference too.
        limiter.complete(estimatedTokens: 300, actualTokens: 900, at: 0)
        XCTAssertEqual(limiter.snapshot(at: 0).tokensRemaining, 0)
        XCTAssertEqual(limiter.budgetUsed, 1000)
    }

    func testConcurrencyAndBudgetRefuse() {
        var limiter = CallerLimiter(policy: CallerLimitPolicy(maxConcurrency: 1, budgetTokens: 50), now: 0)
        XCTAssertNil(limiter.admit(estimatedTokens: 10, at: 0))
        XCTAssertEqual(limiter.admit(estimatedTokens: 10, at: 0), .concurrency)
        limiter.complete(estimatedTokens: 10, actualTokens: 60, at: 1)
        XCTAssertEqual(limiter.admit(estimatedTokens: 10, at: 1), .budget)
    }

    func testARefusalTakesNothing() {
        var limiter = CallerLimiter(policy: CallerLimitPolicy(requestsPerMinute: 10, tokensPerMinute: 100), now: 0)
        XCTAssertNotNil(limiter.admit(estimatedTokens: 150, at: 0).map { _ in () } ?? limiter.admit(estimatedTokens: 1, at: 0))
        XCTAssertEqual(limiter.snapshot(at: 0).requestsRemaining, 9)
    }

    func testPriorityHeaderLowersButNeverRaises() {
        XCTAssertEqual(Priority.normal.lowered(by: .critical), .normal)
        XCTAssertEqual(Priority.high.lowered(by: .low), .low)
        XCTAssertEqual(Priority.high.lowered(by: nil), .high)
    }
}

final class GradientConcurrencyLimitTests: XCTestCase {
    /// A limit with the default policy but for where it starts.
    private func limit(startingAt initial: Double) -> GradientConcurrencyLimit {
        var policy = ConcurrencyLimitPolicy()
        policy.initialLimit = initial
        return GradientConcurrencyLimit(policy: policy)
    }

    func testTheLimitGrowsWhileLatencyStaysFlatAndShrinksWhenQueueingAppears() {
        var limit = limit(startingAt: 20)
        for _ in 0..<200 { limit.record(latency: 0.1, inFlight: limit.slots) }
        let grown = limit.limit
        XCTAssertGreaterThan(grown, 100)
        // The upstream serves 50 at once and queues the rest.
        for _ in 0..<40 { limit.record(latency: 0.1 + Double(max(0, limit.slots - 50)) * 0.01, inFlight: limit.slots) }
        XCTAssertLessThan(limit.limit, grown / 4)
        XCTAssertGreaterThanOrEqual(limit.limit, limit.policy.minimumLimit)
    }

    func testAnIdleLimitDoesNotGrow() {
        var limit = GradientConcurrencyLimit(policy: ConcurrencyLimitPolicy())
        for _ in 0..<100 { limit.record(latency: 0.1, inFlight: 1) }
        XCTAssertEqual(limit.limit, ConcurrencyLimitPolicy().initialLimit)
    }

    func testStableTimeToFirstTokenKeepsTheLimitWhateverTheStreamsLast() {
        // Streams of 1 to 60 s with a steady 300 ms first token: only the first token is a
        // sample, so however long each stream lasts, the limit never falls.
        var limit = GradientConcurrencyLimit(policy: ConcurrencyLimitPolicy())
        var generator = SeededGenerator(seed: 7)
        var lowest = limit.limit
        for _ in 0..<5_000 {
            let ttft = 0.3 + Double.random(in: -0.06...0.06, using: &generator)
            limit.record(latency: ttft, inFlight: Int(limit.limit))
            lowest = min(lowest, limit.limit)
        }
        XCTAssertGreaterThanOrEqual(lowest, ConcurrencyLimitPolicy().initialLimit)
    }

    func testOccasionalSlowFirstTokensAreNoise() {
        var limit = GradientConcurrencyLimit(policy: ConcurrencyLimitPolicy())
        for index in 0..<2_000 {
            // One in twenty first tokens is five times slower (a GC pause, a busy core).
            limit.record(latency: index % 20 == 0 ? 1.5 : 0.3, inFlight: Int(limit.limit))
        }
        XCTAssertGreaterThanOrEqual(limit.limit, ConcurrencyLimitPolicy().initialLimit)
    }

    func testAHostShortOfCPUWithASlowerMedianAndALongTailKeepsTheLimit() {
        // 1,000 streams on a busy host: first tokens at 1.5–1.9× their quiet value, one in ten
        // at six times. The median stays under the tolerance and the tail does not move it, so
        // no stream is refused for it.
        var limit = GradientConcurrencyLimit(policy: ConcurrencyLimitPolicy())
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<300 { limit.record(latency: 0.3, inFlight: 600) }
        let before = limit.limit
        var lowest = before
        for index in 0..<5_000 {
            let ttft = index % 10 == 0 ? 1.8 : 0.3 * Double.random(in: 1.5...1.9, using: &generator)
            limit.record(latency: ttft, inFlight: min(1_000, limit.slots))
            lowest = min(lowest, limit.limit)
        }
        XCTAssertGreaterThanOrEqual(lowest, before)
    }

    func testFirstTokensLateBecauseTheGatewayItselfRunsLateAreNotQueueingUpstream() {
        // 1,000 streams on a host that cannot keep up: the gateway reads first tokens seconds
        // late because its own event loops run late, not because the upstream queues.
        var limit = GradientConcurrencyLimit(policy: ConcurrencyLimitPolicy())
        for _ in 0..<300 { limit.record(latency: 0.3, inFlight: 600) }
        let before = limit.limit
        for _ in 0..<2_000 { limit.record(latency: 6.0, inFlight: min(1_000, limit.slots), hostLag: 0.5) }
        XCTAssertGreaterThanOrEqual(limit.limit, before)
        // Once the gateway keeps up again, the quiet first tokens it reads are the baseline still;
        // the same slow first tokens read on time are queueing, and the limit shrinks.
        for _ in 0..<60 { limit.record(latency: 6.0, inFlight: limit.slots, hostLag: 0.001) }
        XCTAssertLessThan(limit.limit, before / 2)
    }

    func testFirstTokensLateWhileTheHostIsShortOfCPUAreNotQueueingUpstream() {
        // 1,000 streams on a host whose CPUs are all busy: every event loop runs on time, but the
        // gateway and an upstream beside it get to each first token seconds late.
        var limit = GradientConcurrencyLimit(policy: ConcurrencyLimitPolicy())
        for _ in 0..<300 { limit.record(latency: 0.3, inFlight: 600) }
        let before = limit.limit
        for _ in 0..<2_000 { limit.record(latency: 6.0, inFlight: min(1_000, limit.slots), hostLag: 0.001, hostBusy: 0.95) }
        XCTAssertGreaterThanOrEqual(limit.limit, before)
        // With CPU to spare, the same slow first tokens are queueing, and the limit shrinks.
        for _ in 0..<60 { limit.record(latency: 6.0, inFlight: limit.slots, hostLag: 0.001, hostBusy: 0.5) }
        XCTAssertLessThan(limit.limit, before / 2)
    }

    func testQuickFirstTokensOnAShortHostStillGrowTheLimitAndLateOnesLeaveIt() {
        // A burst of streams keeps the host's CPUs busy. The upstream still answers at its quiet
        // pace with every slot in use: that is news it serves this concurrency, and the limit grows.
        var limit = GradientConcurrencyLimit(policy: ConcurrencyLimitPolicy())
        for _ in 0..<300 { limit.record(latency: 0.3, inFlight: 600) }
        let before = limit.limit
        let baseline = limit.baseline
        for _ in 0..<200 { limit.record(latency: 0.31, inFlight: limit.slots, hostBusy: 0.98, contended: true) }
        XCTAssertGreaterThan(limit.limit, before * 1.5)
        XCTAssertEqual(limit.baseline, baseline)
        // Growth needs use there too: at a third of the limit in flight it stops.
        let grown = limit.limit
        for _ in 0..<200 { limit.record(latency: 0.3, inFlight: Int(grown / 3), hostLag: 0.5) }
        XCTAssertEqual(limit.limit, grown)
        // Late first tokens on a short host neither grow nor shrink it, and stay out of the window.
        for _ in 0..<200 { limit.record(latency: 3.0, inFlight: limit.slots, hostBusy: 0.98, contended: true) }
        XCTAssertEqual(limit.limit, grown)
        XCTAssertEqual(limit.baseline, baseline)
        // A burst that finds the host short from its first answer: that answer becomes the
        // baseline (a short host only makes answers later, so it is at worst too high), and the
        // quick ones after it grow the limit.
        var fresh = GradientConcurrencyLimit(policy: ConcurrencyLimitPolicy())
        fresh.record(latency: 0.35, inFlight: fresh.slots, hostBusy: 0.98, contended: true)
        XCTAssertEqual(fresh.baseline, 0.35)
        XCTAssertEqual(fresh.limit, ConcurrencyLimitPolicy().initialLimit)
        for _ in 0..<100 { fresh.record(latency: 0.3, inFlight: fresh.slots, hostBusy: 0.98, contended: true) }
        XCTAssertGreaterThan(fresh.limit, ConcurrencyLimitPolicy().initialLimit * 1.4)
        // The first quiet answer replaces that baseline.
        fresh.record(latency: 0.3, inFlight: 10)
        XCTAssertEqual(fresh.baseline, 0.3)
    }

    func testTheHostsCPUShareIsReadFromProcStat() throws {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\nintr 1 2 3\n"
        let counters = try XCTUnwrap(HostCPUWindow.counters(fromProcStat: stat[...]))
        XCTAssertEqual(counters.busy, 150)
        XCTAssertEqual(counters.total, 1_000)
        // Anything else is no reading, never a crash.
        for hostile in ["", "cpu0 1 2 3 4\n", "cpu  1 2 x 4\n", "cpu  1 2\n", "cpu  -1 2 3 4\n",
                        "cpu  18446744073709551615 18446744073709551615 0 0\n", "intr 1\ncpu  1 2 3 4\n"] {
            XCTAssertNil(HostCPUWindow.counters(fromProcStat: hostile[...]), hostile)
        }
        var window = HostCPUWindow(size: 3)
        XCTAssertEqual(window.busyShare, 0, "no share from one reading")
        window.record(busy: 150, total: 1_000)
        window.record(busy: 240, total: 1_100)
        XCTAssertEqual(window.busyShare, 0.9, accuracy: 1e-9)
        window.record(busy: 250, total: 1_200)
        window.record(busy: 260, total: 1_300)
        XCTAssertEqual(window.busyShare, 0.1, accuracy: 1e-9, "the oldest reading aged out")
        window.record(busy: 10, total: 100)
        XCTAssertEqual(window.busyShare, 0, "counters that went back start again")
    }

    func testACgroupHeldBackByItsCPUQuotaIsFoundAndCounted() throws {
        // cgroup v2 in a container (its namespace's root), and on a host.
        XCTAssertEqual(CgroupThrottling.cpuStatPaths(procSelfCgroup: "0::/\n"[...]), ["/sys/fs/cgroup/cpu.stat"])
        XCTAssertEqual(CgroupThrottling.cpuStatPaths(procSelfCgroup: "0::/kubepods.slice/pod1.scope\n"[...]),
                       ["/sys/fs/cgroup/kubepods.slice/pod1.scope/cpu.stat"])
        // cgroup v1, the cpu controller alone or beside cpuacct.
        let v1 = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n"
        XCTAssertEqual(CgroupThrottling.cpuStatPaths(procSelfCgroup: v1[...]),
                       ["/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.stat", "/sys/fs/cgroup/cpu/docker/abc/cpu.stat"])
        // Nothing that climbs out of the cgroup tree, nothing unlike an entry.
        XCTAssertEqual(CgroupThrottling.cpuStatPaths(procSelfCgroup: "0::/../../etc\n1:cpu:relative\ngarbage\n\n"[...]), [])

        let v2Stat = "usage_usec 100\nnr_periods 40\nnr_throttled 30\nthrottled_usec 900\n"
        let counts = try XCTUnwrap(CgroupThrottling.periods(fromCPUStat: v2Stat[...]))
        XCTAssertEqual(counts.periods, 40)
        XCTAssertEqual(counts.throttled, 30)
        for hostile in ["", "usage_usec 1\n", "nr_periods 4\n", "nr_periods x\nnr_throttled 1\n", "nr_periods 1\nnr_throttled 2\n"] {
            XCTAssertNil(CgroupThrottling.periods(fromCPUStat: hostile[...]), hostile)
        }
        var window = HostCPUWindow(size: 6)
        window.record(busy: counts.throttled, total: counts.periods)
        window.record(busy: 39, total: 50)
        XCTAssertEqual(window.busyShare, 0.9, accuracy: 1e-9, "throttled in 9 of the last 10 periods")
        // Throttled in half the periods reads as a host 90 % busy: the limits' gate.
        XCTAssertEqual(CgroupThrottling.busyEquivalent(throttled: 0.5), 0.9, accuracy: 1e-9)
        XCTAssertLessThan(CgroupThrottling.busyEquivalent(throttled: 0.4), ConcurrencyLimitPolicy().maximumHostBusy)
        XCTAssertEqual(CgroupThrottling.busyEquivalent(throttled: window.busyShare), 1)
    }

    func testTheSchedulingLagIsTheLargestOfTheRecentProbes() {
        var window = SchedulingLagWindow(size: 3)
        XCTAssertEqual(window.current, 0)
        window.record(0.002)
        window.record(0.4)
        window.record(0.001)
        XCTAssertEqual(window.current, 0.4)
        window.record(0.003)
        XCTAssertEqual(window.current, 0.4, "still among the last three")
        window.record(-1)
        XCTAssertEqual(window.current, 0.003, "aged out; a negative probe counts as on time")
    }

    func testAQueueAddingLessThanTheMinimumDelayIsNoReasonToRefuse() {
        // First tokens in 5 ms, then 20 to 40 times that under a burst on a busy host (and one in
        // ten slower still): under a quarter of a second more, so nobody is refused for it.
        var limit = GradientConcurrencyLimit(policy: ConcurrencyLimitPolicy())
        for _ in 0..<50 { limit.record(latency: 0.005, inFlight: 600) }
        let before = limit.limit
        var lowest = before
        for index in 0..<2_000 {
            let inFlight = min(1_000, limit.slots)
            limit.record(latency: 0.1 + 0.1 * Double(inFlight) / 1_000 + (index % 10 == 0 ? 0.3 : 0), inFlight: inFlight)
            lowest = min(lowest, limit.limit)
        }
        XCTAssertGreaterThanOrEqual(lowest, before)
        // A queue that adds seconds is queueing whatever the baseline: the limit shrinks.
        let grown = limit.limit
        for _ in 0..<60 { limit.record(latency: 2.0, inFlight: limit.slots) }
        XCTAssertLessThan(limit.limit, grown / 2)
    }

    func testRisingTimeToFirstTokenShrinksTheLimitEvenWhenUnderused() {
        var limit = GradientConcurrencyLimit(policy: ConcurrencyLimitPolicy())
        for _ in 0..<300 { limit.record(latency: 0.3, inFlight: 40) }
        XCTAssertEqual(limit.limit, ConcurrencyLimitPolicy().initialLimit, "underused: no growth")
        // The upstream starts queueing: first tokens climb to 1.2 s.
        for _ in 0..<100 { limit.record(latency: 1.2, inFlight: 40) }
        XCTAssertLessThan(limit.limit, 100)
        XCTAssertGreaterThanOrEqual(limit.limit, ConcurrencyLimitPolicy().minimumLimit)
    }

    /// A limit for a small upstream: starting at `initial`, between 4 and `maximum`.
    private func smallLimit(initial: Double, maximum: Double) -> GradientConcurrencyLimit {
        var policy = ConcurrencyLimitPolicy()
        policy.initialLimit = initial
        policy.minimumLimit = 4
        policy.maximumLimit = maximum
        return GradientConcurrencyLimit(policy: policy)
    }

    func testLateSlowAnswersDoNotDriveTheLimitBelowTheirOwnConcurrency() {
        var limit = smallLimit(initial: 50, maximum: 100)
        for _ in 0..<500 { limit.record(latency: 0.05, inFlight: limit.slots) }
        XCTAssertEqual(limit.limit, 100)
        // Answers that started at 50 in flight arrive twenty times slower, long after the limit
        // reacted: they pull it down to a quarter under their concurrency, not to the minimum.
        for _ in 0..<80 { limit.record(latency: 1.0, inFlight: 50) }
        XCTAssertEqual(limit.limit, 37.5, accuracy: 1)
        // Answers started at the new concurrency are fast again: no further cut.
        for _ in 0..<20 { limit.record(latency: 0.05, inFlight: 30) }
        XCTAssertGreaterThanOrEqual(limit.limit, 36.5)
    }

    /// An upstream with 16 slots that queues the rest (first token 55 ms, answers of 0.6 s) and
    /// five times more demand than it serves: first tokens grow with every request over 16.
    private func queueingUpstream(inFlight: Int) -> Double {
        0.055 + Double(max(0, inFlight - 16)) * 0.6 / 16
    }

    func testAnUpstreamThatQueuesKeepsTheLimitNearItsCapacityHoweverLongTheOverloadLasts() {
        var limit = smallLimit(initial: 16, maximum: 256)
        for _ in 0..<200 { limit.record(latency: 0.055, inFlight: 8) }
        // 80 clients against 16 slots for 10,000 answers: the slow first tokens that ran with
        // every slot taken are queueing, and never become the baseline the bound is set from.
        var highest = 0.0
        for index in 0..<10_000 {
            let inFlight = min(80, limit.slots)
            limit.record(latency: queueingUpstream(inFlight: inFlight), inFlight: inFlight)
            if index > 500 { highest = max(highest, limit.limit) }
        }
        // The bound lets the queue add a quarter of a second (about 7 requests over the 16
        // slots); the limit swings around that, at most to about twice the slots.
        XCTAssertLessThan(highest, 33)
        XCTAssertGreaterThanOrEqual(limit.limit, 16, "the upstream's own slots stay in use")
    }

    func testTheLimitHoldsOnceTheMedianIsHalfwayToTheBound() {
        var limit = limit(startingAt: 100)
        for _ in 0..<100 { limit.record(latency: 0.1, inFlight: limit.slots) }
        // The bound is 0.35 s (a quarter of a second over 0.1 s): 0.2 s is under halfway, so it grows.
        let start = limit.limit
        for _ in 0..<30 { limit.record(latency: 0.2, inFlight: limit.slots) }
        XCTAssertGreaterThan(limit.limit, start)
        // 0.25 s is past halfway: a queue is forming, and growing on would overshoot; no cut yet.
        for _ in 0..<limit.policy.shortWindow { limit.record(latency: 0.25, inFlight: limit.slots) }
        let held = limit.limit
        for _ in 0..<30 { limit.record(latency: 0.25, inFlight: limit.slots) }
        XCTAssertEqual(limit.limit, held)
    }

    func testOnlyAnswersThatHadRoomRaiseTheBaseline() throws {
        var limit = GradientConcurrencyLimit(policy: ConcurrencyLimitPolicy())
        for _ in 0..<100 { limit.record(latency: 0.1, inFlight: 100) }
        let quiet = try XCTUnwrap(limit.baseline)
        // Slower answers that started while others waited for a slot: a queue, not a new normal.
        for _ in 0..<100 { limit.record(latency: 0.3, inFlight: 100, contended: true) }
        XCTAssertEqual(limit.baseline, quiet)
        // The same answers with room to spare: the upstream's own pace, learnt.
        for _ in 0..<100 { limit.record(latency: 0.3, inFlight: 100) }
        XCTAssertGreaterThan(try XCTUnwrap(limit.baseline), quiet + 0.05)
    }

    func testAnUpstreamSlowerForEveryRequestIsNotHeldToALowLimit() {
        // The same saturated demand, but the upstream's first tokens go from 0.3 s to 1.5 s
        // whatever the concurrency (longer prompts, a bigger model behind the same name).
        var limit = GradientConcurrencyLimit(policy: ConcurrencyLimitPolicy())
        for _ in 0..<300 { limit.record(latency: 0.3, inFlight: limit.slots) }
        let before = limit.limit
        var lowest = before
        // Demand fills every slot at once; streams in flight end a few at a time (1 % per answer).
        var inFlight = Double(limit.slots)
        for _ in 0..<2_000 {
            inFlight = max(Double(limit.slots), inFlight * 0.99)
            limit.record(latency: 1.5, inFlight: Int(inFlight))
            lowest = min(lowest, limit.limit)
        }
        // Cutting is tried (a queue is the likelier cause), and given up once requests started at
        // three quarters of the concurrency are as slow: then the limit grows back.
        XCTAssertLessThan(lowest, before * 0.75)
        XCTAssertGreaterThanOrEqual(lowest, before / 4)
        XCTAssertGreaterThanOrEqual(limit.limit, before)
    }

    func testOverloadSignsBackOffOncePerInterval() {
        var limit = GradientConcurrencyLimit(policy: ConcurrencyLimitPolicy())
        // A burst of 500 429s within one interval counts once.
        for index in 0..<500 { limit.recordOverload(at: 10 + Double(index) / 1000) }
        XCTAssertEqual(limit.limit, 1024 * 0.9, accuracy: 0.001)
        limit.recordOverload(at: 11.0)
        XCTAssertEqual(limit.limit, 1024 * 0.81, accuracy: 0.001)
        for second in 0..<200 { limit.recordOverload(at: 12 + Double(second)) }
        XCTAssertEqual(limit.limit, ConcurrencyLimitPolicy().minimumLimit)
    }

    /// A timeout or failed connect while this host was short of CPU may be this host's own late
    /// timer; a 429 is the upstream's own word, whatever this host's state.
    func testTimeoutsOnAShortHostAreNoSignButA429AlwaysIs() {
        var limit = GradientConcurrencyLimit(policy: ConcurrencyLimitPolicy())
        limit.recordOverload(at: 10, saidByUpstream: false, hostBusy: 0.95)
        limit.recordOverload(at: 12, saidByUpstream: false, hostLag: 0.5)
        XCTAssertEqual(limit.limit, 1024, "a short host's timeouts cut nothing")
        limit.recordOverload(at: 14, saidByUpstream: false, hostLag: 0.01, hostBusy: 0.5)
        XCTAssertEqual(limit.limit, 1024 * 0.9, accuracy: 0.001, "a calm host's timeouts are a sign")
        limit.recordOverload(at: 16, saidByUpstream: true, hostLag: 0.5, hostBusy: 0.95)
        XCTAssertEqual(limit.limit, 1024 * 0.81, accuracy: 0.001, "a 429 is a sign on any host")
    }

    func testTheLimitStaysWithinItsBounds() {
        var policy = ConcurrencyLimitPolicy()
        policy.maximumLimit = 80
        var limit = GradientConcurrencyLimit(policy: policy)
        for _ in 0..<1000 { limit.record(latency: 0.1, inFlight: 1000) }
        XCTAssertEqual(limit.limit, 80)
    }
}

final class AdmissionQueueTests: XCTestCase {
    var policy = AdmissionQueuePolicy()

    func testLowPriorityIsShedFirstWhenTheQueueIsFull() {
        policy.maximumLength = 2
        policy.criticalReserve = 0
        var queue = AdmissionQueue(policy: policy, limit: 1)
        XCTAssertEqual(queue.arrive(id: 1, priority: .normal, at: 0).0, .admitted)
        XCTAssertEqual(queue.arrive(id: 2, priority: .low, at: 0).0, .queued)
        XCTAssertEqual(queue.arrive(id: 3, priority: .normal, at: 0).0, .queued)
        // Full: a high request pushes out the low one; another low one is refused outright.
        let high = queue.arrive(id: 4, priority: .high, at: 0)
        XCTAssertEqual(high.0, .queued)
        XCTAssertEqual(high.evicted, [2])
        XCTAssertEqual(queue.arrive(id: 5, priority: .low, at: 0).0, .shed)
        // Slots go to the most important first.
        XCTAssertEqual(queue.finish(.normal, at: 0), [4])
        XCTAssertEqual(queue.finish(.high, at: 0), [3])
    }

    func testCriticalRequestsHaveAReserveAboveTheLimit() {
        var queue = AdmissionQueue(policy: policy, limit: 10)
        for id in 0..<10 { XCTAssertEqual(queue.arrive(id: UInt64(id), priority: .normal, at: 0).0, .admitted) }
        XCTAssertEqual(queue.arrive(id: 10, priority: .normal, at: 0).0, .queued)
        XCTAssertEqual(queue.arrive(id: 11, priority: .critical, at: 0).0, .admitted)
        XCTAssertEqual(queue.arrive(id: 12, priority: .critical, at: 0).0, .queued)
    }

    func testCriticalRequestsKeepTheirReserveWhenTheLimitFallsUnderWhatIsInFlight() {
        var queue = AdmissionQueue(policy: policy, limit: 40)
        for id in 0..<40 { XCTAssertEqual(queue.arrive(id: UInt64(id), priority: .normal, at: 0).0, .admitted) }
        // The upstream started queueing and the limit fell to 10, far under the 40 in flight.
        queue.limit = 10
        XCTAssertEqual(queue.arrive(id: 40, priority: .high, at: 0).0, .queued)
        // Critical requests still get the reserve (10 % of 10 is one slot), not a wait for 30 to drain.
        XCTAssertEqual(queue.arrive(id: 41, priority: .critical, at: 0).0, .admitted)
        XCTAssertEqual(queue.arrive(id: 42, priority: .critical, at: 0).0, .queued)
        XCTAssertEqual(queue.criticalInFlight, 1)
        // The critical one finishing frees its reserve for the next critical, not for others.
        XCTAssertEqual(queue.finish(.critical, at: 0), [42])
        XCTAssertEqual(queue.finish(.normal, at: 0), [])
        XCTAssertEqual(queue.inFlight, 40)
        // Past its reserve, a critical request still takes the next slot that frees while the
        // rest drain, instead of waiting for the drain.
        XCTAssertEqual(queue.arrive(id: 43, priority: .critical, at: 0).0, .queued)
        XCTAssertEqual(queue.finish(.normal, at: 0), [43])
        XCTAssertEqual(queue.inFlight, 40)
        XCTAssertEqual(queue.finish(.normal, at: 0), [], "the high request waits for the drain")
    }

    func testAStandingQueueServesTheNewestFirstWithinAPriority() {
        policy.target = 0.1
        policy.criticalReserve = 0
        var queue = AdmissionQueue(policy: policy, limit: 1)
        XCTAssertEqual(queue.arrive(id: 1, priority: .normal, at: 0).0, .admitted)
        for (id, at) in [(2, 0.0), (3, 0.05), (4, 0.3), (5, 0.4)] {
            XCTAssertEqual(queue.arrive(id: UInt64(id), priority: .normal, at: at).0, .queued)
        }
        // The head has waited under the target: a queue absorbing a burst is served in order.
        XCTAssertEqual(queue.finish(.normal, at: 0.06), [2])
        // Its head has waited 0.45 s: the queue stands, and the newest goes first, so admitted
        // requests do not carry the whole queue's wait.
        XCTAssertEqual(queue.finish(.normal, at: 0.5), [5])
        // Priority still comes first: a more important request is served before newer ones.
        XCTAssertEqual(queue.arrive(id: 6, priority: .high, at: 0.5).0, .queued)
        XCTAssertEqual(queue.arrive(id: 7, priority: .normal, at: 0.55).0, .queued)
        XCTAssertEqual(queue.finish(.normal, at: 0.56), [6], "the high one has waited under the target")
        XCTAssertEqual(queue.finish(.normal, at: 0.6), [7])
        XCTAssertEqual(queue.finish(.normal, at: 0.7), [4])
        XCTAssertEqual(queue.finish(.normal, at: 0.8), [3])
    }

    func testWaitersPastTheirMaximumWaitAreShed() {
        policy.maximumWait = 1
        policy.target = 10
        var queue = AdmissionQueue(policy: policy, limit: 0)
        _ = queue.arrive(id: 1, priority: .normal, at: 0)
        _ = queue.arrive(id: 2, priority: .normal, at: 0.5)
        XCTAssertEqual(queue.expire(at: 0.9), [])
        XCTAssertEqual(queue.expire(at: 1.0), [1])
        XCTAssertEqual(queue.expire(at: 1.5), [2])
    }

    func testAStandingQueueShedsFromTheBackEachInterval() {
        policy.target = 0.1
        policy.interval = 0.5
        policy.maximumWait = 100
        policy.standingWait = 100
        var queue = AdmissionQueue(policy: policy, limit: 0)
        _ = queue.arrive(id: 1, priority: .high, at: 0)
        _ = queue.arrive(id: 2, priority: .low, at: 0)
        _ = queue.arrive(id: 3, priority: .normal, at: 0)
        XCTAssertEqual(queue.expire(at: 0.2), [])
        XCTAssertEqual(queue.expire(at: 0.75), [2])
        XCTAssertEqual(queue.expire(at: 0.8), [])
        XCTAssertEqual(queue.expire(at: 1.3), [3])
    }

    func testAStandingQueueShedsRequestsBelowCriticalAtItsShorterWait() {
        policy.target = 0.1
        policy.standingWait = 0.25
        policy.maximumWait = 2
        policy.interval = 100  // the shed from the back is another test's
        var queue = AdmissionQueue(policy: policy, limit: 0)
        XCTAssertEqual(queue.arrive(id: 0, priority: .critical, at: 0).0, .admitted, "the critical reserve")
        _ = queue.arrive(id: 1, priority: .normal, at: 0)
        XCTAssertEqual(queue.arrive(id: 2, priority: .critical, at: 0).0, .queued)
        _ = queue.arrive(id: 3, priority: .low, at: 0.2)
        // The head has waited under the target: the queue may still be absorbing a burst.
        XCTAssertEqual(queue.expire(at: 0.05), [])
        // Standing: the normal request has waited its 0.25 s, the low one not yet.
        XCTAssertEqual(queue.expire(at: 0.3), [1])
        XCTAssertEqual(queue.expire(at: 0.45), [3])
        // A critical request waits its whole `maximumWait`.
        XCTAssertEqual(queue.expire(at: 1.9), [])
        XCTAssertEqual(queue.expire(at: 2), [2])
    }

    func testAQueueThatDrainsQuicklyKeepsItsLongerWait() {
        policy.target = 0.5
        policy.standingWait = 0.25
        policy.maximumWait = 2
        var queue = AdmissionQueue(policy: policy, limit: 0)
        _ = queue.arrive(id: 1, priority: .normal, at: 0)
        // Waited 0.3 s, but under the target: not a standing queue.
        XCTAssertEqual(queue.expire(at: 0.3), [])
        XCTAssertEqual(queue.expire(at: 0.6), [1])
    }

    func testCriticalRequestsAreServedOldestFirstEvenInAStandingQueue() {
        policy.target = 0.1
        var queue = AdmissionQueue(policy: policy, limit: 1)
        XCTAssertEqual(queue.arrive(id: 1, priority: .normal, at: 0).0, .admitted)
        XCTAssertEqual(queue.arrive(id: 2, priority: .critical, at: 0).0, .admitted, "the critical reserve")
        XCTAssertEqual(queue.arrive(id: 3, priority: .critical, at: 0).0, .queued)
        XCTAssertEqual(queue.arrive(id: 4, priority: .critical, at: 0.3).0, .queued)
        // Newest first would leave the oldest critical request to wait until it is shed.
        XCTAssertEqual(queue.finish(.normal, at: 0.5), [3])
        XCTAssertEqual(queue.finish(.critical, at: 0.6), [4])
    }

    func testAShedKeepsDemandCountedOverTheLimitForASecond() {
        policy.maximumLength = 1
        var queue = AdmissionQueue(policy: policy, limit: 1)
        XCTAssertFalse(queue.isContended(at: 0))
        XCTAssertEqual(queue.arrive(id: 1, priority: .normal, at: 0).0, .admitted)
        XCTAssertEqual(queue.arrive(id: 2, priority: .normal, at: 0).0, .queued)
        XCTAssertTrue(queue.isContended(at: 0))
        XCTAssertEqual(queue.arrive(id: 3, priority: .normal, at: 0.1).0, .shed)
        XCTAssertEqual(queue.finish(.normal, at: 0.2), [2])
        // Nobody waits, but a request was refused a moment ago: the limit still binds.
        XCTAssertTrue(queue.isContended(at: 0.5))
        XCTAssertFalse(queue.isContended(at: 1.2))
    }

    func testARaisedLimitAdmitsWaiters() {
        var queue = AdmissionQueue(policy: policy, limit: 0)
        _ = queue.arrive(id: 1, priority: .normal, at: 0)
        queue.limit = 1
        XCTAssertEqual(queue.admitWaiting(at: 0), [1])
        XCTAssertTrue(queue.withdraw(id: 1) == false)
    }
}

final class SharedLimitTests: XCTestCase {
    func testUsageAbsorbedFromOtherInstancesDrainsTheBucketsAndTheBudget() {
        var limiter = CallerLimiter(policy: CallerLimitPolicy(requestsPerMinute: 10, tokensPerMinute: 1_000, budgetTokens: 5_000), now: 0)
        XCTAssertNil(limiter.admit(estimatedTokens: 100, at: 0))
        limiter.complete(estimatedTokens: 100, actualTokens: 100, at: 0)
        // Eight requests and 600 tokens arrived at other instances.
        limiter.absorb(requests: 8, tokens: 600, at: 1)
        XCTAssertEqual(limiter.budgetUsed, 700)
        XCTAssertNil(limiter.admit(estimatedTokens: 100, at: 1), "the tenth request of the minute")
        if case .requestsPerMinute(let retryAfter)? = limiter.admit(estimatedTokens: 100, at: 1) {
            XCTAssertGreaterThan(retryAfter, 0)
        } else {
            XCTFail("an eleventh request in the minute was admitted")
        }
        // The bucket refills at the one configured rate: 10 a minute, one every 6 s.
        XCTAssertNil(limiter.admit(estimatedTokens: 100, at: 8))
        limiter.absorb(requests: 0, tokens: 0, at: 9)
        XCTAssertEqual(limiter.budgetUsed, 700, "nothing absorbed, nothing counted")
    }
}

