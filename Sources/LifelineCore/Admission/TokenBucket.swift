/// A token bucket: holds up to `capacity`, refills `capacity` per `period` seconds evenly.
/// Tokens may go negative when a reservation is reconciled upward, which delays the next admission.
public struct TokenBucket: Sendable, Equatable {
    public let capacity: Double
    public let period: Double
    public private(set) var tokens: Double
    private var updated: Double

    public init(capacity: Double, period: Double = 60, now: Double) {
        self.capacity = capacity
        self.period = period
        tokens = capacity
        updated = now
    }

    private var ratePerSecond: Double { capacity / period }

    public mutating func refill(at now: Double) {
        guard now > updated else { return }
        tokens = min(capacity, tokens + (now - updated) * ratePerSecond)
        updated = now
    }

    /// Takes `amount` if the bucket holds that much now.
    public mutating func take(_ amount: Double, at now: Double) -> Bool {
        refill(at: now)
        guard tokens >= amount else { return false }
        tokens -= amount
        return true
    }

    /// Adjusts after the fact: positive returns tokens (up to capacity), negative takes more.
    public mutating func adjust(by amount: Double, at now: Double) {
        refill(at: now)
        tokens = min(capacity, tokens + amount)
    }

    /// Seconds until `amount` tokens are available (0 if they are now).
    public func secondsUntil(_ amount: Double, at now: Double) -> Double {
        var copy = self
        copy.refill(at: now)
        guard copy.tokens < amount else { return 0 }
        return (min(amount, capacity) - copy.tokens) / ratePerSecond
    }

    /// Seconds until the bucket is full again (OpenAI's `x-ratelimit-reset-*`).
    public func secondsUntilFull(at now: Double) -> Double { secondsUntil(capacity, at: now) }

    public func available(at now: Double) -> Double {
        var copy = self
        copy.refill(at: now)
        return copy.tokens
    }
}
