import Foundation
import LifelineCore

/// An API key as stored: never the secret, only its SHA-256 hash and a display prefix.
public struct StoredKey: Sendable, Equatable {
    public var id: String
    public var name: String
    /// Hex SHA-256 of the secret.
    public var secretHash: String
    /// The first characters of the secret, to recognise it in lists.
    public var prefix: String
    public var tier: String
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?
    public var maxConcurrency: Int?
    public var budgetTokens: Int?
    /// `day` or `month` (UTC calendar periods).
    public var budgetPeriod: String
    /// Public models the key may use; empty means all.
    public var models: [String]
    public var expiresAt: Date?
    public var createdAt: Date
    public var revokedAt: Date?

    public init(id: String, name: String, secretHash: String, prefix: String, tier: String, requestsPerMinute: Int? = nil,
                tokensPerMinute: Int? = nil, maxConcurrency: Int? = nil, budgetTokens: Int? = nil, budgetPeriod: String = "month",
                models: [String] = [], expiresAt: Date? = nil, createdAt: Date, revokedAt: Date? = nil)
    {
        self.id = id
        self.name = name
        self.secretHash = secretHash
        self.prefix = prefix
        self.tier = tier
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.maxConcurrency = maxConcurrency
        self.budgetTokens = budgetTokens
        self.budgetPeriod = budgetPeriod
        self.models = models
        self.expiresAt = expiresAt
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

/// Usage of one key in one minute; rows with the same key and minute add up.
public struct UsageRecord: Sendable, Equatable {
    public var keyID: String
    /// Unix seconds at the start of the minute.
    public var minute: Int
    public var requests: Int
    public var promptTokens: Int
    public var completionTokens: Int

    public init(keyID: String, minute: Int, requests: Int, promptTokens: Int, completionTokens: Int) {
        self.keyID = keyID
        self.minute = minute
        self.requests = requests
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }
}

public struct UsageTotals: Sendable, Equatable {
    public var requests = 0
    public var promptTokens = 0
    public var completionTokens = 0
    public var totalTokens: Int { promptTokens + completionTokens }
    public init() {}
}

public enum StoreError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The file was written by a newer Lifeline; refusing protects its data.
    case newerSchema(found: Int, supported: Int, path: String)
    /// The file is not a readable SQLite database.
    case unreadable(path: String, detail: String)
    case duplicate(String)

    public var description: String {
        switch self {
        case .newerSchema(let found, let supported, let path):
            "\(path) has schema version \(found), newer than this Lifeline supports (\(supported)); upgrade Lifeline or use another --data-dir. Nothing was changed."
        case .unreadable(let path, let detail):
            "\(path) is not a readable Lifeline database (\(detail)); restore it from a backup or move it aside. Nothing was changed."
        case .duplicate(let what):
            "\(what) already exists"
        }
    }
}

/// Where Lifeline keeps what must outlive a restart. SQLite is the embedded default; a
/// PostgreSQL implementation shares the protocol and its test suite.
public protocol LifelineStore: Sendable {
    func keys() async throws -> [StoredKey]
    func insert(_ key: StoredKey) async throws
    /// Marks a key revoked; false if no such key or already revoked.
    func revokeKey(id: String, at: Date) async throws -> Bool
    /// Adds usage rows (same key and minute add up).
    func record(_ usage: [UsageRecord]) async throws
    /// Usage per key since `minute` (Unix seconds), or of one key.
    func usage(since minute: Int, keyID: String?) async throws -> [String: UsageTotals]
    /// Replaces this instance's rows for these buckets (same instance, series and index) and
    /// forgets every instance's rows whose `keepUntil` is before `now`.
    func publish(_ buckets: [SharedBucket], now: Double) async throws
    /// Rows written after `since` (every row for nil), with the store's clock when read: the
    /// next call passes that back (less a margin for writes committed late).
    func sharedBuckets(changedSince since: Double?) async throws -> (buckets: [SharedBucket], now: Double)
    /// Takes, or confirms it still holds, the lock behind the singleton duties (incident
    /// automation, alert evaluation, notifications, maintenance); true while this process holds it.
    func lead() async throws -> Bool
    /// Gives the lock up (at shutdown, or when the store stopped answering) so another instance takes over.
    func resign() async
    /// Whether several instances share this store, so state others change must be read back.
    var isShared: Bool { get }
    /// Every incident with its updates, oldest first.
    func incidents() async throws -> [Incident]
    /// Inserts or replaces an incident and its updates.
    func save(_ incident: Incident) async throws
    /// Every maintenance with its updates, by start time.
    func maintenances() async throws -> [Maintenance]
    /// Inserts or replaces a maintenance and its updates.
    func save(_ maintenance: Maintenance) async throws
    /// Adds seconds to each component's day (same component and day add up).
    func addUptime(_ records: [UptimeRecord]) async throws
    /// Days from `day` on, every component.
    func uptime(since day: Int) async throws -> [UptimeRecord]
    /// Firing alerts' states by `slo:rule`.
    func loadAlerts() async throws -> [String: SavedAlert]
    /// Replaces every saved alert state.
    func saveAlerts(_ alerts: [String: SavedAlert]) async throws
    /// Adds a delivery; false (and nothing written) when one with the same key exists.
    func insert(_ delivery: StoredDelivery) async throws -> Bool
    /// Takes a pending delivery for its first attempt (attempts 0 → 1); false when a process
    /// already has, so of two instances (a new leader, an old one cut off) only one sends it.
    func claim(deliveryID: String) async throws -> Bool
    /// Replaces a delivery's status, attempts and outcome.
    func update(_ delivery: StoredDelivery) async throws
    /// The newest deliveries first, at most `limit`.
    func deliveries(limit: Int) async throws -> [StoredDelivery]
    /// The keys of the newest deliveries, at most `limit`: what must not be sent again.
    func deliveryKeys(limit: Int) async throws -> [String]
    /// Deliveries still pending (queued or in flight when the process stopped).
    func pendingDeliveries() async throws -> [StoredDelivery]
    /// Every subscriber, oldest first.
    func subscribers() async throws -> [Subscriber]
    /// Inserts or replaces a subscriber.
    func save(_ subscriber: Subscriber) async throws
    /// Removes a subscriber; false if there was none.
    func removeSubscriber(id: String) async throws -> Bool
    /// Adds traffic minutes (same scope and minute add up; the peak is the larger) and forgets
    /// minutes older than `trafficKeptDays`.
    func record(traffic: [TrafficMinute]) async throws
    /// Traffic minutes from `minute` (Unix seconds) on, every scope.
    func traffic(since minute: Int) async throws -> [TrafficMinute]
    /// Keeps a Responses answer (replacing one with its id), then forgets those expired by
    /// `now` and any saved before the last `limit` saves.
    func save(_ response: StoredResponse, now: Double, limit: Int) async throws
    /// The stored response `id` of `owner`, unless it has expired by `now`; another owner's is nil.
    func storedResponse(id: String, owner: String, now: Double) async throws -> StoredResponse?
    /// Forgets the stored response `id` of `owner`; false if there was none (or it is another owner's).
    func deleteStoredResponse(id: String, owner: String) async throws -> Bool
    /// Keeps an answer cache entry (replacing one with its key), then forgets the oldest entries
    /// of its model beyond `maxRows`.
    func put(_ entry: StoredCacheEntry, maxRows: Int) async throws
    /// The entry under `key` unless it is past its stale window at `now`.
    func cacheEntry(key: String, now: Double) async throws -> StoredCacheEntry?
    /// Forgets every entry, or those of one public model; returns how many.
    func purgeCacheEntries(model: String?) async throws -> Int
    /// Forgets the entries past their stale window at `now`; returns how many.
    func removeExpiredCacheEntries(now: Double) async throws -> Int
    func close() async throws
}

/// One answer cache entry kept in the store (`models[].cache.store`), so it outlives a restart
/// and, in PostgreSQL, answers on every instance. Times are Unix seconds.
public struct StoredCacheEntry: Sendable, Equatable {
    /// The cache key: a SHA-256 hex digest of the request and the caller's scope.
    public var key: String
    public var model: String
    public var createdAt: Double
    /// Fresh until then (`ttl_s`), usable as stale until `staleUntil`, then removed.
    public var expiresAt: Double
    public var staleUntil: Double
    /// Bytes counted against `max_bytes` in memory.
    public var size: Int
    /// The answer as JSON (text, finish reason, stop sequence, usage); never a key or header.
    public var answer: String

