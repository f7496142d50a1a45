import Foundation
import LifelineCore
import Logging
import SQLiteNIO

/// The embedded store: one SQLite file under the data directory, migrated at open.
public final class SQLiteStore: LifelineStore {
    private let connection: SQLiteConnection
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
            CREATE TABLE sli_buckets (
                slo TEXT NOT NULL, ring TEXT NOT NULL, width REAL NOT NULL, idx INTEGER NOT NULL,
                good INTEGER NOT NULL, total INTEGER NOT NULL, PRIMARY KEY (slo, ring, idx))
            """,
        ],
    ]

    public static var schemaVersion: Int { migrations.count }

    private init(connection: SQLiteConnection, path: String) {
        self.connection = connection
        self.path = path
    }

    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    public static func open(path: String, logger: Logger = Logger(label: "lifeline.store")) async throws -> SQLiteStore {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
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
        try await connection.query("SELECT * FROM keys ORDER BY created_at", []).map(Self.key(from:))
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

    public func revokeKey(id: String, at date: Date) async throws -> Bool {
        _ = try await connection.query("UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                       [.float(date.timeIntervalSince1970), .text(id)])
        let changed = try await connection.query("SELECT changes() AS n", []).first?.column("n")?.integer ?? 0
        return changed > 0
    }

    public func record(_ usage: [UsageRecord]) async throws {
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

    public func usage(since minute: Int, keyID: String?) async throws -> [String: UsageTotals] {
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

    public func saveSLIBuckets(slo: String, _ snapshot: SLIBucketSnapshot) async throws {
        _ = try await connection.query("BEGIN IMMEDIATE", [])
        do {
            for (ring, width, buckets) in [("minute", snapshot.minuteWidth, snapshot.minutes), ("hour", snapshot.hourWidth, snapshot.hours)] {
                // A changed width (a new window scale) makes old buckets meaningless.
                _ = try await connection.query("DELETE FROM sli_buckets WHERE slo = ? AND ring = ? AND width != ?",
                                               [.text(slo), .text(ring), .float(width)])
                for bucket in buckets {
                    _ = try await connection.query(
                        """
                        INSERT INTO sli_buckets VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT (slo, ring, idx) DO UPDATE SET width = excluded.width, good = excluded.good, total = excluded.total
                        """,
                        [.text(slo), .text(ring), .float(width), .integer(Int(bucket.index)), .integer(bucket.good), .integer(bucket.total)])
                }
            }
            _ = try await connection.query("COMMIT", [])
        } catch {
            _ = try? await connection.query("ROLLBACK", [])
            throw error
        }
    }

    public func loadSLIBuckets() async throws -> [String: SLIBucketSnapshot] {
        var snapshots: [String: SLIBucketSnapshot] = [:]
        for row in try await connection.query("SELECT * FROM sli_buckets ORDER BY slo, ring, idx", []) {
            let slo = row.column("slo")?.string ?? ""
            let width = row.column("width")?.double ?? 60
            let bucket = SLIBucket(index: Int64(row.column("idx")?.integer ?? 0), good: Int(row.column("good")?.integer ?? 0),
                                   total: Int(row.column("total")?.integer ?? 0))
            var snapshot = snapshots[slo] ?? SLIBucketSnapshot(minuteWidth: 60, minutes: [], hourWidth: 3600, hours: [])
            if row.column("ring")?.string == "minute" {
                snapshot.minuteWidth = width
                snapshot.minutes.append(bucket)
            } else {
                snapshot.hourWidth = width
                snapshot.hours.append(bucket)
            }
            snapshots[slo] = snapshot
        }
        return snapshots
    }

    public func close() async throws {
        try await connection.close()
    }
}
