import Crypto
import Foundation
import LifelineCore
import LifelineStore
import LifelineWire
import Synchronization

/// Who is calling: a key, or the anonymous caller of `auth: optional`.
struct Caller: Sendable {
    static let anonymousID = "anonymous"
    var id: String
    var name: String
    var tier: Priority
    /// Public models allowed; empty means all.
    var models: [String]

    var isAnonymous: Bool { id == Self.anonymousID }

    /// The public models among `all` this caller may use, in their order.
    func usableModels(of all: [String]) -> [String] { models.isEmpty ? all : all.filter(models.contains) }
}

/// Lifeline's API keys: kept as hashes in the store, cached here with each caller's live limits.
///
/// Secrets begin with `sk-ll-` so secret scanners recognise them. A request's key is hashed and
/// looked up; the stored hash is then compared in constant time. Changes made through this
/// registry take effect at once on this instance.
final class KeyRegistry: Sendable {
    static let secretPrefix = "sk-ll-"

    private struct State {
        var keysByHash: [String: StoredKey] = [:]
        var limiters: [String: CallerLimiter] = [:]
        /// Start of the budget period each key's `budgetUsed` counts from.
        var periodStarts: [String: Date] = [:]
        var anonymous: CallerLimiter
        /// Other instances' usage already taken in, per caller and minute.
        var absorbed: [String: (minute: Int, requests: Int, tokens: Int)] = [:]
    }

    private let store: any LifelineStore
    private let state: Mutex<State>
    private let clock: @Sendable () -> Double
    private let wallClock: @Sendable () -> Date
    let mode: AuthConfig.Mode
    let anonymousTier: Priority

    private init(store: any LifelineStore, auth: AuthConfig, host: String, clock: @escaping @Sendable () -> Double,
                 wallClock: @escaping @Sendable () -> Date)
    {
        self.store = store
        self.clock = clock
        self.wallClock = wallClock
        mode = auth.effectiveMode(host: host)
        anonymousTier = auth.anonymousTier
        state = Mutex(State(anonymous: CallerLimiter(policy: auth.anonymousLimits, now: clock())))
    }

    /// Loads every key and its usage in the current budget period.
    static func load(store: any LifelineStore, auth: AuthConfig, host: String, clock: @escaping @Sendable () -> Double,
                     wallClock: @escaping @Sendable () -> Date = Date.init) async throws -> KeyRegistry
    {
        let registry = KeyRegistry(store: store, auth: auth, host: host, clock: clock, wallClock: wallClock)
        for key in try await store.keys() { try await registry.cache(key) }
        return registry
    }

    private func cache(_ key: StoredKey) async throws {
        let start = Self.periodStart(key.budgetPeriod, at: wallClock())
        let used = try await store.usage(since: Int(start.timeIntervalSince1970), keyID: key.id)[key.id]?.totalTokens ?? 0
        let now = clock()
        state.withLock { state in
            state.keysByHash[key.secretHash] = key
            state.limiters[key.id] = CallerLimiter(policy: Self.policy(of: key), budgetUsed: used, now: now)
            state.periodStarts[key.id] = start
        }
    }

    static func policy(of key: StoredKey) -> CallerLimitPolicy {
        CallerLimitPolicy(requestsPerMinute: key.requestsPerMinute, tokensPerMinute: key.tokensPerMinute,
                          maxConcurrency: key.maxConcurrency, budgetTokens: key.budgetTokens)
    }

    /// The UTC calendar day or month that `date` falls in.
    static func periodStart(_ period: String, at date: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let components = period == "day" ? calendar.dateComponents([.year, .month, .day], from: date)
                                         : calendar.dateComponents([.year, .month], from: date)
        return calendar.date(from: components) ?? date
    }

    static func hash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    var hasUsableKeys: Bool {
        let now = wallClock()
        return state.withLock { $0.keysByHash.values.contains { $0.revokedAt == nil && ($0.expiresAt ?? .distantFuture) > now } }
    }