    public init(key: String, model: String, createdAt: Double, expiresAt: Double, staleUntil: Double, size: Int, answer: String) {
        self.key = key
        self.model = model
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.staleUntil = staleUntil
        self.size = size
        self.answer = answer
    }
}

/// One answer of the Responses API kept for `GET /v1/responses/{id}` and `previous_response_id`.
public struct StoredResponse: Sendable, Equatable {
    /// `resp_…`, random: the only handle to it.
    public var id: String
    /// The caller (key id, or `anonymous`) that created it; no other caller reads or continues it.
    public var owner: String
    /// Unix seconds.
    public var createdAt: Double
    public var expiresAt: Double
    /// The response object as JSON text.
    public var response: String
    /// The conversation through this answer (input and output items) as a JSON array text.
    public var conversation: String

    public init(id: String, owner: String, createdAt: Double, expiresAt: Double, response: String, conversation: String) {
        self.id = id
        self.owner = owner
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.response = response
        self.conversation = conversation
    }
}

/// One instance's count in one bucket of one shared series (an SLO's ring, a status
/// component's window), as the store keeps it. An instance writes only its own rows, with
/// absolute counts; readers add up the rows of the others.
public struct SharedBucket: Sendable, Equatable {
    public var instance: String
    public var series: String
    public var width: Double
    public var index: Int64
    public var good: Int
    public var total: Int
    /// Wall-clock seconds after which no window reads the bucket: then the store forgets it.
    public var keepUntil: Double

