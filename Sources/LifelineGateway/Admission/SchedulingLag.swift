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
    /// The share of the cgroup's CPU-quota periods that throttled it, over the same half second.
    private let throttling = Mutex(HostCPUWindow(size: 6))
    /// The process's cgroup `cpu.stat` that holds throttling counters, found once (nil: none).
    private let cgroupCPUStat: String? = SchedulingLag.findCgroupCPUStat()

    /// Seconds: the largest lag of the recent probes.
    var seconds: Double { window.withLock { $0.current } }

    /// The share of the host's CPU time that was busy over the last half second (0 where the
    /// host does not say: not Linux).
    var hostBusy: Double { cpu.withLock { $0.busyShare } }

    /// The share of the last half second's CPU-quota periods that throttled the process's
    /// cgroup (0 without a quota, or where the host does not say).
    var throttled: Double { throttling.withLock { $0.busyShare } }

    /// Both, as the adaptive limits take them: how late the event loops run, and how busy the CPUs are.
    struct Reading: Sendable {
        var lag: Double
        var busy: Double
    }

    var now: Reading { Reading(lag: seconds, busy: max(hostBusy, CgroupThrottling.busyEquivalent(throttled: throttled))) }

    func record(_ seconds: Double) { window.withLock { $0.record(seconds) } }

    /// Reads the host's CPU counters from `/proc/stat`, and the cgroup's throttling counters.
    func readHostCPU() {
        if let counters = Self.readStart(of: "/proc/stat").flatMap({ HostCPUWindow.counters(fromProcStat: $0[...]) }) {
            cpu.withLock { $0.record(busy: counters.busy, total: counters.total) }
        }
        if let path = cgroupCPUStat, let counts = Self.readStart(of: path).flatMap({ CgroupThrottling.periods(fromCPUStat: $0[...]) }) {
            throttling.withLock { $0.record(busy: counts.throttled, total: counts.periods) }
        }
    }

    private static func findCgroupCPUStat() -> String? {
        guard let cgroups = readStart(of: "/proc/self/cgroup") else { return nil }
        return CgroupThrottling.cpuStatPaths(procSelfCgroup: cgroups[...]).first { path in
            readStart(of: path).flatMap { CgroupThrottling.periods(fromCPUStat: $0[...]) } != nil
        }
    }

    /// The first bytes of a small kernel file (the sums come first in `/proc/stat`; `cpu.stat`
    /// and `/proc/self/cgroup` are short), as text; nil when it cannot be read.
    private static func readStart(of path: String) -> String? {
        #if canImport(Glibc)
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count], as: UTF8.self)
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
                metrics.cpuThrottled(lag.throttled)
            }
        }
    }
}