    /// The caller behind a request's `Authorization: Bearer …` or `x-api-key`.
    ///
    /// Two different credentials are refused (400) rather than one picked: otherwise a junk
    /// `x-api-key` beside a valid bearer key would drop the key and run the request as anonymous.
    /// A Lifeline key (`sk-ll-…`) in either place is always checked; only a request that carries
    /// none runs as anonymous in `auth: optional`.
    func authenticate(bearer: String?, apiKey: String?) -> Result<Caller, GatewayError> {
        let bearer = bearer.flatMap { $0.isEmpty ? nil : $0 }
        let apiKey = apiKey.flatMap { $0.isEmpty ? nil : $0 }
        if let bearer, let apiKey, bearer != apiKey {
            return .failure(GatewayError(status: 400, message: "The request carries two different credentials, in 'Authorization: Bearer …' and in 'x-api-key'; send one key in one header.",
                                         param: "x-api-key", code: "conflicting_credentials"))
        }
        let presented = apiKey ?? bearer
        guard let presented, presented.hasPrefix(Self.secretPrefix) else {
            if mode == .required {
                return .failure(GatewayError(status: 401, message: "A Lifeline API key (sk-ll-…) is required; send it as 'Authorization: Bearer …' or 'x-api-key'.",
                                             code: "missing_api_key"))
            }
            return .success(Caller(id: Caller.anonymousID, name: "anonymous", tier: anonymousTier, models: []))
        }
        let digest = Self.hash(presented)
        let key = state.withLock { $0.keysByHash[digest] }
        guard let key, Self.constantTimeEqual(key.secretHash, digest) else {
            return .failure(GatewayError(status: 401, message: "Incorrect API key provided.", code: "invalid_api_key"))
        }
        if key.revokedAt != nil {
            return .failure(GatewayError(status: 401, message: "This API key has been revoked.", code: "revoked_api_key"))
        }
        if let expires = key.expiresAt, expires <= wallClock() {
            return .failure(GatewayError(status: 401, message: "This API key expired at \(ISO8601DateFormatter().string(from: expires)).",
                                         code: "expired_api_key"))
        }
        return .success(Caller(id: key.id, name: key.name, tier: Priority(name: key.tier) ?? .normal, models: key.models))
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8), right = Array(b.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    /// Admits a request against the caller's limits; nil when admitted.
    func admit(_ caller: Caller, estimatedTokens: Int) -> LimitRefusal? {
        let now = clock()
        let wall = wallClock()
        return state.withLock { state in
            if caller.isAnonymous { return state.anonymous.admit(estimatedTokens: estimatedTokens, at: now) }
            guard var limiter = state.limiters[caller.id] else { return nil }
            if let key = state.keysByHash.values.first(where: { $0.id == caller.id }) {
                let start = Self.periodStart(key.budgetPeriod, at: wall)
                if state.periodStarts[caller.id] != start {
                    limiter.resetBudget()
                    state.periodStarts[caller.id] = start
                }
            }
            let refusal = limiter.admit(estimatedTokens: estimatedTokens, at: now)
            state.limiters[caller.id] = limiter
            return refusal
        }
    }

    func complete(_ caller: Caller, estimatedTokens: Int, actualTokens: Int) {
        let now = clock()
        state.withLock { state in
            if caller.isAnonymous {
                state.anonymous.complete(estimatedTokens: estimatedTokens, actualTokens: actualTokens, at: now)
            } else {
                state.limiters[caller.id]?.complete(estimatedTokens: estimatedTokens, actualTokens: actualTokens, at: now)
            }
        }
    }

    func snapshot(_ caller: Caller) -> LimitSnapshot {
        let now = clock()
        return state.withLock { state in
            (caller.isAnonymous ? state.anonymous : state.limiters[caller.id])?.snapshot(at: now) ?? LimitSnapshot()
        }
    }

    struct NewKey: Sendable {
        var name: String
        var tier: Priority = .normal
        var limits = CallerLimitPolicy()
        var budgetPeriod = "month"
        var models: [String] = []
        var expiresAt: Date?
    }

    /// Creates a key; the secret is returned here and nowhere else, ever.
    func create(_ request: NewKey) async throws -> (key: StoredKey, secret: String) {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        var random = SystemRandomNumberGenerator()
        let secret = Self.secretPrefix + String((0..<40).map { _ in alphabet.randomElement(using: &random)! })
        let id = "key_" + String((0..<16).map { _ in "0123456789abcdef".randomElement(using: &random)! })
        let key = StoredKey(
            id: id, name: request.name, secretHash: Self.hash(secret), prefix: String(secret.prefix(10)), tier: request.tier.description,
            requestsPerMinute: request.limits.requestsPerMinute, tokensPerMinute: request.limits.tokensPerMinute,
            maxConcurrency: request.limits.maxConcurrency, budgetTokens: request.limits.budgetTokens,
            budgetPeriod: request.budgetPeriod, models: request.models, expiresAt: request.expiresAt, createdAt: wallClock())
        try await store.insert(key)
        try await cache(key)
        return (key, secret)
    }

    /// Revokes a key; effective for the next request on this instance.
    func revoke(id: String) async throws -> StoredKey? {
        let now = wallClock()
        guard try await store.revokeKey(id: id, at: now) else { return nil }
        return state.withLock { state -> StoredKey? in
            guard let hash = state.keysByHash.first(where: { $0.value.id == id })?.key else { return nil }
            state.keysByHash[hash]?.revokedAt = now
            return state.keysByHash[hash]
        }
    }

    /// Takes in keys created, revoked or changed elsewhere (another instance sharing the store,
    /// or the CLI's `--offline`); a key already cached keeps its live limiter.
    func refresh() async throws {
        let stored = try await store.keys()
        let known = state.withLock { state in Set(state.keysByHash.keys) }
        for key in stored where !known.contains(key.secretHash) { try await cache(key) }
        state.withLock { state in
            for key in stored where state.keysByHash[key.secretHash] != nil { state.keysByHash[key.secretHash] = key }
        }
    }

    /// Takes in what other instances sharing the store used in this minute and the last:
    /// the store's per-caller totals less what this instance wrote itself. Called every
    /// `storage.key_refresh_s`, so limits and budgets hold across instances to within what the
    /// others admit in about two refresh and flush intervals (see the overshoot bound in docs/several-instances.md).
    ///
    /// With `priming`, what is in the store now is only marked as known: at start, the budget
    /// already counts it (it was loaded with the keys).
    func reconcile(with recorder: UsageRecorder, priming: Bool = false) async throws {
        let current = Int(wallClock().timeIntervalSince1970) / 60 * 60
        let previous = current - 60
        let sincePrevious = try await store.usage(since: previous, keyID: nil)
        let sinceCurrent = try await store.usage(since: current, keyID: nil)
        var minutes: [(Int, [String: UsageTotals])] = [(current, sinceCurrent)]
        minutes.append((previous, sincePrevious.reduce(into: [:]) { totals, entry in
            var total = entry.value
            let later = sinceCurrent[entry.key] ?? UsageTotals()
            total.requests -= later.requests
            total.promptTokens -= later.promptTokens
            total.completionTokens -= later.completionTokens
            totals[entry.key] = total
        }))
        let now = clock()
        for (minute, totals) in minutes {
            let own = recorder.written(minute: minute)
            state.withLock { state in
                for (callerID, total) in totals {
                    let mine = own[callerID] ?? UsageTotals()
                    let mark = "\(callerID)@\(minute)"
                    let seen = state.absorbed[mark] ?? (minute, 0, 0)
                    let requests = max(seen.requests, total.requests - mine.requests)
                    let tokens = max(seen.tokens, total.totalTokens - mine.totalTokens)
                    guard requests > seen.requests || tokens > seen.tokens else { continue }
                    state.absorbed[mark] = (minute, requests, tokens)
                    if priming { continue }
                    if callerID == Caller.anonymousID {
                        state.anonymous.absorb(requests: requests - seen.requests, tokens: tokens - seen.tokens, at: now)
                    } else {
                        state.limiters[callerID]?.absorb(requests: requests - seen.requests, tokens: tokens - seen.tokens, at: now)
                    }
                }
            }
        }
        state.withLock { state in state.absorbed = state.absorbed.filter { $0.value.minute >= previous } }
    }

    func list() -> [StoredKey] {
        state.withLock { Array($0.keysByHash.values) }.sorted { $0.createdAt < $1.createdAt }
    }

    func key(id: String) -> StoredKey? { list().first { $0.id == id } }

    /// Tokens used in the key's current budget period (live, including requests not yet flushed).
    func budgetUsed(id: String) -> Int { state.withLock { $0.limiters[id]?.budgetUsed ?? 0 } }
}