    public init(instance: String, series: String, width: Double, index: Int64, good: Int, total: Int, keepUntil: Double) {
        self.instance = instance
        self.series = series
        self.width = width
        self.index = index
        self.good = good
        self.total = total
        self.keepUntil = keepUntil
    }
}

/// How much traffic history capacity planning keeps: two weeks of minutes.
public let trafficKeptDays = 15

/// Deliveries kept in the log; older ones are pruned as new ones arrive.
public let storedDeliveriesKept = 50_000

/// An incident's evidence as both stores keep it: one JSON text column.
extension IncidentEvidence {
    func stored() throws -> String { String(decoding: try JSONEncoder().encode(self), as: UTF8.self) }

    /// Nil for no text or text that does not decode (the incident then starts with empty evidence).
    init?(stored text: String?) {
        guard let text, let decoded = try? JSONDecoder().decode(IncidentEvidence.self, from: Data(text.utf8)) else { return nil }
        self = decoded
    }
}

/// One webhook delivery (an alert notification or a subscriber update) as the log keeps it.
/// `key` is unique: the same alert transition, or the same update, is never sent twice to a target.
public struct StoredDelivery: Sendable, Equatable {
    public var id: String
    public var key: String
    /// `alert` or `subscriber`.
    public var kind: String
    /// The webhook's name, or the subscriber's id.
    public var target: String
    public var format: String
    /// The alert episode, incident or maintenance id.
    public var subjectID: String
    /// The alert's name, or the incident's or maintenance's.
    public var subject: String
    /// `firing`/`resolved`, or the update's id.
    public var event: String
    /// `pending`, `delivered`, `failed` or `suppressed`.
    public var status: String
    public var attempts: Int
    public var responseStatus: Int?
    public var error: String?
    /// The JSON sent: kept so a delivery queued before a restart can still go out.
    public var body: String
    public var createdAt: Double
    public var finishedAt: Double?

