#if canImport(Glibc)
import Glibc
#endif
import LifelineCore
import NIOCore
import NIOPosix
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
    private struct Windows {
        var lag = SchedulingLagWindow(size: 25)
        /// Read every fifth probe: six readings span half a second.
        var cpu = HostCPUWindow(size: 6)
        /// The cgroup's CPU-quota periods that throttled it, over the same half second.
        var throttling = HostCPUWindow(size: 6)
        var probes = 0
    }

    /// One lock for the three, so a request's reading takes it once.
    private let windows = Mutex(Windows())
    /// The process's cgroup `cpu.stat` that holds throttling counters, found once (nil: none).
    private let cgroupCPUStat: String? = SchedulingLag.findCgroupCPUStat()

    /// Seconds: the largest lag of the recent probes.
    var seconds: Double { windows.withLock { $0.lag.current } }

    /// The share of the host's CPU time that was busy over the last half second (0 where the
    /// host does not say: not Linux).
    var hostBusy: Double { windows.withLock { $0.cpu.busyShare } }

    /// The share of the last half second's CPU-quota periods that throttled the process's
    /// cgroup (0 without a quota, or where the host does not say).
    var throttled: Double { windows.withLock { $0.throttling.busyShare } }

    /// Both, as the adaptive limits take them: how late the event loops run, and how busy the CPUs are.
    struct Reading: Sendable {
        var lag: Double
        var busy: Double
    }

    var now: Reading {
        windows.withLock { windows in
            Reading(lag: windows.lag.current,
                    busy: max(windows.cpu.busyShare, CgroupThrottling.busyEquivalent(throttled: windows.throttling.busyShare)))
        }
    }

    /// Probes recorded so far.
    var probes: Int { windows.withLock { $0.probes } }

    /// Records one probe's lag; returns how many probes there have been.
    @discardableResult
    func record(_ seconds: Double) -> Int {
        windows.withLock { windows in
            windows.lag.record(seconds)
            windows.probes += 1
            return windows.probes
        }
    }

    /// Reads the host's CPU counters from `/proc/stat`, and the cgroup's throttling counters.
    func readHostCPU() {
        let host = Self.readStart(of: "/proc/stat").flatMap { HostCPUWindow.counters(fromProcStat: $0[...]) }
        let cgroup = cgroupCPUStat.flatMap(Self.readStart(of:)).flatMap { CgroupThrottling.periods(fromCPUStat: $0[...]) }
        windows.withLock { windows in
            if let host { windows.cpu.record(busy: host.busy, total: host.total) }
            if let cgroup { windows.throttling.record(busy: cgroup.throttled, total: cgroup.periods) }
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

/// Asks each of NIO's event loops to run a timer `SchedulingLag.probeInterval` from now, again and
/// again, and records how much later the latest of them ran.
///
/// The event loops are what serve every socket and, with NIO installed as Swift's global executor,
/// every task; a timer there waits behind whatever the loop has queued. Every loop is timed at
/// every probe. (A `Task.sleep` is woken by the runtime's own timer thread, which hands it to one
/// loop, a different one each time: it timed one loop per probe, and the timer thread besides.)
struct SchedulingLagProbe: Service {
    let lag: SchedulingLag
    let metrics: GatewayMetrics
    var group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    func run() async throws {
        let loops = Array(group.makeIterator())
        guard let first = loops.first else { return }
        let interval = TimeAmount(SchedulingLag.probeInterval)
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let asked = NIODeadline.now()
            let ran = loops.map { loop in loop.scheduleTask(in: interval) { NIODeadline.now() }.futureResult }
            guard let times = try? await EventLoopFuture.whenAllSucceed(ran, on: first).get() else { return }
            let late = (times.max() ?? asked) - asked - interval
            let probes = lag.record(Double(late.nanoseconds) / 1e9)
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
