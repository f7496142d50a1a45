import LifelineCore
import LifelineWire
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
}

/// Every public model's answer cache, in this process's memory, each bounded by its own
/// `models[].cache`. Models without one are never looked up.
final class AnswerCaches: Sendable {
    private let caches: Mutex<[String: AnswerCache<CachedAnswer>]>
    private let metrics: GatewayMetrics
    private let clock: @Sendable () -> Double

    init(config: LifelineConfig, metrics: GatewayMetrics, clock: @escaping @Sendable () -> Double) {
        self.metrics = metrics
        self.clock = clock
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

    func store(_ answer: CachedAnswer, key: String, model: String) {
        let now = clock()
        let sizes = caches.withLock { caches -> (Int, Int, Int)? in
            guard var cache = caches[model] else { return nil }
            // Expired entries go as new ones come, a few at a time, so memory holds live answers.
            cache.removeExpired(now: now, limit: 8)
            let evicted = cache.insert(key, model: model, value: answer, bytes: answer.bytes, now: now)
            caches[model] = cache
            return (cache.count, cache.bytes, evicted)
        }
        if let (entries, bytes, evicted) = sizes { metrics.cacheSize(model: model, entries: entries, bytes: bytes, evicted: evicted) }
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
