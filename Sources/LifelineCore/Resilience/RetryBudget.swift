/// How many retries (failovers, resumptions and hedges alike) a model may spend.
public struct RetryBudgetPolicy: Sendable, Equatable {
    /// Retries allowed as a share of requests over the window.
    public var ratio = 0.2
    /// Retries always allowed per second, so a quiet service can still fail over.
    public var minimumPerSecond = 3.0
    public var window = 10.0

    public init() {}
}

/// Caps retries at a share of live requests, so an outage cannot multiply the load on what is
/// left (the retry-budget idea from Envoy and Finagle). Counts live in one-second buckets.
public struct RetryBudget: Sendable, Equatable {
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

    /// Retries still allowed in the window right now.
    public func available(at now: Double) -> Int {
        let allowed = max(policy.minimumPerSecond * policy.window, policy.ratio * Double(requests.total(at: now)))
        return max(0, Int(allowed.rounded(.down)) - retries.total(at: now))
    }

    /// Spends one retry if the budget has one.
    public mutating func tryRetry(at now: Double) -> Bool {
        guard available(at: now) > 0 else { return false }
        retries.add(at: now)
        return true
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
