import LifelineCore
import XCTest

final class ProcessSupervisorTests: XCTestCase {
    var policy: ProcessRestartPolicy = {
        var policy = ProcessRestartPolicy()
        policy.startTimeout = 30
        policy.backoffBase = 1
        policy.backoffMaximum = 8
        policy.stableAfter = 60
        return policy
    }()

    func testLaunchesAtOnceAndTakesTrafficOnlyOnceHealthy() {
        var supervisor = ProcessSupervisor(policy: policy, at: 100)
        XCTAssertEqual(supervisor.state, .starting(since: 100))
        XCTAssertEqual(supervisor.action(at: 100), .launch)
        XCTAssertFalse(supervisor.acceptsTraffic)
        supervisor.launched(at: 100)
        XCTAssertEqual(supervisor.state, .starting(since: 100))
        XCTAssertEqual(supervisor.action(at: 101), .checkHealth)
        XCTAssertFalse(supervisor.acceptsTraffic)
        supervisor.healthy(at: 102.5)
        XCTAssertEqual(supervisor.state, .running(since: 102.5))
        XCTAssertTrue(supervisor.acceptsTraffic)
        XCTAssertEqual(supervisor.action(at: 103), .wait(until: nil))
        XCTAssertEqual(supervisor.restarts, 0)
    }

    func testAnExitIsRelaunchedAfterABackoffThatDoublesUpToTheMaximum() {
        var supervisor = ProcessSupervisor(policy: policy, at: 0)
        var now = 0.0
        var waits: [Double] = []
        for _ in 0..<5 {
            XCTAssertEqual(supervisor.action(at: now), .launch)
            supervisor.launched(at: now)
            supervisor.healthy(at: now + 1)
            now += 2
            supervisor.exited(status: 1, at: now)
            XCTAssertFalse(supervisor.acceptsTraffic)
            guard case .restarting(let until) = supervisor.state else { return XCTFail("not restarting: \(supervisor.state)") }
            waits.append(until - now)
            // Not a moment before the backoff is over.
            XCTAssertEqual(supervisor.action(at: until - 0.001), .wait(until: until))
            now = until
        }
        XCTAssertEqual(waits, [1, 2, 4, 8, 8])
        XCTAssertEqual(supervisor.restarts, 4)
        XCTAssertEqual(supervisor.lastFailure, .exited(status: 1))
    }

    func testAProcessThatRanLongEnoughStartsTheBackoffOver() {
        var supervisor = ProcessSupervisor(policy: policy, at: 0)
        supervisor.launched(at: 0)
        supervisor.exited(status: 1, at: 1)
        supervisor.launched(at: 2)
        supervisor.exited(status: 1, at: 3)
        XCTAssertEqual(supervisor.state, .restarting(until: 5))
        supervisor.launched(at: 5)
        supervisor.healthy(at: 6)
        // Healthy for exactly the stable time, then killed: the first backoff again.
        supervisor.exited(status: 137, at: 66)
        XCTAssertEqual(supervisor.state, .restarting(until: 67))
        XCTAssertEqual(supervisor.consecutiveFailures, 1)
        XCTAssertEqual(supervisor.restarts, 2)
    }

    func testAStartThatNeverTurnsHealthyIsKilledAtTheTimeoutAndRetried() {
        var supervisor = ProcessSupervisor(policy: policy, at: 0)
        supervisor.launched(at: 0)
        XCTAssertEqual(supervisor.action(at: 29.999), .checkHealth)
        XCTAssertEqual(supervisor.action(at: 30), .killStalledStart)
        supervisor.killedStalledStart()
        // Killed but not yet gone: no second kill, no health check, no relaunch.
        XCTAssertEqual(supervisor.action(at: 31), .wait(until: nil))
        supervisor.healthy(at: 31)
        XCTAssertFalse(supervisor.acceptsTraffic, "a late answer from a process being killed must not send traffic to it")
        supervisor.exited(status: 9, at: 32)
        XCTAssertEqual(supervisor.lastFailure, .startTimedOut)
        XCTAssertEqual(supervisor.state, .restarting(until: 33))
        XCTAssertEqual(supervisor.action(at: 33), .launch)
        supervisor.launched(at: 33)
        XCTAssertEqual(supervisor.action(at: 34), .checkHealth)
    }

    func testAFailedLaunchIsRetriedWithBackoffAndCounted() {
        var supervisor = ProcessSupervisor(policy: policy, at: 0)
        supervisor.launchFailed("no such file", at: 0)
        XCTAssertEqual(supervisor.state, .restarting(until: 1))
        XCTAssertEqual(supervisor.lastFailure, .launchFailed("no such file"))
        XCTAssertFalse(supervisor.isAlive)
        XCTAssertEqual(supervisor.action(at: 1), .launch)
        supervisor.launchFailed("no such file", at: 1)
        XCTAssertEqual(supervisor.state, .restarting(until: 3))
        XCTAssertEqual(supervisor.restarts, 1)
    }

    func testStopEndsEverythingAndAnExitAfterItRelaunchesNothing() {
        var supervisor = ProcessSupervisor(policy: policy, at: 0)
        supervisor.launched(at: 0)
        supervisor.healthy(at: 1)
        supervisor.stop()
        XCTAssertEqual(supervisor.state, .stopped)
        XCTAssertFalse(supervisor.acceptsTraffic)
        XCTAssertTrue(supervisor.isAlive, "alive until its exit is reported")
        supervisor.exited(status: 0, at: 2)
        XCTAssertEqual(supervisor.state, .stopped)
        XCTAssertFalse(supervisor.isAlive)
        XCTAssertEqual(supervisor.action(at: 1000), .wait(until: nil))
        supervisor.launched(at: 1000)
        XCTAssertEqual(supervisor.state, .stopped)
        XCTAssertEqual(supervisor.restarts, 0)
        XCTAssertNil(supervisor.lastFailure)
    }

    func testAnExitWhileStartingCountsAsAFailure() {
        var supervisor = ProcessSupervisor(policy: policy, at: 0)
        supervisor.launched(at: 0)
        supervisor.exited(status: 2, at: 0.5)
        XCTAssertEqual(supervisor.state, .restarting(until: 1.5))
        // A health answer that arrives after the exit changes nothing.
        supervisor.healthy(at: 0.6)
        XCTAssertEqual(supervisor.state, .restarting(until: 1.5))
    }
}
