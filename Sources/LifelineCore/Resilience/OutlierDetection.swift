/// When a deployment is ejected from rotation, and for how long.
public struct OutlierDetectionPolicy: Sendable, Equatable {
    /// Consecutive failures (5xx, connect errors, timeouts) that eject a deployment.
    public var consecutiveFailures = 5
    /// Failure share over `failureRateWindow` that ejects, once `failureRateMinimumRequests` were seen.
    public var failureRateThreshold = 0.5
    public var failureRateMinimumRequests = 10
    public var failureRateWindow = 30.0
    /// The first ejection lasts this long; each further one doubles it, up to `maximumEjectionTime`.
    public var baseEjectionTime = 10.0
    public var maximumEjectionTime = 300.0
    /// At most this share of a model's deployments may be ejected at once, so a model is never
    /// emptied by ejection alone (a single deployment is never ejected).
    public var maximumEjectionPercent = 50.0
    /// Requests let through at once when an ejection ends; success closes the breaker.
    public var halfOpenTrials = 1

    public init() {}
}

/// One deployment's breaker: closed (in rotation), open (ejected until a time), or half-open
/// (ejection over, a few trial requests decide).
public struct CircuitBreaker: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case closed
        case open(until: Double)
        case halfOpen
    }

    public private(set) var state: State = .closed
    public private(set) var ejectionCount = 0
    /// Set from an upstream 429's Retry-After: not an ejection, just "not before".
    public private(set) var coolingUntil = 0.0
    private var consecutiveFailures = 0
    private var trialsInFlight = 0
    private var lastEjectionEnded = 0.0
    private var window: OutcomeWindow

    public init(policy: OutlierDetectionPolicy) {
        window = OutcomeWindow(length: policy.failureRateWindow)
    }

    /// The state with time applied: an open breaker whose time is up reads as half-open.
    public func state(at now: Double) -> State {
        if case .open(let until) = state, now >= until { return .halfOpen }
        return state
    }

    /// Whether routing should offer this deployment new requests now.
    public func isAvailable(at now: Double, policy: OutlierDetectionPolicy) -> Bool {
        guard now >= coolingUntil else { return false }
        switch state(at: now) {
        case .closed: return true
        case .open: return false
        case .halfOpen: return trialsInFlight < policy.halfOpenTrials
        }
    }

    /// In rotation with no sign of trouble: closed, not cooling off a 429, its last outcome not a
    /// failure, and recent failures under half the ejection threshold. A retry may go here for free.
    public func isHealthy(at now: Double, policy: OutlierDetectionPolicy) -> Bool {
        guard state(at: now) == .closed, now >= coolingUntil, consecutiveFailures == 0 else { return false }
        let (failures, total) = window.counts(at: now)
        return total < policy.failureRateMinimumRequests || Double(failures) / Double(total) < policy.failureRateThreshold / 2
    }

    /// Takes a slot for a request about to be sent; false if the breaker does not allow one now.
    public mutating func admit(at now: Double, policy: OutlierDetectionPolicy) -> Bool {
        guard isAvailable(at: now, policy: policy) else { return false }
        if case .open = state { state = .halfOpen }
        if state == .halfOpen { trialsInFlight += 1 }
        return true
    }

    public mutating func recordSuccess(at now: Double, policy: OutlierDetectionPolicy) {
        window.record(success: true, at: now)
        consecutiveFailures = 0
        if state == .halfOpen {
            state = .closed
            trialsInFlight = 0
            lastEjectionEnded = now
        } else if ejectionCount > 0, now - lastEjectionEnded > policy.maximumEjectionTime {
            // A long healthy stretch forgets past ejections, so the next one is short again.
            ejectionCount = 0
        }
    }

    /// Records a failure; returns true when it ejected the deployment. `mayEject` is the
    /// group's answer to "would one more ejection stay under the cap?".
    @discardableResult
    public mutating func recordFailure(at now: Double, policy: OutlierDetectionPolicy, mayEject: Bool) -> Bool {
        window.record(success: false, at: now)
        consecutiveFailures += 1
        if state(at: now) == .halfOpen {
            // A failed trial reopens at once, for longer.
            eject(at: now, policy: policy)
            return true
        }
        guard state == .closed, mayEject else { return false }
        let (failures, total) = window.counts(at: now)
        let rateTripped = total >= policy.failureRateMinimumRequests
            && Double(failures) / Double(total) >= policy.failureRateThreshold
        guard consecutiveFailures >= policy.consecutiveFailures || rateTripped else { return false }
        eject(at: now, policy: policy)
        return true
    }

    /// An upstream 429: keep new requests away until its Retry-After has passed.
    public mutating func recordRateLimited(at now: Double, retryAfter: Double) {
        coolingUntil = max(coolingUntil, now + max(0, retryAfter))
    }

    /// A successful active probe closes the breaker early.
    public mutating func recordProbeSuccess(at now: Double) {
        if state != .closed { lastEjectionEnded = now }
        state = .closed
        trialsInFlight = 0
        consecutiveFailures = 0
    }

    /// A trial that ended without an outcome (cancelled) frees its slot.
    public mutating func releaseTrial() {
        if trialsInFlight > 0 { trialsInFlight -= 1 }
    }

    private mutating func eject(at now: Double, policy: OutlierDetectionPolicy) {
        ejectionCount += 1
        let duration = min(policy.baseEjectionTime * Double(1 << min(ejectionCount - 1, 20)), policy.maximumEjectionTime)
        state = .open(until: now + duration)
        trialsInFlight = 0
        consecutiveFailures = 0
        window = OutcomeWindow(length: policy.failureRateWindow)
    }
}

