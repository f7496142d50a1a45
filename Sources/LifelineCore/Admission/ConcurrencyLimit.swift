/// Bounds for the adaptive concurrency limit.
///
/// The defaults suit LLM traffic: thousands of long streams at once are ordinary, so a healthy
/// upstream starts with room for a thousand and the limit only learns down on evidence.
public struct ConcurrencyLimitPolicy: Sendable, Equatable {
    public var initialLimit = 1024.0
    public var minimumLimit = 16.0
    public var maximumLimit = 10_000.0
    /// The recent latency may grow to this multiple of its long-term baseline before the limit
    /// shrinks.
    public var tolerance = 2.0
    /// Nor does it shrink while the recent latency is within this many seconds of the baseline: a first
    /// token a quarter of a second later is no reason to refuse anyone, and for an upstream whose
    /// first token comes in milliseconds a ratio alone reads a busy host's scheduling as queueing.
    public var minimumQueueDelay = 0.25
    /// Share of each new estimate blended into the limit.
    public var smoothing = 0.2
    /// A slow answer cuts the limit to no less than this share of the concurrency it started at.
    /// News of a queue arrives late, from answers started before the last cut; answers started
    /// lower cut further if they are still slow, so the limit steps down to what the upstream
    /// serves rather than past it.
    public var cutFloor = 0.75
    /// Samples the recent latency is read from.
    public var shortWindow = 15
    /// While the limit is in use (the sample started with demand over the limit, or with three
    /// quarters of the limit or more in flight), the recent latency is this quantile of the last
    /// `shortWindow` samples: a tail of slow answers (one in ten: a busy core, a long prompt) does not
    /// move it, while a queue that a quarter of the requests wait in does. A median would show that
    /// queue only once most requests wait in it, that is once the limit is twice what the upstream
    /// serves. While the limit has room, it is their median: a cut would then make it bind and refuse
    /// traffic at once, and a burst on a busy host makes a quarter of first tokens late with no queue
    /// upstream, so only half of them slow is evidence enough.
    public var recentQuantile = 0.75
    /// Samples in the long-term latency baseline.
    public var longWindow = 600.0
    /// Each sign of overload (429, timeout, connection error) multiplies the limit by this,
    /// at most once per `overloadInterval` seconds.
    public var overloadBackoff = 0.9
    public var overloadInterval = 1.0
    /// A latency sample taken while the gateway's own event loops run at least this many seconds
    /// late never shrinks the limit: the delay is the gateway's (a CPU-short host relaying
    /// thousands of streams), not the upstream's, and a smaller limit would refuse a healthy
    /// upstream's traffic. (A quick one still grows it.)
    public var maximumHostLag = 0.1
    /// Nor does one taken while the host's CPUs are this busy: a host that is short of CPU makes
    /// every first token late (the gateway's reads, and an upstream on the same host), though
    /// each event loop may run on time. Overload the upstream reports outright (429s) still
    /// shrinks the limit then.
    public var maximumHostBusy = 0.9

    public init() {}

    /// The host was short of CPU (its event loops `hostLag` seconds late, or its CPUs `hostBusy`
    /// busy) beyond what a reading may come from and still speak of the upstream.
    func hostIsShort(lag hostLag: Double, busy hostBusy: Double) -> Bool {
        hostLag >= maximumHostLag || hostBusy >= maximumHostBusy
    }

    /// The latency past which a queue is read: `tolerance` × the baseline, and at least
    /// `minimumQueueDelay` over it.
    func queueingBound(over baseline: Double) -> Double {
        max(tolerance * baseline, baseline + minimumQueueDelay)
    }
}

/// How busy the host's CPUs are, from the cumulative busy and total time Linux keeps in
/// `/proc/stat`: the busy share between the oldest and the newest of the last `size` readings.
/// (The same share of any two cumulative counts: throttled quota periods of all periods, too.)
public struct HostCPUWindow: Sendable, Equatable {
    private struct Reading: Sendable, Equatable {
        var busy: UInt64
        var total: UInt64
    }

    private var readings: [Reading] = []
    public let size: Int

    public init(size: Int) { self.size = max(2, size) }

    public mutating func record(busy: UInt64, total: UInt64) {
        // Counters that went back (a reading from elsewhere) start the window again.
        if let last = readings.last, busy < last.busy || total < last.total { readings.removeAll() }
        readings.append(Reading(busy: busy, total: total))
        if readings.count > size { readings.removeFirst(readings.count - size) }
    }

    /// From 0 (idle) to 1 (every CPU busy); 0 before two readings.
    public var busyShare: Double {
        guard let first = readings.first, let last = readings.last, last.total > first.total else { return 0 }
        return min(1, Double(last.busy - first.busy) / Double(last.total - first.total))
    }

