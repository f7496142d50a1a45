import LifelineCore
import ServiceLifecycle
import Synchronization

/// How late the gateway's own event loops run, for the adaptive limits: a first token read late
/// because the gateway is short of CPU is no sign that the upstream queues.
///
/// One per process: the event loops (and the tasks on them) are the process's, whatever
/// gateways run in it.
final class SchedulingLag: Sendable {
    static let shared = SchedulingLag()

    /// Probes every `probeInterval`: the window covers about half a second.
    static let probeInterval = Duration.milliseconds(20)
    private let window = Mutex(SchedulingLagWindow(size: 25))

    /// Seconds: the largest lag of the recent probes.
    var seconds: Double { window.withLock { $0.current } }

    func record(_ seconds: Double) { window.withLock { $0.record(seconds) } }
}

/// Sleeps `SchedulingLag.probeInterval` again and again and records how much later it woke.
struct SchedulingLagProbe: Service {
    let lag: SchedulingLag
    let metrics: GatewayMetrics

    func run() async throws {
        let clock = ContinuousClock()
        var probes = 0
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let asked = clock.now
            try? await Task.sleep(for: SchedulingLag.probeInterval)
            let late = clock.now - asked - SchedulingLag.probeInterval
            lag.record(Double(late.components.seconds) + Double(late.components.attoseconds) / 1e18)
            probes += 1
            // The gauge shows the window's value a few times a second.
            if probes % 10 == 0 { metrics.schedulingLag(lag.seconds) }
        }
    }
}
