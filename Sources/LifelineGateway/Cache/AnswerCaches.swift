import Foundation
import LifelineCore
import LifelineStore
import LifelineWire
import Logging
import Synchronization

/// What a cache entry keeps: the answer's text and how it ended. Never the request's API key,
/// headers or ids: the caller is only in the entry's key, as a digest.
struct CachedAnswer: Sendable, Equatable {
    var text: String
    var finishReason: FinishReason
    var stopSequence: String?
    var usage: Usage

    /// What the entry costs, counted against `max_bytes`: the text plus a fixed share for the
    /// entry's key, fields and bookkeeping.
    var bytes: Int { text.utf8.count + (stopSequence?.utf8.count ?? 0) + 256 }

    /// Only whole answers are kept: ended by the model (stop, a stop sequence or the length
    /// limit), one choice of text, no tool calls.
    init?(_ answer: ChatResponse) {
        guard answer.choices.count == 1, let choice = answer.choices.first, choice.toolCalls.isEmpty,
              Self.keeps(choice.finishReason) else { return nil }
        self.init(text: choice.text, finishReason: choice.finishReason, stopSequence: answer.stopSequence, usage: answer.usage)
    }

    init(text: String, finishReason: FinishReason, stopSequence: String?, usage: Usage) {
        self.text = text
        self.finishReason = finishReason
        self.stopSequence = stopSequence
        self.usage = usage
    }

    static func keeps(_ reason: FinishReason) -> Bool { reason == .stop || reason == .length || reason == .stopSequence }

    /// The answer as a store row keeps it: text, finish reason, stop sequence and usage only.
    var stored: String {
        JSONCoding.encodeString(.object([
            "text": .string(text), "finish_reason": .string(finishReason.rawValue), "stop_sequence": stopSequence.map { .string($0) } ?? .null,
            "prompt_tokens": .number(Double(usage.promptTokens)), "completion_tokens": .number(Double(usage.completionTokens)),
        ]))
    }

    /// Reads a store row's answer back; nil for a row this version cannot read (or one that is
    /// not a whole answer), which then counts as absent.
    init?(stored: String) {
        guard let json = try? JSONCoding.decode(Array(stored.utf8)), let text = json["text"]?.stringValue,
              let reason = json["finish_reason"]?.stringValue.flatMap(FinishReason.init(rawValue:)), Self.keeps(reason),
              let prompt = json["prompt_tokens"]?.intValue, let completion = json["completion_tokens"]?.intValue else { return nil }
        self.init(text: text, finishReason: reason, stopSequence: json["stop_sequence"]?.stringValue,
                  usage: Usage(promptTokens: prompt, completionTokens: completion))
    }
}

/// Every public model's answer cache, in this process's memory, each bounded by its own
/// `models[].cache`. Models without one are never looked up. A model with `store: true` also
/// keeps its entries in the store: a memory miss reads it, and its rows outlive a restart and
/// answer on every instance that shares the store.
final class AnswerCaches: Sendable {
    private let caches: Mutex<[String: AnswerCache<CachedAnswer>]>
    private let metrics: GatewayMetrics
    /// The monotonic clock the memory caches age by.
    private let clock: @Sendable () -> Double
    /// Unix seconds, for store rows: they are read by other processes and after a restart.
    private let wallClock: @Sendable () -> Double
    private let store: any LifelineStore
    private let logger: Logger
    /// Whether a sweep of the store is under way (one at a time).
    private let sweeping = Mutex(false)
    /// How often expired store rows are removed.
    static let sweepIntervalSeconds = 60.0
    /// How long a request waits for the store's entry before it counts as a miss.
    static let storeLookupSeconds = 1.0

    init(config: LifelineConfig, metrics: GatewayMetrics, clock: @escaping @Sendable () -> Double, store: any LifelineStore,
         logger: Logger, wallClock: @escaping @Sendable () -> Double)
    {
        self.metrics = metrics
        self.clock = clock
        self.store = store
        self.logger = logger
        self.wallClock = wallClock
        caches = Mutex([:])
        reload(config)
    }

    /// Takes the models' cache settings: new caches start empty, removed ones are dropped,
    /// changed bounds apply at once.
    func reload(_ config: LifelineConfig) {
        let policies = Dictionary(config.models.compactMap { model in model.cache.map { (model.name, $0) } }, uniquingKeysWith: { first, _ in first })
        let sizes = caches.withLock { caches -> [(String, Int, Int, Int)] in
            caches = caches.filter { policies[$0.key] != nil }
            var sizes: [(String, Int, Int, Int)] = []
            for (model, policy) in policies {
                var cache = caches[model] ?? AnswerCache(policy: policy)
                let evicted = cache.update(policy: policy)
                caches[model] = cache
                sizes.append((model, cache.count, cache.bytes, evicted))
            }
            return sizes
        }
        for (model, entries, bytes, evicted) in sizes {
            metrics.cacheExported(model: model)
            metrics.cacheSize(model: model, entries: entries, bytes: bytes, evicted: evicted)
        }
    }