    /// The busy and total time of the `cpu` line of `/proc/stat` (user nice system idle iowait
    /// irq softirq steal …, in clock ticks; idle and iowait are the idle time); nil when there is none.
    public static func counters(fromProcStat text: Substring) -> (busy: UInt64, total: UInt64)? {
        guard let line = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first,
              line.hasPrefix("cpu ") else { return nil }
        let fields = line.dropFirst(4).split(separator: " ").prefix(10).map { UInt64($0) }
        guard fields.count >= 4, !fields.contains(nil) else { return nil }
        let values = fields.map { $0! }
        let (total, overflow) = values.reduce((UInt64(0), false)) { sum, value in
            let (added, over) = sum.0.addingReportingOverflow(value)
            return (added, sum.1 || over)
        }
        guard !overflow else { return nil }
        let idle = values[3] + (values.count > 4 ? values[4] : 0)
        return (total - idle, total)
    }
}

/// Where the kernel counts how often the process's cgroup was held back by its CPU quota
/// (`nr_periods`, `nr_throttled` in `cpu.stat`, cgroup v2 and v1 alike): a container throttled on
/// an idle host is as short of CPU as a busy host, and `/proc/stat` does not show it.
public enum CgroupThrottling {
    /// The `cpu.stat` files that may hold the counters, from `/proc/self/cgroup`: the v2 entry
    /// (`0::/path`) under `/sys/fs/cgroup`, and a v1 entry with the cpu controller under its
    /// usual mount points. Paths with `..` are left out.
    public static func cpuStatPaths(procSelfCgroup text: Substring) -> [String] {
        var paths: [String] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, fields[2].hasPrefix("/"), !fields[2].split(separator: "/").contains("..") else { continue }
            let path = fields[2] == "/" ? "" : String(fields[2])
            if fields[0] == "0", fields[1].isEmpty {
                paths.append("/sys/fs/cgroup\(path)/cpu.stat")
            } else if fields[1].split(separator: ",").contains("cpu") {
                paths.append("/sys/fs/cgroup/\(fields[1])\(path)/cpu.stat")
                paths.append("/sys/fs/cgroup/cpu\(path)/cpu.stat")
            }
        }
        return paths
    }

    /// How busy a throttled share reads as, for the limits: a cgroup throttled in half its quota
    /// periods is as short of CPU as a host whose CPUs are 90 % busy. Throttling stops the
    /// process for the rest of a period, and a share near 1 is rare even under a quota far too
    /// small (0.78–0.89 measured with 0.3 of a CPU under load), as periods it idles in count too.
    public static func busyEquivalent(throttled share: Double) -> Double { min(1, max(0, share) * 0.9 / 0.5) }

    /// The quota periods so far and how many of them throttled the cgroup; nil without both.
    public static func periods(fromCPUStat text: Substring) -> (periods: UInt64, throttled: UInt64)? {
        var periods: UInt64?
        var throttled: UInt64?
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 2, let value = UInt64(fields[1]) else { continue }
            if fields[0] == "nr_periods" { periods = value }
            if fields[0] == "nr_throttled" { throttled = value }
        }
        guard let periods, let throttled, throttled <= periods else { return nil }
        return (periods, throttled)
    }
}

/// How late the gateway's own scheduling runs, from probes that set a timer a fixed time ahead
/// and note how much later it ran: the largest of the last `size` probes.
public struct SchedulingLagWindow: Sendable, Equatable {
    private var samples: [Double] = []
    private var next = 0
    public let size: Int

    public init(size: Int) { self.size = max(1, size) }

    public mutating func record(_ lag: Double) {
        if samples.count < size {
            samples.append(max(0, lag))
        } else {
            samples[next] = max(0, lag)
            next = (next + 1) % size
        }
    }

    /// Seconds; 0 before any probe.
    public var current: Double { samples.max() ?? 0 }
}