    public init(id: String, key: String, kind: String, target: String, format: String, subjectID: String, subject: String, event: String,
                status: String, attempts: Int = 0, responseStatus: Int? = nil, error: String? = nil, body: String, createdAt: Double,
                finishedAt: Double? = nil)
    {
        self.id = id
        self.key = key
        self.kind = kind
        self.target = target
        self.format = format
        self.subjectID = subjectID
        self.subject = subject
        self.event = event
        self.status = status
        self.attempts = attempts
        self.responseStatus = responseStatus
        self.error = error
        self.body = body
        self.createdAt = createdAt
        self.finishedAt = finishedAt
    }
}

/// Seconds one component spent in each state on one UTC day; rows for the same day add up.
/// Uptime follows Statuspage: a major outage counts fully, a partial outage for 30 %.
public struct UptimeRecord: Sendable, Equatable {
    public var component: String
    /// Days since 1970-01-01 (UTC).
    public var day: Int
    public var observedSeconds: Double
    public var degradedSeconds: Double
    public var partialOutageSeconds: Double
    public var majorOutageSeconds: Double
    public var maintenanceSeconds: Double

    public init(component: String, day: Int, observedSeconds: Double = 0, degradedSeconds: Double = 0, partialOutageSeconds: Double = 0,
                majorOutageSeconds: Double = 0, maintenanceSeconds: Double = 0)
    {
        self.component = component
        self.day = day
        self.observedSeconds = observedSeconds
        self.degradedSeconds = degradedSeconds
        self.partialOutageSeconds = partialOutageSeconds
        self.majorOutageSeconds = majorOutageSeconds
        self.maintenanceSeconds = maintenanceSeconds
    }

    /// Share of the observed time the component was up; nil for a day with nothing observed.
    public var uptime: Double? {
        guard observedSeconds > 0 else { return nil }
        return max(0, 1 - (majorOutageSeconds + 0.3 * partialOutageSeconds) / observedSeconds)
    }
}

/// How long rows of the SLI buckets kept before schema 6 (one process's, with no instance) are
/// kept: longer than any SLO period.
let earlierBucketsKeptSeconds = 400.0 * 86_400

/// Schema 6 after each store's own `CREATE TABLE shared_buckets`, in the SQL both speak: its
/// indexes, and the buckets kept before (one process's, without an instance) moved in as the rows
/// of an earlier instance, named as `SLOEvaluator.series(slo:ring:)` names them.
/// Schema 7: stored Responses answers, found by id and owner, aged out by expiry (this index)
/// and by count (each store's insertion sequence, so trimming never scans the table).
let storedResponsesIndexes = [
    "CREATE INDEX stored_responses_by_expiry ON stored_responses (expires_at)",
]

/// Schema 8: answer cache entries, in the SQL both stores speak; found by key, trimmed per model
/// oldest first (the first index) and swept by their stale window (the second).
let answerCacheMigration = [
    """
    CREATE TABLE answer_cache (
        key TEXT PRIMARY KEY, model TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
        stale_until DOUBLE PRECISION NOT NULL, size BIGINT NOT NULL, answer TEXT NOT NULL)
    """,
    "CREATE INDEX answer_cache_by_model_age ON answer_cache (model, created_at)",
    "CREATE INDEX answer_cache_by_stale_until ON answer_cache (stale_until)",
]

let sharedBucketsMigration = [
    "CREATE INDEX shared_buckets_by_update ON shared_buckets (updated_at)",
    "CREATE INDEX shared_buckets_by_expiry ON shared_buckets (keep_until)",
    """
    INSERT INTO shared_buckets SELECT 'earlier', 'slo:' || slo || ':' || ring, width, idx, good, total, 0,
        (idx + 1) * width + \(Int(earlierBucketsKeptSeconds)) FROM sli_buckets
    """,
    "DROP TABLE sli_buckets",
]
