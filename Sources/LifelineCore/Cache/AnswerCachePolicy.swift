/// How one public model's answer cache behaves (`models[].cache`); off unless configured.
public struct AnswerCachePolicy: Sendable, Equatable {
    /// Seconds an entry answers as a hit.
    public var ttlSeconds = 300.0
    /// Bounds of the in-memory cache; the least recently used entries go first.
    public var maxEntries = 1_000
    public var maxBytes = 16 * 1_024 * 1_024
    /// Seconds past its TTL an entry is kept to answer, marked stale, when every deployment fails.
    public var serveStaleOnErrorSeconds = 3_600.0
    /// Also cache requests sampled above temperature 0 without a seed (their answers vary upstream).
    public var cacheSampled = false
    /// One set of entries for every caller instead of one per API key.
    public var shared = false
    /// Also keep entries in the store (SQLite, or PostgreSQL shared by every instance): they
    /// outlive a restart and answer on every instance; bounded per model by `maxEntries`.
    public var store = false

    public init() {}

    /// Why a request is not looked up nor stored, or nil when it may be.
    ///
    /// A sampled request (temperature above 0, or absent: both APIs default to 1) has no single
    /// answer unless a seed fixes it; several choices or logprobs are not kept in an entry.
    public func bypassReason(temperature: Double?, seed: Int?, choiceCount: Int, logprobs: Bool) -> String? {
        if choiceCount > 1 { return "n above 1" }
        if logprobs { return "logprobs" }
        if !cacheSampled, seed == nil, (temperature ?? 1) > 0 { return "sampled without a seed" }
        return nil
    }
}

/// What the cache did for one request, as the `x-lifeline-cache` header and metrics name it.
public enum AnswerCacheResult: String, Sendable, CaseIterable {
    /// Answered from a fresh entry, without an upstream.
    case hit
    /// Looked up, not found fresh: the answer came from an upstream (and may be stored).
    case miss
    /// Every deployment failed, and an entry past its TTL but inside the stale window answered.
    case stale
    /// The request is not cacheable (sampled, several choices, logprobs).
    case bypass
}
