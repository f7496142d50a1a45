#if canImport(Glibc)
import Glibc
#endif
import LifelineCore
import ServiceLifecycle
import Synchronization

/// How late the gateway's own event loops run, and how busy the host's CPUs are, for the
/// adaptive limits: a first token read late because the gateway (or the host) is short of CPU
/// is no sign that the upstream queues.
///
/// One per process: the event loops (and the tasks on them) are the process's, whatever
/// gateways run in it.
final class SchedulingLag: Sendable {
    static let shared = SchedulingLag()

    /// Probes every `probeInterval`: the window covers about half a second.
    static let probeInterval = Duration.milliseconds(20)
    private let window = Mutex(SchedulingLagWindow(size: 25))
    /// Read every fifth probe: six readings span half a second.
    private let cpu = Mutex(HostCPUWindow(size: 6))

    /// Seconds: the largest lag of the recent probes.
    var seconds: Double { window.withLock { $0.current } }

    /// The share of the host's CPU time that was busy over the last half second (0 where the
    /// host does not say: not Linux).
    var hostBusy: Double { cpu.withLock { $0.busyShare } }

    /// Both, as the adaptive limits take them: how late the event loops run, and how busy the CPUs are.
    struct Reading: Sendable {
        var lag: Double
        var busy: Double
    }

    var now: Reading { Reading(lag: seconds, busy: hostBusy) }

    func record(_ seconds: Double) { window.withLock { $0.record(seconds) } }

    /// Reads the host's CPU counters from `/proc/stat`.
    func readHostCPU() {
        guard let counters = Self.procStatCounters() else { return }
        cpu.withLock { $0.record(busy: counters.busy, total: counters.total) }
    }

    private static func procStatCounters() -> (busy: UInt64, total: UInt64)? {
        #if canImport(Glibc)
        let descriptor = open("/proc/stat", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        // The first line (the sum over every CPU) fits in far less.
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return HostCPUWindow.counters(fromProcStat: Substring(decoding: buffer[..<count], as: UTF8.self))
        #else
        return nil
        #endif
    }
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
            if probes % 5 == 0 { lag.readHostCPU() }
            // The gauges show the windows' values a few times a second.
            if probes % 10 == 0 {
                metrics.schedulingLag(lag.seconds)
                metrics.hostCPUBusy(lag.hostBusy)
            }
        }
    }
}
