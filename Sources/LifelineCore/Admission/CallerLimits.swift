/// One caller's limits (a key, or the anonymous caller). Nil means unlimited.
public struct CallerLimitPolicy: Sendable, Equatable {
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?
    public var maxConcurrency: Int?
    /// Tokens allowed per budget period.
    public var budgetTokens: Int?

    public init(requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, maxConcurrency: Int? = nil, budgetTokens: Int? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.maxConcurrency = maxConcurrency
        self.budgetTokens = budgetTokens
    }
}

/// Why a caller was refused.
public enum LimitRefusal: Sendable, Equatable {
    case requestsPerMinute(retryAfter: Double)
    case tokensPerMinute(retryAfter: Double)
    case concurrency
    case budget

    public var reason: String {
        switch self {
        case .requestsPerMinute: "requests_per_minute"
        case .tokensPerMinute: "tokens_per_minute"
        case .concurrency: "concurrency"
        case .budget: "budget"
        }
    }
}

/// What a caller may still do, for the `x-ratelimit-*` headers.
public struct LimitSnapshot: Sendable, Equatable {
    public var requestLimit: Int?
    public var requestsRemaining: Int?
    public var requestsResetSeconds: Double?
    public var tokenLimit: Int?
    public var tokensRemaining: Int?
    public var tokensResetSeconds: Double?

    public init(requestLimit: Int? = nil, requestsRemaining: Int? = nil, requestsResetSeconds: Double? = nil, tokenLimit: Int? = nil,
                tokensRemaining: Int? = nil, tokensResetSeconds: Double? = nil)
    {
        self.requestLimit = requestLimit
        self.requestsRemaining = requestsRemaining
        self.requestsResetSeconds = requestsResetSeconds
        self.tokenLimit = tokenLimit
        self.tokensRemaining = tokensRemaining
        self.tokensResetSeconds = tokensResetSeconds
    }
}

/// A caller's rate limits, concurrency and budget: admit with an estimate, reconcile with the
/// actual usage when the request ends.
public struct CallerLimiter: Sendable, Equatable {
    public let policy: CallerLimitPolicy
    private var requests: TokenBucket?
    private var tokens: TokenBucket?
    public private(set) var inFlight = 0
    /// Tokens used in the current budget period.
    public private(set) var budgetUsed: Int

    public init(policy: CallerLimitPolicy, budgetUsed: Int = 0, now: Double) {
        self.policy = policy
        self.budgetUsed = budgetUsed
        requests = policy.requestsPerMinute.map { TokenBucket(capacity: Double($0), now: now) }
        tokens = policy.tokensPerMinute.map { TokenBucket(capacity: Double($0), now: now) }
    }

    /// Admits a request expected to use `estimatedTokens`, or says why not. Nothing is taken
    /// when the answer is a refusal.
    public mutating func admit(estimatedTokens: Int, at now: Double) -> LimitRefusal? {
        if let budget = policy.budgetTokens, budgetUsed >= budget { return .budget }
        if let maximum = policy.maxConcurrency, inFlight >= maximum { return .concurrency }
        if var bucket = requests, !bucket.take(1, at: now) {
            return .requestsPerMinute(retryAfter: bucket.secondsUntil(1, at: now))
        }
        if var bucket = tokens {
            // A request larger than the whole per-minute allowance is let through on a full bucket.
            let amount = min(Double(estimatedTokens), bucket.capacity)
            if !bucket.take(amount, at: now) {
                return .tokensPerMinute(retryAfter: bucket.secondsUntil(amount, at: now))
            }
            tokens = bucket
        }
        if requests != nil { _ = requests!.take(1, at: now) }
        inFlight += 1
        return nil
    }

    /// Ends an admitted request: returns or takes the difference between estimate and use.
    public mutating func complete(estimatedTokens: Int, actualTokens: Int, at now: Double) {
        inFlight = max(0, inFlight - 1)
        if tokens != nil {
            let reserved = min(Double(estimatedTokens), tokens!.capacity)
            tokens!.adjust(by: reserved - Double(actualTokens), at: now)
        }
        budgetUsed += actualTokens
    }

    public mutating func resetBudget(used: Int = 0) { budgetUsed = used }

    /// Takes in what other instances sharing the store used since the last call: their
    /// requests and tokens come out of this instance's buckets and count toward the budget, so
    /// every instance's buckets drain with the whole service's traffic and refill at the one
    /// configured rate. The overshoot is what arrives elsewhere between two reconciliations.
    public mutating func absorb(requests: Int, tokens: Int, at now: Double) {
        guard requests > 0 || tokens > 0 else { return }
        if self.requests != nil { self.requests!.adjust(by: -Double(requests), at: now) }
        if self.tokens != nil { self.tokens!.adjust(by: -Double(tokens), at: now) }
        budgetUsed += tokens
    }

    public func snapshot(at now: Double) -> LimitSnapshot {
        LimitSnapshot(
            requestLimit: policy.requestsPerMinute,
            requestsRemaining: requests.map { max(0, Int($0.available(at: now).rounded(.down))) },
            requestsResetSeconds: requests.map { $0.secondsUntilFull(at: now) },
            tokenLimit: policy.tokensPerMinute,
            tokensRemaining: tokens.map { max(0, Int($0.available(at: now).rounded(.down))) },
            tokensResetSeconds: tokens.map { $0.secondsUntilFull(at: now) })
    }
}
