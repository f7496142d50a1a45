/// Bounds for the adaptive concurrency limit.
///
/// The defaults suit LLM traffic: thousands of long streams at once are ordinary, so a healthy
/// upstream starts with room for a thousand and the limit only learns down on evidence.
public struct ConcurrencyLimitPolicy: Sendable, Equatable {
    public var initialLimit = 1024.0
    public var minimumLimit = 16.0
    public var maximumLimit = 10_000.0
    /// The recent median latency may grow to this multiple of its long-term baseline before the
    /// limit shrinks.
    public var tolerance = 2.0
    /// Nor does it shrink while the median is within this many seconds of the baseline: a first
    /// token a quarter of a second later is no reason to refuse anyone, and for an upstream whose
    /// first token comes in milliseconds a ratio alone reads a busy host's scheduling as queueing.
    public var minimumQueueDelay = 0.25
    /// Share of each new estimate blended into the limit.
    public var smoothing = 0.2
    /// Samples in the recent median: a tail of slow answers (a busy core, a long prompt) moves a
    /// mean but not the median; half of them slow is a trend.
    public var shortWindow = 15
    /// Samples in the long-term latency baseline.
    public var longWindow = 600.0
    /// Each sign of overload (429, timeout, connection error) multiplies the limit by this,
    /// at most once per `overloadInterval` seconds.
    public var overloadBackoff = 0.9
    public var overloadInterval = 1.0
    /// A latency sample taken while the gateway's own event loops run at least this many seconds
    /// late is dropped: the delay is the gateway's (a CPU-short host relaying thousands of
    /// streams), not the upstream's, and a smaller limit would refuse a healthy upstream's traffic.
    public var maximumHostLag = 0.1

    public init() {}
}

/// How late the gateway's own scheduling runs, from probes that ask to sleep a fixed time and
/// note how much later they wake: the largest of the last `size` probes.
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
/// answer otherwise; never how long a stream lasts. The median of the recent ones is compared
/// with a slow baseline: while they match, the limit grows by about √limit per sample (while at
/// least half of it is in use); when the median and the sample climb above the queueing bound
/// (`tolerance` × the baseline, and at least `minimumQueueDelay` over it), the limit is
/// multiplied by their ratio (never below half), but never below the sample's own concurrency
/// times that ratio, so late answers cannot make it overshoot.
/// Overload the upstream reports outright (429s, timeouts, refused connections) shrinks it too.
public struct GradientConcurrencyLimit: Sendable, Equatable {
    public let policy: ConcurrencyLimitPolicy
    public private(set) var limit: Double
    /// The last `shortWindow` latencies, oldest overwritten first.
    private var recent: [Double] = []
    private var nextSlot = 0
    private var longLatency: Double?
    private var samples = 0.0
    private var lastBackoff: Double?

    public init(policy: ConcurrencyLimitPolicy) {
        self.policy = policy
        limit = policy.initialLimit
    }

    /// Whole slots available now.
    public var slots: Int { max(1, Int(limit.rounded(.down))) }

    /// Feeds one answer's latency (time to first token, or the whole answer when not streamed),
    /// with how many requests were in flight when it started, and how late the gateway's own
    /// scheduling runs now (`hostLag`, seconds): a sample taken while that is at least
    /// `maximumHostLag` says nothing about the upstream and is dropped.
    public mutating func record(latency: Double, inFlight: Int, hostLag: Double = 0) {
        guard latency > 0, hostLag < policy.maximumHostLag else { return }
        samples += 1
        let short = remember(latency)
        let longWeight = 1 / min(samples, policy.longWindow)
        var long = longLatency.map { $0 * (1 - longWeight) + latency * longWeight } ?? latency
        // Let the baseline drift down quickly after a slow period, so recovery is not held back.
        if long / short > 2 { long *= 0.95 }
        longLatency = long
        let bound = max(policy.tolerance * long, long + policy.minimumQueueDelay)
        let gradient = max(0.5, min(1.0, bound / short))
        // Growth needs use: an idle limit proves nothing. Queueing shrinks it either way.
        let underused = Double(inFlight) < limit / 2
        if gradient >= 1 {
            guard !underused else { return }
            limit += limit.squareRoot() * policy.smoothing
        } else {
            // A sample judges the concurrency it ran at: the limit never falls below that
            // concurrency times the gradient. Answers that started before the last cut arrive
            // late, and a limit already under their floor has acted on their news; a fast
            // answer is no news of queueing, however slow the median still is.
            let floor = max(policy.minimumLimit, Double(inFlight) * gradient)
            guard limit > floor, latency > bound else { return }
            let proposed = limit * gradient + (underused ? 0 : limit.squareRoot())
            limit = max(floor, limit * (1 - policy.smoothing) + proposed * policy.smoothing)
        }
        limit = min(policy.maximumLimit, max(policy.minimumLimit, limit))
    }

    /// Keeps `latency` among the recent ones and returns their median.
    private mutating func remember(_ latency: Double) -> Double {
        if recent.count < policy.shortWindow {
            recent.append(latency)
        } else {
            recent[nextSlot] = latency
            nextSlot = (nextSlot + 1) % recent.count
        }
        let sorted = recent.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// The upstream said it is overloaded (429), or stopped answering in time or accepting
    /// connections: back off multiplicatively, once per `overloadInterval`, so a burst of such
    /// answers counts as one sign, not hundreds.
    public mutating func recordOverload(at now: Double) {
        if let lastBackoff, now - lastBackoff < policy.overloadInterval { return }
        lastBackoff = now
        limit = max(policy.minimumLimit, limit * policy.overloadBackoff)
    }
}
