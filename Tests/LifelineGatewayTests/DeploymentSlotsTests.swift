@testable import LifelineGateway
import LifelineCore
import NIOCore
import NIOPosix
import Synchronization
import XCTest

final class DeploymentSlotsTests: XCTestCase {
    /// A deployment with one slot, held; attempts of low, normal and critical priority arrive in
    /// that order and wait. Each freed slot goes to the most important waiter, so a critical
    /// request behind a crowd of low ones is not the one whose wait runs out.
    func testAFreedSlotGoesToTheMostImportantWaiter() async throws {
        var policy = ConcurrencyLimitPolicy()
        policy.initialLimit = 1
        policy.minimumLimit = 1
        let slots = DeploymentSlots(names: ["d"], policy: policy, maximumWaiting: 8, metrics: GatewayMetrics())
        let held = await slots.acquire(0, wait: 0, priority: .normal)
        XCTAssertTrue(held)
        let granted = Grants()
        var tasks: [Task<Void, Never>] = []
        for priority in [Priority.low, .normal, .critical] {
            tasks.append(Task {
                if await slots.acquire(0, wait: 30, priority: priority) { granted.list.withLock { $0.append(priority) } }
            })
            try await waitUntil { slots.waiting(0) == tasks.count }
        }
        for count in 1...3 {
            slots.release(0)
            try await waitUntil { granted.list.withLock { $0.count } == count }
        }
        XCTAssertEqual(granted.list.withLock { $0 }, [.critical, .normal, .low])
        slots.release(0)
        for task in tasks { await task.value }
        XCTAssertEqual(slots.load(0).inFlight, 0)
    }

    private final class Grants: Sendable {
        let list = Mutex<[Priority]>([])
    }

}

private func waitUntil(_ condition: () -> Bool) async throws {
    for _ in 0..<500 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    XCTAssertTrue(condition(), "not reached within 5 s")
}

/// The lag probe times the event loops themselves: a loop kept busy reads as late.
final class SchedulingLagProbeTests: XCTestCase {
    func testALoopKeptBusyReadsAsLate() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let lag = SchedulingLag()
        let probe = Task { try await SchedulingLagProbe(lag: lag, metrics: GatewayMetrics(), group: group).run() }
        try await waitUntil { lag.probes >= 5 }
        // One loop blocked for 0.4 s (as a burst of work would hold it): the timers queued
        // behind it run that late, whatever the other loop does.
        let loops = Array(group.makeIterator())
        loops[1].execute { usleep(400_000) }
        try await waitUntil { lag.seconds >= 0.3 }
        probe.cancel()
        try await group.shutdownGracefully()
    }
}
