/// How many retries (failovers, resumptions and hedges alike) a model may spend.
public struct RetryBudgetPolicy: Sendable, Equatable {
    /// Retries allowed as a share of requests over the window.
    public var ratio = 0.2
    /// Retries always allowed per second, so a quiet service can still fail over.
    public var minimumPerSecond = 3.0
    public var window = 10.0
    /// A retry onto another, healthy deployment is free while that deployment's attempts in
    /// flight stay under this share of its concurrency limit.
    public var freeBelowLimitShare = 0.9

    public init() {}
}

/// The deployment a retry would go to, as routing sees it now.
public struct RetryTarget: Sendable, Equatable {
    /// The retry would go back to the deployment that just failed.
    public var failedJustNow: Bool
    /// In rotation with no sign of trouble: breaker closed, not cooling off a 429, and few
    /// recent failures.
    public var healthy: Bool
    public var inFlight: Int
    public var limit: Int

    public init(failedJustNow: Bool, healthy: Bool, inFlight: Int, limit: Int) {
        self.failedJustNow = failedJustNow
        self.healthy = healthy
        self.inFlight = inFlight
        self.limit = limit
    }
}

/// Bounds retries so that an outage cannot multiply the load on what is left (the
/// retry-budget idea from Envoy and Finagle), without refusing the retries that cost nothing.
///
/// A retry onto another deployment that is healthy and has room under its own concurrency
/// limit is granted outright: its cost is a slot at that deployment, which its limit already
/// bounds, and it is exactly the retry that saves a request when one provider dies with many
/// streams open. Every other retry (back to the deployment that failed, onto one that is
/// failing too or close to its limit) spends the shared budget: a share of recent requests,
/// with a small floor per second. Counts live in one-second buckets.
public struct RetryBudget: Sendable, Equatable {
    public enum Grant: Sendable, Equatable {
        /// Onto a healthy deployment with room: not charged to the budget.
        case free
        /// Charged to the budget.
        case budgeted
        /// The budget is spent and the target is not one a retry may take for free.
        case refused
    }

    public let policy: RetryBudgetPolicy
    private var requests: SlidingCounter
    private var retries: SlidingCounter

    public init(policy: RetryBudgetPolicy) {
        self.policy = policy
        requests = SlidingCounter(length: policy.window)
        retries = SlidingCounter(length: policy.window)
    }

    /// Counts a new client request.
    public mutating func recordRequest(at now: Double) { requests.add(at: now) }

    /// Budgeted retries still allowed in the window right now.
    public func available(at now: Double) -> Int {
        let allowed = max(policy.minimumPerSecond * policy.window, policy.ratio * Double(requests.total(at: now)))
        return max(0, Int(allowed.rounded(.down)) - retries.total(at: now))
    }

    /// Whether a retry onto `target` may go now; a budgeted grant is spent at once.
    public mutating func grant(onto target: RetryTarget?, at now: Double) -> Grant {
        if let target, isFree(target) { return .free }
        guard available(at: now) > 0 else { return .refused }
        retries.add(at: now)
        return .budgeted
    }

    /// Spends one budgeted retry if the budget has one.
    public mutating func tryRetry(at now: Double) -> Bool { grant(onto: nil, at: now) != .refused }

    private func isFree(_ target: RetryTarget) -> Bool {
        !target.failedJustNow && target.healthy && Double(target.inFlight) < Double(target.limit) * policy.freeBelowLimitShare
    }
}

/// A count over a sliding window of one-second buckets.
struct SlidingCounter: Sendable, Equatable {
    private var seconds: [Int]
    private var counts: [Int]

    init(length: Double) {
        let size = max(1, Int(length.rounded(.up)))
        seconds = Array(repeating: -1, count: size)
        counts = Array(repeating: 0, count: size)
    }

    mutating func add(at now: Double) {
        let second = Int(now.rounded(.down))
        let slot = ((second % seconds.count) + seconds.count) % seconds.count
        if seconds[slot] != second { seconds[slot] = second; counts[slot] = 0 }
        counts[slot] += 1
    }

    func total(at now: Double) -> Int {
        let second = Int(now.rounded(.down))
        var total = 0
        for slot in seconds.indices where seconds[slot] > second - seconds.count && seconds[slot] <= second { total += counts[slot] }
        return total
    }
}

/// "Full jitter" backoff: a random wait between zero and an exponentially growing cap, so
/// retries from many clients spread out instead of arriving together.
public struct Backoff: Sendable, Equatable {
    public var base = 0.025
    public var maximum = 1.0

    public init(base: Double = 0.025, maximum: Double = 1.0) {
        self.base = base
        self.maximum = maximum
    }

    /// The wait before retry number `retry` (1 for the first retry).
    public func delay(beforeRetry retry: Int, using random: inout some RandomNumberGenerator) -> Double {
        let cap = min(maximum, base * Double(1 << min(max(retry - 1, 0), 20)))
        return Double.random(in: 0...cap, using: &random)
    }
}