    func policy(for model: String) -> AnswerCachePolicy? { caches.withLock { $0[model]?.policy } }

    func lookup(_ key: String, model: String) -> AnswerCache<CachedAnswer>.Lookup {
        let now = clock()
        let (found, entries, bytes) = caches.withLock { caches -> (AnswerCache<CachedAnswer>.Lookup, Int, Int) in
            guard var cache = caches[model] else { return (.absent, 0, 0) }
            let found = cache.lookup(key, now: now)
            caches[model] = cache
            return (found, cache.count, cache.bytes)
        }
        if case .absent = found { metrics.cacheSize(model: model, entries: entries, bytes: bytes, evicted: 0) }
        return found
    }

    /// After a memory miss of a model with `store: true`: the store's entry, put into memory too
    /// (aged as the row is). A store that fails is logged and counts as a miss.
    func lookupStored(_ key: String, model: String) async -> AnswerCache<CachedAnswer>.Lookup {
        let (store, now) = (store, wallClock())
        // A store that is away must not hold the request up: past the bound it is a miss.
        let row: StoredCacheEntry?
        switch await StoreSync.within(Self.storeLookupSeconds, { try await store.cacheEntry(key: key, now: now) }) {
        case .success(let found): row = found
        case .failure(let error):
            logger.warning("answer cache: the store did not answer a lookup", metadata: ["model": .string(model), "error": .string("\(error)")])
            return .absent
        }
        guard let row, row.model == model, let answer = CachedAnswer(stored: row.answer) else { return .absent }
        let age = max(0, wallClock() - row.createdAt)
        memorize(answer, key: key, model: model, storedAt: clock() - age)
        // The memory cache now decides fresh or stale by its own policy, as for any entry.
        return lookup(key, model: model)
    }

    /// Keeps a whole answer in memory and, for a model with `store: true`, in the store: that
    /// write runs off the request path, and a failure is logged, never the request's.
    func store(_ answer: CachedAnswer, key: String, model: String) {
        guard let policy = memorize(answer, key: key, model: model, storedAt: clock()), policy.store else { return }
        let now = wallClock()
        let row = StoredCacheEntry(key: key, model: model, createdAt: now, expiresAt: now + policy.ttlSeconds,
                                   staleUntil: now + policy.ttlSeconds + policy.serveStaleOnErrorSeconds, size: answer.bytes,
                                   answer: answer.stored)
        let (store, logger) = (store, logger)
        Task.detached {
            do {
                try await store.put(row, maxRows: policy.maxEntries)
            } catch {
                logger.warning("answer cache: the store did not keep an entry", metadata: ["model": .string(model), "error": .string("\(error)")])
            }
        }
    }

    /// Inserts into the model's memory cache; returns its policy, or nil when it has no cache.
    @discardableResult
    private func memorize(_ answer: CachedAnswer, key: String, model: String, storedAt: Double) -> AnswerCachePolicy? {
        let now = clock()
        let sizes = caches.withLock { caches -> (Int, Int, Int, AnswerCachePolicy)? in
            guard var cache = caches[model] else { return nil }
            // Expired entries go as new ones come, a few at a time, so memory holds live answers.
            cache.removeExpired(now: now, limit: 8)
            let evicted = cache.insert(key, model: model, value: answer, bytes: answer.bytes, now: storedAt)
            caches[model] = cache
            return (cache.count, cache.bytes, evicted, cache.policy)
        }
        guard let (entries, bytes, evicted, policy) = sizes else { return nil }
        metrics.cacheSize(model: model, entries: entries, bytes: bytes, evicted: evicted)
        return policy
    }

    /// Removes the store's rows, every model's or one's (also of models that no longer keep
    /// entries there); returns how many.
    func purgeStored(model: String?) async throws -> Int {
        try await store.purgeCacheEntries(model: model)
    }

    /// Removes the store's rows past their stale window at `now` (Unix seconds); returns how many,
    /// or nil when the store failed (logged).
    @discardableResult
    func sweepStored(now: Double) async -> Int? {
        do {
            return try await store.removeExpiredCacheEntries(now: now)
        } catch {
            logger.warning("answer cache: the store did not remove expired entries", metadata: ["error": .string("\(error)")])
            return nil
        }
    }

    /// Starts a sweep of the store unless one is still running (from the periodic evaluator).
    func scheduleSweep() {
        guard sweeping.withLock({ running in
            if running { return false }
            running = true
            return true
        }) else { return }
        let now = wallClock()
        Task.detached { [self] in
            await sweepStored(now: now)
            sweeping.withLock { $0 = false }
        }
    }

    /// Removes every entry, or one model's; returns how many went.
    func purge(model: String?) -> Int {
        let results = caches.withLock { caches -> [(String, Int)] in
            var results: [(String, Int)] = []
            for name in caches.keys.sorted() where model == nil || model == name {
                results.append((name, caches[name]!.purge()))
            }
            return results
        }
        for (name, _) in results { metrics.cacheSize(model: name, entries: 0, bytes: 0, evicted: 0) }
        return results.map(\.1).reduce(0, +)
    }
}