/// A Gradient2-style adaptive concurrency limit (after Netflix's concurrency-limits).
///
/// Samples are what rises when the upstream queues: time to first token for streams, the whole
/// answer otherwise; never how long a stream lasts. The recent latency (the upper quartile of
/// the last few while the limit is in use, their median otherwise) is compared with a slow
/// baseline, learnt only from answers that started with room to spare.
///
/// While they match, the limit grows by about √limit × `smoothing` per sample: only while the
/// recent latency is less than halfway to the queueing bound, and to at most half again the
/// concurrency the sample ran at (one such step over it once the latency has risen a quarter of
/// the way, so growth waits for news of its last step); an idle limit does not grow. When the
/// recent latency and the sample climb above the queueing bound (`tolerance` × the baseline, and
/// at least `minimumQueueDelay` over it), the limit is multiplied by their ratio (never below
/// half), but never below the sample's own concurrency times `cutFloor`, so late answers cannot
/// make it overshoot.
/// Overload the upstream reports outright (429s, timeouts, refused connections) shrinks it too.
public struct GradientConcurrencyLimit: Sendable, Equatable {
    public let policy: ConcurrencyLimitPolicy
    public private(set) var limit: Double
    /// The last `shortWindow` latencies, oldest overwritten first.
    private var recent: [Double] = []
    private var nextSlot = 0
    /// The slow baseline the recent latency is compared with (seconds; nil before the first sample).
    public private(set) var baseline: Double?
    /// The `recentQuantile` of the recent samples while the limit is in use, their median otherwise
    /// (seconds; nil before the first sample).
    public private(set) var recentLatency: Double?
    private var samples = 0.0
    private var lastBackoff: Double?
    /// Since the recent latency last rose over the bound: the slowest since, the highest
    /// concurrency an answer started at, and how many answers in a row since kept most of that
    /// latency's excess at a clearly lower concurrency.
    private struct CutEpisode: Sendable, Equatable {
        var worstRecent: Double
        var worstInFlight: Double
        var unhelped = 0
    }

    private var cutEpisode: CutEpisode?

    public init(policy: ConcurrencyLimitPolicy) {
        self.policy = policy
        limit = min(policy.maximumLimit, max(policy.minimumLimit, policy.initialLimit))
    }

    /// Whole slots available now.
    public var slots: Int { max(1, Int(limit.rounded(.down))) }

    /// Feeds one answer's latency (time to first token, or the whole answer when not streamed),
    /// with how many requests were in flight when it started, and how late the gateway's own
    /// scheduling runs now (`hostLag`, seconds): a sample taken while that is at least
    /// `maximumHostLag`, or while the host's CPUs are at least `maximumHostBusy` busy (`hostBusy`,
    /// a share), can never shrink the limit; only one near the baseline grows it (`growOnShortHost`).
    /// `contended`: demand was over the limit when this one started (others waited for a slot, or
    /// one was just shed).
    public mutating func record(latency: Double, inFlight: Int, hostLag: Double = 0, hostBusy: Double = 0, contended: Bool = false) {
        guard latency > 0 else { return }
        if policy.hostIsShort(lag: hostLag, busy: hostBusy) {
            growOnShortHost(latency: latency, inFlight: inFlight)
            return
        }
        samples += 1
        let binds = contended || inFlight >= slots
        let inUse = binds || Double(inFlight) >= 0.75 * limit
        let short = remember(latency, quantile: inUse ? policy.recentQuantile : 0.5)
        let previous = baseline ?? latency
        let longWeight = 1 / min(samples, policy.longWindow)
        var long = previous * (1 - longWeight) + latency * longWeight
        // Let the baseline drift down quickly after a slow period, so recovery is not held back.
        if long / short > 2 { long *= 0.95 }
        // An answer that started while demand exceeded the limit (others waited for a slot, or
        // every slot was taken) may have queued upstream, which is what this limit exists to
        // bound, not a new normal: it never raises the baseline, or the bound would climb with
        // the queue and the limit with it. Unless cutting does not help (below).
        if long > previous, binds { long = previous }
        if cuttingDoesNotHelp(latency: latency, inFlight: inFlight, baseline: previous) {
            long = short
            cutEpisode = nil
        }
        baseline = long
        recentLatency = short
        let bound = policy.queueingBound(over: long)
        let gradient = max(0.5, min(1.0, bound / short))
        if gradient >= 1 {
            cutEpisode = nil
            // Growth needs use: a sample vouches only for a little more than the concurrency it
            // ran at, so an idle limit proves nothing. While the recent latency is within a
            // quarter of the way to the bound, half again that concurrency; past it a queue may
            // be forming, and only one step over it, so the next step waits for an answer that
            // started after this one. (The requests a step admits over what the upstream serves
            // show as slow first tokens a queue's wait later, and a limit that grew on every
            // answer that started before them would overshoot by all of them.) Past halfway to
            // the bound it stops growing.
            let excess = short - long
            let ceiling = excess <= (bound - long) / 4
                ? Double(inFlight) * 1.5
                : Double(inFlight) + max(1, Double(inFlight).squareRoot() * policy.smoothing)
            guard excess <= (bound - long) / 2 else { return }
            grow(toAtMost: ceiling)
        } else {
            var episode = cutEpisode ?? CutEpisode(worstRecent: short, worstInFlight: Double(inFlight))
            episode.worstRecent = max(episode.worstRecent, short)
            episode.worstInFlight = max(episode.worstInFlight, Double(inFlight))
            cutEpisode = episode
            // A sample judges the concurrency it ran at: the limit never falls below that
            // concurrency times the gradient, nor a quarter under it. Answers that started before
            // the last cut arrive late, and a limit already under their floor has acted on their
            // news; a fast answer is no news of queueing, however slow the recent latency still is.
            let floor = max(policy.minimumLimit, Double(inFlight) * max(gradient, policy.cutFloor))
            guard limit > floor, latency > bound else { return }
            // Queueing shrinks an underused limit too, only without the usual headroom.
            let underused = Double(inFlight) < limit / 2
            let proposed = limit * gradient + (underused ? 0 : limit.squareRoot())
            limit = max(floor, limit * (1 - policy.smoothing) + proposed * policy.smoothing)
        }
        limit = min(policy.maximumLimit, max(policy.minimumLimit, limit))
    }

