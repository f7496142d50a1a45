/// Bounds for the adaptive concurrency limit.
public struct ConcurrencyLimitPolicy: Sendable, Equatable {
    public var initialLimit = 64.0
    public var minimumLimit = 4.0
    public var maximumLimit = 2048.0
    /// Latency may grow to this multiple of its long-term average before the limit shrinks.
    public var tolerance = 1.5
    /// Share of each new estimate blended into the limit.
    public var smoothing = 0.2
    /// Samples in the long-term latency average.
    public var longWindow = 600.0

    public init() {}
}

/// A Gradient2-style adaptive concurrency limit (after Netflix's concurrency-limits).
///
/// It compares the latency of each finished request (time to first token for streams) with a
/// slow-moving average: while they match, the limit grows by about √limit per sample; when
/// latency rises above `tolerance` × the average — queueing somewhere downstream — the
/// limit is multiplied by the ratio (never below half) and so shrinks. A limit that is not being
/// used (fewer than half its slots busy) does not grow.
public struct GradientConcurrencyLimit: Sendable, Equatable {
    public let policy: ConcurrencyLimitPolicy
    public private(set) var limit: Double
    private var longLatency: Double?
    private var samples = 0.0

    public init(policy: ConcurrencyLimitPolicy) {
        self.policy = policy
        limit = policy.initialLimit
    }

    /// Whole slots available now.
    public var slots: Int { max(1, Int(limit.rounded(.down))) }

    /// Feeds one finished request's latency, with how many requests were in flight when it started.
    public mutating func record(latency: Double, inFlight: Int) {
        guard latency > 0 else { return }
        samples += 1
        let weight = 1 / min(samples, policy.longWindow)
        var long = longLatency.map { $0 * (1 - weight) + latency * weight } ?? latency
        // Let the average drift down quickly after a slow period, so recovery is not held back.
        if long / latency > 2 { long *= 0.95 }
        longLatency = long
        if Double(inFlight) < limit / 2 { return }
        let gradient = max(0.5, min(1.0, policy.tolerance * long / latency))
        let proposed = limit * gradient + limit.squareRoot()
        limit = limit * (1 - policy.smoothing) + proposed * policy.smoothing
        limit = min(policy.maximumLimit, max(policy.minimumLimit, limit))
    }
}