/// Successes and failures over a sliding window, in one-second buckets.
struct OutcomeWindow: Sendable, Equatable {
    private var buckets: [(second: Int, failures: Int, total: Int)]

    init(length: Double) {
        buckets = Array(repeating: (-1, 0, 0), count: max(1, Int(length.rounded(.up))))
    }

    static func == (lhs: OutcomeWindow, rhs: OutcomeWindow) -> Bool {
        lhs.buckets.elementsEqual(rhs.buckets) { $0 == $1 }
    }

    mutating func record(success: Bool, at now: Double) {
        let second = Int(now.rounded(.down))
        let slot = ((second % buckets.count) + buckets.count) % buckets.count
        if buckets[slot].second != second { buckets[slot] = (second, 0, 0) }
        buckets[slot].total += 1
        if !success { buckets[slot].failures += 1 }
    }

    func counts(at now: Double) -> (failures: Int, total: Int) {
        let second = Int(now.rounded(.down))
        var failures = 0
        var total = 0
        for bucket in buckets where bucket.second > second - buckets.count && bucket.second <= second {
            failures += bucket.failures
            total += bucket.total
        }
        return (failures, total)
    }
}

/// The breakers of one model's deployments, with the cap on how many may be ejected at once.
public struct OutlierDetector: Sendable, Equatable {
    public let policy: OutlierDetectionPolicy
    public private(set) var breakers: [CircuitBreaker]

    public init(count: Int, policy: OutlierDetectionPolicy) {
        self.policy = policy
        breakers = Array(repeating: CircuitBreaker(policy: policy), count: count)
    }

    public func isAvailable(_ index: Int, at now: Double) -> Bool { breakers[index].isAvailable(at: now, policy: policy) }

    public func isHealthy(_ index: Int, at now: Double) -> Bool { breakers[index].isHealthy(at: now, policy: policy) }

    public mutating func admit(_ index: Int, at now: Double) -> Bool { breakers[index].admit(at: now, policy: policy) }

    public mutating func recordSuccess(_ index: Int, at now: Double) { breakers[index].recordSuccess(at: now, policy: policy) }

    /// Returns true when this failure ejected the deployment.
    @discardableResult
    public mutating func recordFailure(_ index: Int, at now: Double) -> Bool {
        let ejected = breakers.indices.filter { $0 != index && breakers[$0].state(at: now) != .closed }.count
        let mayEject = Double(ejected + 1) * 100 <= policy.maximumEjectionPercent * Double(breakers.count)
        return breakers[index].recordFailure(at: now, policy: policy, mayEject: mayEject)
    }

    public mutating func recordRateLimited(_ index: Int, at now: Double, retryAfter: Double) {
        breakers[index].recordRateLimited(at: now, retryAfter: retryAfter)
    }

    public mutating func recordProbeSuccess(_ index: Int, at now: Double) { breakers[index].recordProbeSuccess(at: now) }

    public mutating func releaseTrial(_ index: Int) { breakers[index].releaseTrial() }
}