    /// A sample read while the host was short of CPU. Such a host only makes answers later, so
    /// a late one says nothing of the upstream, and the window and the baseline never see it; but
    /// one still within a quarter of the way to the queueing bound is news that the upstream served
    /// its concurrency without a queue, and grows the limit as a quiet sample would. (Else a burst
    /// that keeps the host busy would hold the limit where it stood, and the waiters over it would
    /// be refused in front of a healthy upstream.) With no baseline yet, the sample becomes it: at
    /// worst too high, which errs toward admitting, and the first quiet sample replaces it.
    private mutating func growOnShortHost(latency: Double, inFlight: Int) {
        guard let baseline else {
            baseline = latency
            return
        }
        guard latency - baseline <= (policy.queueingBound(over: baseline) - baseline) / 4 else { return }
        grow(toAtMost: Double(inFlight) * 1.5)
    }

    /// One step of growth, about √limit × `smoothing`, never past `ceiling` nor the maximum.
    private mutating func grow(toAtMost ceiling: Double) {
        guard limit < ceiling else { return }
        limit = min(policy.maximumLimit, ceiling, limit + limit.squareRoot() * policy.smoothing)
    }

    /// Whether the latency over the baseline is the upstream's own rather than a queue: answers
    /// started at three quarters or less of the highest concurrency seen since the recent latency
    /// rose (or at the minimum limit) keep most of its worst excess, `shortWindow` in a row.
    /// A queue as long as the concurrency over the upstream's capacity would shrink by at least
    /// the share the concurrency fell.
    private mutating func cuttingDoesNotHelp(latency: Double, inFlight: Int, baseline: Double) -> Bool {
        guard var episode = cutEpisode, episode.worstRecent > baseline else { return false }
        let share = Double(inFlight) / episode.worstInFlight
        guard share <= 0.75 || Double(inFlight) <= policy.minimumLimit else { return false }
        let kept = (latency - baseline) / (episode.worstRecent - baseline)
        episode.unhelped = kept >= (1 + min(share, 0.75)) / 2 ? episode.unhelped + 1 : 0
        cutEpisode = episode
        return episode.unhelped >= policy.shortWindow
    }

    /// Keeps `latency` among the recent ones and returns their `quantile`.
    private mutating func remember(_ latency: Double, quantile: Double) -> Double {
        if recent.count < policy.shortWindow {
            recent.append(latency)
        } else {
            recent[nextSlot] = latency
            nextSlot = (nextSlot + 1) % recent.count
        }
        let sorted = recent.sorted()
        let middle = sorted.count / 2
        if quantile == 0.5, sorted.count % 2 == 0 { return (sorted[middle - 1] + sorted[middle]) / 2 }
        return sorted[Int((Double(sorted.count - 1) * quantile).rounded())]
    }

    /// The upstream said it is overloaded (429), or stopped answering in time or accepting
    /// connections: back off multiplicatively, once per `overloadInterval`, so a burst of such
    /// answers counts as one sign, not hundreds.
    ///
    /// `saidByUpstream` is false for a timeout or a failed connect, whose cause may be this host:
    /// with its CPUs at least `maximumHostBusy` busy or its event loops `maximumHostLag` late, the
    /// gateway's own timers fire before it reads what the upstream sent, so that is no sign.
    public mutating func recordOverload(at now: Double, saidByUpstream: Bool = true, hostLag: Double = 0, hostBusy: Double = 0) {
        if !saidByUpstream, policy.hostIsShort(lag: hostLag, busy: hostBusy) { return }
        if let lastBackoff, now - lastBackoff < policy.overloadInterval { return }
        lastBackoff = now
        limit = max(policy.minimumLimit, limit * policy.overloadBackoff)
    }
}
