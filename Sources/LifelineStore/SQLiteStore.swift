import Foundation
import LifelineCore
import Logging
import SQLiteNIO

/// The embedded store: one SQLite file under the data directory, migrated at open.
public final class SQLiteStore: LifelineStore {
    private let connection: SQLiteConnection
    /// One operation at a time: the connection is shared, and a transaction must not take in
    /// another caller's statements (nor `changes()` count them).
    private let serial = SerialExecutor()
    public let path: String

    /// Versioned schema steps; `PRAGMA user_version` records how many were applied.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE keys (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,
                tier TEXT NOT NULL, rpm INTEGER, tpm INTEGER, max_concurrency INTEGER, budget_tokens INTEGER,
                budget_period TEXT NOT NULL, models TEXT NOT NULL, expires_at REAL, created_at REAL NOT NULL, revoked_at REAL)
            """,
            """
            CREATE TABLE usage_minutes (
                key_id TEXT NOT NULL, minute INTEGER NOT NULL, requests INTEGER NOT NULL,
                prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, PRIMARY KEY (key_id, minute))
            """,
        ],
        [
            """
            CREATE TABLE incidents (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, impact TEXT NOT NULL, created_at REAL NOT NULL,
                updated_at REAL NOT NULL, started_at REAL NOT NULL, monitoring_at REAL, resolved_at REAL, components TEXT NOT NULL,
                automatic INTEGER NOT NULL, published INTEGER NOT NULL)
            """,
            """
            CREATE TABLE incident_updates (
                id TEXT PRIMARY KEY, incident_id TEXT NOT NULL REFERENCES incidents(id), position INTEGER NOT NULL, status TEXT NOT NULL,
                body TEXT NOT NULL, created_at REAL NOT NULL, affected TEXT NOT NULL)
            """,
            "CREATE INDEX incident_updates_by_incident ON incident_updates (incident_id, position)",
            """
            CREATE TABLE maintenances (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, message TEXT NOT NULL, deployments TEXT NOT NULL, components TEXT NOT NULL,
                scheduled_for REAL NOT NULL, scheduled_until REAL NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL,
                updated_at REAL NOT NULL, started_at REAL, completed_at REAL)
            """,
            """
            CREATE TABLE maintenance_updates (
                id TEXT PRIMARY KEY, maintenance_id TEXT NOT NULL REFERENCES maintenances(id), position INTEGER NOT NULL,
                status TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL)
            """,
            """
            CREATE TABLE uptime_days (
                component TEXT NOT NULL, day INTEGER NOT NULL, observed_s REAL NOT NULL, degraded_s REAL NOT NULL,
                partial_s REAL NOT NULL, major_s REAL NOT NULL, maintenance_s REAL NOT NULL, PRIMARY KEY (component, day))
            """,
        ],
        [
            """
            CREATE TABLE sli_buckets (
                slo TEXT NOT NULL, ring TEXT NOT NULL, width REAL NOT NULL, idx INTEGER NOT NULL,
                good INTEGER NOT NULL, total INTEGER NOT NULL, PRIMARY KEY (slo, ring, idx))
            """,
        ],
        [
            "CREATE TABLE alert_states (alert TEXT PRIMARY KEY, firing_since REAL, quiet_since REAL, peak_burn REAL NOT NULL)",
            """
            CREATE TABLE deliveries (
                id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, target TEXT NOT NULL, format TEXT NOT NULL,
                subject_id TEXT NOT NULL, subject TEXT NOT NULL, event TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
                response_status INTEGER, error TEXT, body TEXT NOT NULL, created_at REAL NOT NULL, finished_at REAL)
            """,
            "CREATE INDEX deliveries_by_time ON deliveries (created_at)",
            """
            CREATE TABLE subscribers (
                id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, token_hash TEXT NOT NULL, state TEXT NOT NULL, components TEXT NOT NULL,
                created_at REAL NOT NULL, approved_at REAL)
            """,
            "ALTER TABLE incidents ADD COLUMN evidence TEXT",
            "ALTER TABLE incidents ADD COLUMN postmortem_body TEXT",
            "ALTER TABLE incidents ADD COLUMN postmortem_updated_at REAL",
            "ALTER TABLE incidents ADD COLUMN postmortem_published_at REAL",
        ],
        [
            """
            CREATE TABLE traffic_minutes (
                scope TEXT NOT NULL, minute INTEGER NOT NULL, requests INTEGER NOT NULL, tokens INTEGER NOT NULL, busy_s REAL NOT NULL,
                peak_concurrency INTEGER NOT NULL, rate_limited INTEGER NOT NULL, PRIMARY KEY (scope, minute))
            """,
        ],
        [
            """
            CREATE TABLE shared_buckets (
                instance TEXT NOT NULL, series TEXT NOT NULL, width REAL NOT NULL, idx INTEGER NOT NULL, good INTEGER NOT NULL,
                total INTEGER NOT NULL, updated_at REAL NOT NULL, keep_until REAL NOT NULL, PRIMARY KEY (instance, series, idx))
            """,
        ] + sharedBucketsMigration,
        [
            """
            CREATE TABLE stored_responses (
                id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,
                response TEXT NOT NULL, conversation TEXT NOT NULL)
            """,
        ] + storedResponsesIndexes,
        answerCacheMigration,
    ]


    public static var schemaVersion: Int { migrations.count }

    private init(connection: SQLiteConnection, path: String) {
        self.connection = connection
        self.path = path
    }

    /// Opens (creating if needed) the database at `path` and applies pending migrations. A new
    /// database is created 0600 in a 0700 directory; SQLite gives its `-wal` and `-shm` files the
    /// database file's mode.
    public static func open(path: String, logger: Logger = Logger(label: "lifeline.store")) async throws -> SQLiteStore {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try PrivateFiles.makeDirectory(directory) }
        try PrivateFiles.createFile(path)
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw StoreError.unreadable(path: path, detail: "\(error)")
        }
        let store = SQLiteStore(connection: connection, path: path)
        do {
            try await store.migrate()
        } catch {
            try? await connection.close()
            throw error
        }
        return store
    }

    private func migrate() async throws {
        let version: Int
        do {
            _ = try await connection.query("PRAGMA journal_mode=WAL", [])
            version = Int(try await connection.query("PRAGMA user_version", []).first?.column("user_version")?.integer ?? 0)
            _ = try await connection.query("SELECT count(*) FROM sqlite_master", [])
        } catch {
            throw StoreError.unreadable(path: path, detail: "\(error)")
        }
        guard version <= Self.schemaVersion else {
            throw StoreError.newerSchema(found: version, supported: Self.schemaVersion, path: path)
        }
        for step in version..<Self.schemaVersion {
            _ = try await connection.query("BEGIN IMMEDIATE", [])
            do {
                for statement in Self.migrations[step] { _ = try await connection.query(statement, []) }
                _ = try await connection.query("PRAGMA user_version = \(step + 1)", [])
                _ = try await connection.query("COMMIT", [])
            } catch {
                _ = try? await connection.query("ROLLBACK", [])
                throw error
            }
        }
    }

    public func keys() async throws -> [StoredKey] {
        try await serial.run { [self] in
            try await connection.query("SELECT * FROM keys ORDER BY created_at, id", []).map(Self.key(from:))
        }
    }

    private static func key(from row: SQLiteRow) -> StoredKey {
        func int(_ name: String) -> Int? { row.column(name)?.integer.map { Int($0) } }
        func date(_ name: String) -> Date? { row.column(name)?.double.map { Date(timeIntervalSince1970: $0) } }
        func text(_ name: String) -> String { row.column(name)?.string ?? "" }
        let models = text("models").split(separator: ",").map(String.init)
        return StoredKey(
            id: text("id"), name: text("name"), secretHash: text("secret_hash"), prefix: text("prefix"), tier: text("tier"),
            requestsPerMinute: int("rpm"), tokensPerMinute: int("tpm"), maxConcurrency: int("max_concurrency"),
            budgetTokens: int("budget_tokens"), budgetPeriod: text("budget_period"), models: models,
            expiresAt: date("expires_at"), createdAt: date("created_at") ?? Date(timeIntervalSince1970: 0), revokedAt: date("revoked_at"))
    }

    public func insert(_ key: StoredKey) async throws {
        try await serial.run { [self] in
            func optional(_ value: Int?) -> SQLiteData { value.map { .integer($0) } ?? .null }
            do {
                _ = try await connection.query(
                    "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [.text(key.id), .text(key.name), .text(key.secretHash), .text(key.prefix), .text(key.tier),
                     optional(key.requestsPerMinute), optional(key.tokensPerMinute), optional(key.maxConcurrency), optional(key.budgetTokens),
                     .text(key.budgetPeriod), .text(key.models.joined(separator: ",")),
                     key.expiresAt.map { .float($0.timeIntervalSince1970) } ?? .null, .float(key.createdAt.timeIntervalSince1970),
                     key.revokedAt.map { .float($0.timeIntervalSince1970) } ?? .null])
            } catch let error as SQLiteError where [.constraint, .constraintUniqueFailed, .constraintPrimaryKeyFailed].contains(error.reason) {
                throw StoreError.duplicate("key \(key.id)")
            }
        }
    }

    public func revokeKey(id: String, at date: Date) async throws -> Bool {
        try await serial.run { [self] in
            _ = try await connection.query("UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                           [.float(date.timeIntervalSince1970), .text(id)])
            let changed = try await connection.query("SELECT changes() AS n", []).first?.column("n")?.integer ?? 0
            return changed > 0
        }
    }

    public func record(_ usage: [UsageRecord]) async throws {
        try await serial.run { [self] in
            guard !usage.isEmpty else { return }
            _ = try await connection.query("BEGIN IMMEDIATE", [])
            do {
                for row in usage {
                    _ = try await connection.query(
                        """
                        INSERT INTO usage_minutes VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT (key_id, minute) DO UPDATE SET requests = requests + excluded.requests,
                            prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                            completion_tokens = completion_tokens + excluded.completion_tokens
                        """,
                        [.text(row.keyID), .integer(row.minute), .integer(row.requests), .integer(row.promptTokens), .integer(row.completionTokens)])
                }
                _ = try await connection.query("COMMIT", [])
            } catch {
                _ = try? await connection.query("ROLLBACK", [])
                throw error
            }
        }
    }

    public func usage(since minute: Int, keyID: String?) async throws -> [String: UsageTotals] {
        try await serial.run { [self] in
            var sql = "SELECT key_id, sum(requests) AS r, sum(prompt_tokens) AS p, sum(completion_tokens) AS c FROM usage_minutes WHERE minute >= ?"
            var binds: [SQLiteData] = [.integer(minute)]
            if let keyID { sql += " AND key_id = ?"; binds.append(.text(keyID)) }
            sql += " GROUP BY key_id"
            var totals: [String: UsageTotals] = [:]
            for row in try await connection.query(sql, binds) {
                var total = UsageTotals()
                total.requests = Int(row.column("r")?.integer ?? 0)
                total.promptTokens = Int(row.column("p")?.integer ?? 0)
                total.completionTokens = Int(row.column("c")?.integer ?? 0)
                totals[row.column("key_id")?.string ?? ""] = total
            }
            return totals
        }
    }

    // MARK: Status

    /// Lists are stored one name a line: names never contain a newline.
    private static func list(_ names: [String]) -> SQLiteData { .text(names.joined(separator: "\n")) }
    private static func list(_ row: SQLiteRow, _ column: String) -> [String] {
        (row.column(column)?.string ?? "").split(separator: "\n").map(String.init)
    }
    private static func optional(_ value: Double?) -> SQLiteData { value.map { .float($0) } ?? .null }

    /// Runs `body` in one transaction.
    private func transaction(_ body: () async throws -> Void) async throws {
        _ = try await connection.query("BEGIN IMMEDIATE", [])
        do {
            try await body()
            _ = try await connection.query("COMMIT", [])
        } catch {
            _ = try? await connection.query("ROLLBACK", [])
            throw error
        }
    }

    public func incidents() async throws -> [Incident] {
        try await serial.run { [self] in
            var updates: [String: [IncidentUpdate]] = [:]
            for row in try await connection.query("SELECT * FROM incident_updates ORDER BY incident_id, position", []) {
                let incidentID = row.column("incident_id")?.string ?? ""
                var affected: [String: ComponentStatus] = [:]
                for line in Self.list(row, "affected") {
                    let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                    if parts.count == 2, let status = ComponentStatus(rawValue: parts[1]) { affected[parts[0]] = status }
                }
                updates[incidentID, default: []].append(IncidentUpdate(
                    id: row.column("id")?.string ?? "", incidentID: incidentID,
                    status: IncidentStatus(rawValue: row.column("status")?.string ?? "") ?? .investigating,
                    body: row.column("body")?.string ?? "", createdAt: row.column("created_at")?.double ?? 0, affected: affected))
            }
            return try await connection.query("SELECT * FROM incidents ORDER BY created_at, id", []).map { row in
                let id = row.column("id")?.string ?? ""
                var incident = Incident(
                    id: id, name: row.column("name")?.string ?? "",
                    status: IncidentStatus(rawValue: row.column("status")?.string ?? "") ?? .investigating,
                    impact: IncidentImpact(rawValue: row.column("impact")?.string ?? "") ?? .none,
                    createdAt: row.column("created_at")?.double ?? 0, components: Self.list(row, "components"),
                    automatic: row.column("automatic")?.integer == 1, published: row.column("published")?.integer == 1,
                    updates: updates[id] ?? [])
                incident.updatedAt = row.column("updated_at")?.double ?? incident.createdAt
                incident.startedAt = row.column("started_at")?.double ?? incident.createdAt
                incident.monitoringAt = row.column("monitoring_at")?.double
                incident.resolvedAt = row.column("resolved_at")?.double
                if let evidence = IncidentEvidence(stored: row.column("evidence")?.string) { incident.evidence = evidence }
                incident.postmortemBody = row.column("postmortem_body")?.string
                incident.postmortemUpdatedAt = row.column("postmortem_updated_at")?.double
                incident.postmortemPublishedAt = row.column("postmortem_published_at")?.double
                return incident
            }
        }
    }

    public func save(_ incident: Incident) async throws {
        try await serial.run { [self] in
            try await transaction {
                _ = try await connection.query(
                    """
                    INSERT OR REPLACE INTO incidents (id, name, status, impact, created_at, updated_at, started_at, monitoring_at, resolved_at,
                        components, automatic, published, evidence, postmortem_body, postmortem_updated_at, postmortem_published_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    [.text(incident.id), .text(incident.name), .text(incident.status.rawValue), .text(incident.impact.rawValue),
                     .float(incident.createdAt), .float(incident.updatedAt), .float(incident.startedAt), Self.optional(incident.monitoringAt),
                     Self.optional(incident.resolvedAt), Self.list(incident.components), .integer(incident.automatic ? 1 : 0),
                     .integer(incident.published ? 1 : 0),
                     .text(try incident.evidence.stored()),
                     incident.postmortemBody.map { .text($0) } ?? .null, Self.optional(incident.postmortemUpdatedAt),
                     Self.optional(incident.postmortemPublishedAt)])
                _ = try await connection.query("DELETE FROM incident_updates WHERE incident_id = ?", [.text(incident.id)])
                for (position, update) in incident.updates.enumerated() {
                    let affected = update.affected.keys.sorted().map { "\($0)=\(update.affected[$0]!.rawValue)" }
                    _ = try await connection.query(
                        "INSERT INTO incident_updates VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [.text(update.id), .text(incident.id), .integer(position), .text(update.status.rawValue), .text(update.body),
                         .float(update.createdAt), Self.list(affected)])
                }
            }
        }
    }

    public func maintenances() async throws -> [Maintenance] {
        try await serial.run { [self] in
            var updates: [String: [MaintenanceUpdate]] = [:]
            for row in try await connection.query("SELECT * FROM maintenance_updates ORDER BY maintenance_id, position", []) {
                updates[row.column("maintenance_id")?.string ?? "", default: []].append(MaintenanceUpdate(
                    id: row.column("id")?.string ?? "",
                    status: MaintenanceStatus(rawValue: row.column("status")?.string ?? "") ?? .scheduled,
                    body: row.column("body")?.string ?? "", createdAt: row.column("created_at")?.double ?? 0))
            }
            return try await connection.query("SELECT * FROM maintenances ORDER BY scheduled_for, id", []).map { row in
                let id = row.column("id")?.string ?? ""
                var maintenance = Maintenance(
                    id: id, name: row.column("name")?.string ?? "", message: row.column("message")?.string ?? "",
                    deployments: Self.list(row, "deployments"), components: Self.list(row, "components"),
                    scheduledFor: row.column("scheduled_for")?.double ?? 0, scheduledUntil: row.column("scheduled_until")?.double ?? 0,
                    createdAt: row.column("created_at")?.double ?? 0)
                maintenance.status = MaintenanceStatus(rawValue: row.column("status")?.string ?? "") ?? .scheduled
                maintenance.updatedAt = row.column("updated_at")?.double ?? maintenance.createdAt
                maintenance.startedAt = row.column("started_at")?.double
                maintenance.completedAt = row.column("completed_at")?.double
                maintenance.updates = updates[id] ?? []
                return maintenance
            }
        }
    }

    public func save(_ maintenance: Maintenance) async throws {
        try await serial.run { [self] in
            try await transaction {
                _ = try await connection.query(
                    "INSERT OR REPLACE INTO maintenances VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [.text(maintenance.id), .text(maintenance.name), .text(maintenance.message), Self.list(maintenance.deployments),
                     Self.list(maintenance.components), .float(maintenance.scheduledFor), .float(maintenance.scheduledUntil),
                     .text(maintenance.status.rawValue), .float(maintenance.createdAt), .float(maintenance.updatedAt),
                     Self.optional(maintenance.startedAt), Self.optional(maintenance.completedAt)])
                _ = try await connection.query("DELETE FROM maintenance_updates WHERE maintenance_id = ?", [.text(maintenance.id)])
                for (position, update) in maintenance.updates.enumerated() {
                    _ = try await connection.query(
                        "INSERT INTO maintenance_updates VALUES (?, ?, ?, ?, ?, ?)",
                        [.text(update.id), .text(maintenance.id), .integer(position), .text(update.status.rawValue), .text(update.body),
                         .float(update.createdAt)])
                }
            }
        }
    }

    public func addUptime(_ records: [UptimeRecord]) async throws {
        try await serial.run { [self] in
            guard !records.isEmpty else { return }
            try await transaction {
                for record in records {
                    _ = try await connection.query(
                        """
                        INSERT INTO uptime_days VALUES (?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (component, day) DO UPDATE SET observed_s = observed_s + excluded.observed_s,
                            degraded_s = degraded_s + excluded.degraded_s, partial_s = partial_s + excluded.partial_s,
                            major_s = major_s + excluded.major_s, maintenance_s = maintenance_s + excluded.maintenance_s
                        """,
                        [.text(record.component), .integer(record.day), .float(record.observedSeconds), .float(record.degradedSeconds),
                         .float(record.partialOutageSeconds), .float(record.majorOutageSeconds), .float(record.maintenanceSeconds)])
                }
            }
        }
    }

    public func uptime(since day: Int) async throws -> [UptimeRecord] {
        try await serial.run { [self] in
            try await connection.query("SELECT * FROM uptime_days WHERE day >= ? ORDER BY component, day", [.integer(day)]).map { row in
                UptimeRecord(component: row.column("component")?.string ?? "", day: Int(row.column("day")?.integer ?? 0),
                             observedSeconds: row.column("observed_s")?.double ?? 0, degradedSeconds: row.column("degraded_s")?.double ?? 0,
                             partialOutageSeconds: row.column("partial_s")?.double ?? 0, majorOutageSeconds: row.column("major_s")?.double ?? 0,
                             maintenanceSeconds: row.column("maintenance_s")?.double ?? 0)
            }
        }
    }

    public func publish(_ buckets: [SharedBucket], now: Double) async throws {
        try await serial.run { [self] in
            try await transaction {
                for bucket in buckets {
                    _ = try await connection.query(
                        """
                        INSERT INTO shared_buckets VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (instance, series, idx) DO UPDATE SET width = excluded.width, good = excluded.good,
                            total = excluded.total, updated_at = excluded.updated_at, keep_until = excluded.keep_until
                        """,
                        [.text(bucket.instance), .text(bucket.series), .float(bucket.width), .integer(Int(bucket.index)),
                         .integer(bucket.good), .integer(bucket.total), .float(now), .float(bucket.keepUntil)])
                }
                _ = try await connection.query("DELETE FROM shared_buckets WHERE keep_until < ?", [.float(now)])
            }
        }
    }

    public func sharedBuckets(changedSince since: Double?) async throws -> (buckets: [SharedBucket], now: Double) {
        try await serial.run { [self] in
            let now = Date().timeIntervalSince1970
            let rows = try await connection.query("SELECT * FROM shared_buckets WHERE updated_at > ? ORDER BY instance, series, idx",
                                                  [.float(since ?? -1)])
            let buckets = rows.map { row in
                SharedBucket(instance: row.column("instance")?.string ?? "", series: row.column("series")?.string ?? "",
                             width: row.column("width")?.double ?? 60, index: Int64(row.column("idx")?.integer ?? 0),
                             good: Int(row.column("good")?.integer ?? 0), total: Int(row.column("total")?.integer ?? 0),
                             keepUntil: row.column("keep_until")?.double ?? 0)
            }
            return (buckets, now)
        }
    }

    /// One process owns an SQLite file, so it always leads.
    public func lead() async throws -> Bool { true }
    public func resign() async {}
    public var isShared: Bool { false }

    // MARK: Traffic history

    public func record(traffic: [TrafficMinute]) async throws {
        guard !traffic.isEmpty else { return }
        try await serial.run { [self] in
            try await transaction {
                for row in traffic {
                    _ = try await connection.query(
                        """
                        INSERT INTO traffic_minutes VALUES (?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (scope, minute) DO UPDATE SET requests = requests + excluded.requests, tokens = tokens + excluded.tokens,
                            busy_s = busy_s + excluded.busy_s, peak_concurrency = max(peak_concurrency, excluded.peak_concurrency),
                            rate_limited = rate_limited + excluded.rate_limited
                        """,
                        [.text(row.scope), .integer(row.minute), .integer(row.requests), .integer(row.tokens), .float(row.busySeconds),
                         .integer(row.peakConcurrency), .integer(row.rateLimited)])
                }
                let oldest = (traffic.map(\.minute).max() ?? 0) - trafficKeptDays * 86_400
                _ = try await connection.query("DELETE FROM traffic_minutes WHERE minute < ?", [.integer(oldest)])
            }
        }
    }

    public func traffic(since minute: Int) async throws -> [TrafficMinute] {
        try await serial.run { [self] in
            try await connection.query("SELECT * FROM traffic_minutes WHERE minute >= ? ORDER BY scope, minute", [.integer(minute)]).map { row in
                TrafficMinute(scope: row.column("scope")?.string ?? "", minute: Int(row.column("minute")?.integer ?? 0),
                              requests: Int(row.column("requests")?.integer ?? 0), tokens: Int(row.column("tokens")?.integer ?? 0),
                              busySeconds: row.column("busy_s")?.double ?? 0,
                              peakConcurrency: Int(row.column("peak_concurrency")?.integer ?? 0),
                              rateLimited: Int(row.column("rate_limited")?.integer ?? 0))
            }
        }
    }

    // MARK: Stored responses

    public func save(_ response: StoredResponse, now: Double, limit: Int) async throws {
        try await serial.run { [self] in
            try await transaction {
                _ = try await connection.query(
                    "INSERT OR REPLACE INTO stored_responses VALUES (?, ?, ?, ?, ?, ?)",
                    [.text(response.id), .text(response.owner), .float(response.createdAt), .float(response.expiresAt),
                     .text(response.response), .text(response.conversation)])
                _ = try await connection.query("DELETE FROM stored_responses WHERE expires_at <= ?", [.float(now)])
                // A new row takes the next rowid, so the rows of earlier saves are a rowid range.
                _ = try await connection.query(
                    "DELETE FROM stored_responses WHERE rowid <= (SELECT max(rowid) FROM stored_responses) - ?", [.integer(max(0, limit))])
            }
        }
    }

    public func storedResponse(id: String, owner: String, now: Double) async throws -> StoredResponse? {
        try await serial.run { [self] in
            try await connection.query("SELECT * FROM stored_responses WHERE id = ? AND owner = ? AND expires_at > ?",
                                       [.text(id), .text(owner), .float(now)]).first.map { row in
                StoredResponse(id: row.column("id")?.string ?? "", owner: row.column("owner")?.string ?? "",
                               createdAt: row.column("created_at")?.double ?? 0, expiresAt: row.column("expires_at")?.double ?? 0,
                               response: row.column("response")?.string ?? "", conversation: row.column("conversation")?.string ?? "")
            }
        }
    }

    public func deleteStoredResponse(id: String, owner: String) async throws -> Bool {
        try await serial.run { [self] in
            _ = try await connection.query("DELETE FROM stored_responses WHERE id = ? AND owner = ?", [.text(id), .text(owner)])
            return (try await connection.query("SELECT changes() AS n", []).first?.column("n")?.integer ?? 0) > 0
        }
    }

    // MARK: Answer cache

    public func put(_ entry: StoredCacheEntry, maxRows: Int) async throws {
        try await serial.run { [self] in
            try await transaction {
                _ = try await connection.query(
                    "INSERT OR REPLACE INTO answer_cache VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [.text(entry.key), .text(entry.model), .float(entry.createdAt), .float(entry.expiresAt), .float(entry.staleUntil),
                     .integer(entry.size), .text(entry.answer)])
                _ = try await connection.query("""
                    DELETE FROM answer_cache WHERE model = ? AND key IN
                        (SELECT key FROM answer_cache WHERE model = ? ORDER BY created_at DESC, key DESC LIMIT -1 OFFSET ?)
                    """, [.text(entry.model), .text(entry.model), .integer(max(0, maxRows))])
            }
        }
    }

    public func cacheEntry(key: String, now: Double) async throws -> StoredCacheEntry? {
        try await serial.run { [self] in
            try await connection.query("SELECT * FROM answer_cache WHERE key = ? AND stale_until >= ?", [.text(key), .float(now)]).first.map { row in
                StoredCacheEntry(key: row.column("key")?.string ?? "", model: row.column("model")?.string ?? "",
                                 createdAt: row.column("created_at")?.double ?? 0, expiresAt: row.column("expires_at")?.double ?? 0,
                                 staleUntil: row.column("stale_until")?.double ?? 0, size: row.column("size")?.integer ?? 0,
                                 answer: row.column("answer")?.string ?? "")
            }
        }
    }

    public func purgeCacheEntries(model: String?) async throws -> Int {
        try await serial.run { [self] in
            if let model {
                _ = try await connection.query("DELETE FROM answer_cache WHERE model = ?", [.text(model)])
            } else {
                _ = try await connection.query("DELETE FROM answer_cache", [])
            }
            return try await connection.query("SELECT changes() AS n", []).first?.column("n")?.integer ?? 0
        }
    }

    public func removeExpiredCacheEntries(now: Double) async throws -> Int {
        try await serial.run { [self] in
            _ = try await connection.query("DELETE FROM answer_cache WHERE stale_until < ?", [.float(now)])
            return try await connection.query("SELECT changes() AS n", []).first?.column("n")?.integer ?? 0
        }
    }

    // MARK: Backup and restore

    /// Writes a consistent copy of the whole database to `file` while it is in use
    /// (`VACUUM INTO` reads one snapshot; writers carry on). Refuses to overwrite a file.
    public func backup(to file: String) async throws {
        guard !FileManager.default.fileExists(atPath: file) else { throw StoreError.duplicate("\(file)") }
        // Created empty as 0600 first (VACUUM INTO accepts an empty file): a backup holds what the store does.
        try PrivateFiles.createFile(file)
        try await serial.run { [self] in
            _ = try await connection.query("VACUUM INTO ?", [.text(file)])
        }
    }

    /// Puts a backup in place as the database at `path` (the server must be stopped). The backup
    /// is checked (and migrated, if older) on a copy first; an existing database is kept beside it
    /// as `…before-restore-TIME` rather than lost. Returns where the old one went, if anywhere.
    @discardableResult
    public static func restore(from backup: String, to path: String, logger: Logger = Logger(label: "lifeline.store")) async throws -> String? {
        let files = FileManager.default
        guard files.fileExists(atPath: backup) else { throw StoreError.unreadable(path: backup, detail: "no such file") }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try PrivateFiles.makeDirectory(directory) }
        let staged = path + ".restoring"
        for suffix in ["", "-wal", "-shm"] { try? files.removeItem(atPath: staged + suffix) }
        try files.copyItem(atPath: backup, toPath: staged)
        // The copy keeps the backup's mode, which an older version wrote readable by all.
        PrivateFiles.restrict(staged)
        do {
            let check = try await SQLiteStore.open(path: staged, logger: logger)
            try await check.close()
        } catch {
            for suffix in ["", "-wal", "-shm"] { try? files.removeItem(atPath: staged + suffix) }
            throw error
        }
        var keptAt: String?
        if files.fileExists(atPath: path) {
            let aside = path + ".before-restore-\(Int(Date().timeIntervalSince1970))"
            for suffix in ["", "-wal", "-shm"] where files.fileExists(atPath: path + suffix) {
                try files.moveItem(atPath: path + suffix, toPath: aside + suffix)
            }
            keptAt = aside
        }
        for suffix in ["-wal", "-shm"] { try? files.removeItem(atPath: staged + suffix) }
        try files.moveItem(atPath: staged, toPath: path)
        return keptAt
    }

    // MARK: Alerts, deliveries, subscribers

    public func loadAlerts() async throws -> [String: SavedAlert] {
        try await serial.run { [self] in
            var alerts: [String: SavedAlert] = [:]
            for row in try await connection.query("SELECT * FROM alert_states", []) {
                let state = BurnRateAlertState(firingSince: row.column("firing_since")?.double, quietSince: row.column("quiet_since")?.double)
                alerts[row.column("alert")?.string ?? ""] = SavedAlert(state: state, peakBurn: row.column("peak_burn")?.double ?? 0)
            }
            return alerts
        }
    }

    public func saveAlerts(_ alerts: [String: SavedAlert]) async throws {
        try await serial.run { [self] in
            try await transaction {
                _ = try await connection.query("DELETE FROM alert_states", [])
                for (alert, saved) in alerts {
                    _ = try await connection.query("INSERT INTO alert_states VALUES (?, ?, ?, ?)",
                                                   [.text(alert), Self.optional(saved.state.firingSince), Self.optional(saved.state.quietSince),
                                                    .float(saved.peakBurn)])
                }
            }
        }
    }

    public func insert(_ delivery: StoredDelivery) async throws -> Bool {
        try await serial.run { [self] in
            _ = try await connection.query(
                "INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [.text(delivery.id), .text(delivery.key), .text(delivery.kind), .text(delivery.target), .text(delivery.format),
                 .text(delivery.subjectID), .text(delivery.subject), .text(delivery.event), .text(delivery.status), .integer(delivery.attempts),
                 delivery.responseStatus.map { .integer($0) } ?? .null, delivery.error.map { .text($0) } ?? .null, .text(delivery.body),
                 .float(delivery.createdAt), Self.optional(delivery.finishedAt)])
            let inserted = (try await connection.query("SELECT changes() AS n", []).first?.column("n")?.integer ?? 0) > 0
            if inserted {
                _ = try await connection.query(
                    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries ORDER BY created_at DESC LIMIT -1 OFFSET ?)",
                    [.integer(storedDeliveriesKept)])
            }
            return inserted
        }
    }

    public func claim(deliveryID: String) async throws -> Bool {
        try await serial.run { [self] in
            _ = try await connection.query("UPDATE deliveries SET attempts = 1 WHERE id = ? AND attempts = 0 AND status = 'pending'",
                                           [.text(deliveryID)])
            let changed = try await connection.query("SELECT changes() AS n", []).first?.column("n")?.integer ?? 0
            return changed > 0
        }
    }

    public func update(_ delivery: StoredDelivery) async throws {
        try await serial.run { [self] in
            _ = try await connection.query(
                "UPDATE deliveries SET status = ?, attempts = ?, response_status = ?, error = ?, finished_at = ? WHERE id = ?",
                [.text(delivery.status), .integer(delivery.attempts), delivery.responseStatus.map { .integer($0) } ?? .null,
                 delivery.error.map { .text($0) } ?? .null, Self.optional(delivery.finishedAt), .text(delivery.id)])
        }
    }

    public func deliveries(limit: Int) async throws -> [StoredDelivery] {
        try await serial.run { [self] in
            try await connection.query("SELECT * FROM deliveries ORDER BY created_at DESC, id DESC LIMIT ?", [.integer(limit)])
                .map(Self.delivery(from:))
        }
    }

    public func deliveryKeys(limit: Int) async throws -> [String] {
        try await serial.run { [self] in
            try await connection.query("SELECT key FROM deliveries ORDER BY created_at DESC LIMIT ?", [.integer(limit)])
                .compactMap { $0.column("key")?.string }
        }
    }

    public func pendingDeliveries() async throws -> [StoredDelivery] {
        try await serial.run { [self] in
            try await connection.query("SELECT * FROM deliveries WHERE status = 'pending' ORDER BY created_at, id", [])
                .map(Self.delivery(from:))
        }
    }

    private static func delivery(from row: SQLiteRow) -> StoredDelivery {
        func text(_ name: String) -> String { row.column(name)?.string ?? "" }
        return StoredDelivery(
            id: text("id"), key: text("key"), kind: text("kind"), target: text("target"), format: text("format"),
            subjectID: text("subject_id"), subject: text("subject"), event: text("event"), status: text("status"),
            attempts: Int(row.column("attempts")?.integer ?? 0), responseStatus: row.column("response_status")?.integer.map { Int($0) },
            error: row.column("error")?.string, body: text("body"), createdAt: row.column("created_at")?.double ?? 0,
            finishedAt: row.column("finished_at")?.double)
    }

    public func subscribers() async throws -> [Subscriber] {
        try await serial.run { [self] in
            try await connection.query("SELECT * FROM subscribers ORDER BY created_at, id", []).map { row in
                Subscriber(id: row.column("id")?.string ?? "", endpoint: row.column("endpoint")?.string ?? "",
                           tokenHash: row.column("token_hash")?.string ?? "",
                           state: Subscriber.State(rawValue: row.column("state")?.string ?? "") ?? .pending,
                           components: Self.list(row, "components"), createdAt: row.column("created_at")?.double ?? 0,
                           approvedAt: row.column("approved_at")?.double)
            }
        }
    }

    public func save(_ subscriber: Subscriber) async throws {
        try await serial.run { [self] in
            _ = try await connection.query(
                "INSERT OR REPLACE INTO subscribers VALUES (?, ?, ?, ?, ?, ?, ?)",
                [.text(subscriber.id), .text(subscriber.endpoint), .text(subscriber.tokenHash), .text(subscriber.state.rawValue),
                 Self.list(subscriber.components), .float(subscriber.createdAt), Self.optional(subscriber.approvedAt)])
        }
    }

    public func removeSubscriber(id: String) async throws -> Bool {
        try await serial.run { [self] in
            _ = try await connection.query("DELETE FROM subscribers WHERE id = ?", [.text(id)])
            return (try await connection.query("SELECT changes() AS n", []).first?.column("n")?.integer ?? 0) > 0
        }
    }

    public func close() async throws {
        try await serial.run { [self] in
            try await connection.close()
        }
    }
}

/// Runs async operations one after another, in the order they were asked for.
actor SerialExecutor {
    private var tail: Task<Void, Never>?

    func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let previous = tail
        let task = Task {
            await previous?.value
            return try await body()
        }
        tail = Task { _ = try? await task.value }
        return try await task.value
    }
}
