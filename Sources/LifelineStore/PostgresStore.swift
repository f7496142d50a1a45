import Foundation
import LifelineCore
import Logging
import PostgresNIO

/// The shared store: PostgreSQL through postgres-nio's connection pool, with the same protocol
/// and contract tests as `SQLiteStore`. Several instances may start at once: migrations run
/// under a PostgreSQL advisory lock, so exactly one applies each step.
public final class PostgresStore: LifelineStore {
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    /// A redacted address, for errors and logs.
    public let location: String

    /// The advisory lock key that serialises migrations across instances ("lifelin" in ASCII).
    static let migrationLock: Int64 = 0x6C69_6665_6C69_6E
    /// The advisory lock key the leader holds ("lifelead" in ASCII).
    public static let leaderLock: Int64 = 0x6C69_6665_6C65_6164
    private let leadership: Leadership

    /// Schema steps; `lifeline_schema.version` records how many were applied.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE keys (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,
                tier TEXT NOT NULL, rpm BIGINT, tpm BIGINT, max_concurrency BIGINT, budget_tokens BIGINT,
                budget_period TEXT NOT NULL, models TEXT NOT NULL, expires_at DOUBLE PRECISION, created_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION)
            """,
            """
            CREATE TABLE usage_minutes (
                key_id TEXT NOT NULL, minute BIGINT NOT NULL, requests BIGINT NOT NULL,
                prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL, PRIMARY KEY (key_id, minute))
            """,
            """
            CREATE TABLE incidents (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, impact TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION NOT NULL, monitoring_at DOUBLE PRECISION,
                resolved_at DOUBLE PRECISION, components TEXT NOT NULL, automatic BOOLEAN NOT NULL, published BOOLEAN NOT NULL,
                evidence TEXT, postmortem_body TEXT, postmortem_updated_at DOUBLE PRECISION, postmortem_published_at DOUBLE PRECISION)
            """,
            """
            CREATE TABLE incident_updates (
                id TEXT PRIMARY KEY, incident_id TEXT NOT NULL, position BIGINT NOT NULL, status TEXT NOT NULL,
                body TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, affected TEXT NOT NULL)
            """,
            "CREATE INDEX incident_updates_by_incident ON incident_updates (incident_id, position)",
            """
            CREATE TABLE maintenances (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, message TEXT NOT NULL, deployments TEXT NOT NULL, components TEXT NOT NULL,
                scheduled_for DOUBLE PRECISION NOT NULL, scheduled_until DOUBLE PRECISION NOT NULL, status TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION,
                completed_at DOUBLE PRECISION)
            """,
            """
            CREATE TABLE maintenance_updates (
                id TEXT PRIMARY KEY, maintenance_id TEXT NOT NULL, position BIGINT NOT NULL, status TEXT NOT NULL,
                body TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)
            """,
            """
            CREATE TABLE uptime_days (
                component TEXT NOT NULL, day BIGINT NOT NULL, observed_s DOUBLE PRECISION NOT NULL, degraded_s DOUBLE PRECISION NOT NULL,
                partial_s DOUBLE PRECISION NOT NULL, major_s DOUBLE PRECISION NOT NULL, maintenance_s DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (component, day))
            """,
            """
            CREATE TABLE sli_buckets (
                slo TEXT NOT NULL, ring TEXT NOT NULL, width DOUBLE PRECISION NOT NULL, idx BIGINT NOT NULL,
                good BIGINT NOT NULL, total BIGINT NOT NULL, PRIMARY KEY (slo, ring, idx))
            """,
            """
            CREATE TABLE alert_states (alert TEXT PRIMARY KEY, firing_since DOUBLE PRECISION, quiet_since DOUBLE PRECISION,
                peak_burn DOUBLE PRECISION NOT NULL)
            """,
            """
            CREATE TABLE deliveries (
                id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, target TEXT NOT NULL, format TEXT NOT NULL,
                subject_id TEXT NOT NULL, subject TEXT NOT NULL, event TEXT NOT NULL, status TEXT NOT NULL, attempts BIGINT NOT NULL,
                response_status BIGINT, error TEXT, body TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION)
            """,
            "CREATE INDEX deliveries_by_time ON deliveries (created_at)",
            """
            CREATE TABLE subscribers (
                id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, token_hash TEXT NOT NULL, state TEXT NOT NULL, components TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, approved_at DOUBLE PRECISION)
            """,
        ],
        [
            """
            CREATE TABLE traffic_minutes (
                scope TEXT NOT NULL, minute BIGINT NOT NULL, requests BIGINT NOT NULL, tokens BIGINT NOT NULL,
                busy_s DOUBLE PRECISION NOT NULL, peak_concurrency BIGINT NOT NULL, rate_limited BIGINT NOT NULL,
                PRIMARY KEY (scope, minute))
            """,
        ],
        [
            """
            CREATE TABLE shared_buckets (
                instance TEXT NOT NULL, series TEXT NOT NULL, width DOUBLE PRECISION NOT NULL, idx BIGINT NOT NULL, good BIGINT NOT NULL,
                total BIGINT NOT NULL, updated_at DOUBLE PRECISION NOT NULL, keep_until DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (instance, series, idx))
            """,
        ] + sharedBucketsMigration,
        [
            """
            CREATE TABLE stored_responses (
                id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
                response TEXT NOT NULL, conversation TEXT NOT NULL, seq BIGINT GENERATED ALWAYS AS IDENTITY)
            """,
            "CREATE INDEX stored_responses_by_seq ON stored_responses (seq)",
        ] + storedResponsesIndexes,
        answerCacheMigration,
    ]

    public static var schemaVersion: Int { migrations.count }

    private init(client: PostgresClient, runner: Task<Void, Never>, logger: Logger, location: String, leadership: Leadership) {
        self.client = client
        self.leadership = leadership
        self.runner = runner
        self.logger = logger
        self.location = location
    }

    /// Connects to `url` (`postgres://user:password@host:port/database`) and applies pending
    /// migrations under the advisory lock.
    public static func open(url: String, logger: Logger = Logger(label: "lifeline.store")) async throws -> PostgresStore {
        let configuration = try configuration(from: url)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let runner = Task { await client.run() }
        let store = PostgresStore(client: client, runner: runner, logger: logger, location: redacted(url),
                                  leadership: Leadership(configuration: try connectionConfiguration(from: url), logger: logger))
        do {
            try await store.migrate()
        } catch {
            runner.cancel()
            throw StoreError.unreadable(path: store.location, detail: "\(String(reflecting: error))")
        }
        return store
    }

    public static func configuration(from url: String) throws -> PostgresClient.Configuration {
        let address = try Address(url)
        var configuration = PostgresClient.Configuration(host: address.host, port: address.port, username: address.user,
                                                         password: address.password, database: address.database, tls: .disable)
        configuration.options.maximumConnections = 10
        return configuration
    }

    /// A single connection's settings (the leader's lock lives on a connection of its own).
    static func connectionConfiguration(from url: String) throws -> PostgresConnection.Configuration {
        let address = try Address(url)
        return PostgresConnection.Configuration(host: address.host, port: address.port, username: address.user, password: address.password,
                                                database: address.database, tls: .disable)
    }

    /// The parts of a `postgres://` URL.
    struct Address {
        var host: String
        var port: Int
        var user: String
        var password: String?
        var database: String?

        init(_ url: String) throws {
            guard let parsed = URLComponents(string: url), ["postgres", "postgresql"].contains(parsed.scheme ?? ""),
              let host = parsed.host, !host.isEmpty
        else {
            throw StoreError.unreadable(path: redacted(url), detail: "not a postgres://user:password@host:port/database URL")
        }
            let database = parsed.path.hasPrefix("/") ? String(parsed.path.dropFirst()) : parsed.path
            self.host = host
            port = parsed.port ?? 5432
            user = parsed.user ?? "postgres"
            password = parsed.password
            self.database = database.isEmpty ? nil : database
        }
    }

    /// Runs administrative SQL (`CREATE DATABASE`, which cannot run in a transaction) and returns
    /// the first column of each row as text. For setup and tests, not for serving.
    public static func administer(url: String, _ sql: String) async throws -> [String] {
        let client = PostgresClient(configuration: try configuration(from: url))
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        let rows = try await client.query(PostgresQuery(unsafeSQL: sql)).collect()
        return try rows.map { row in
            let cell = row.makeRandomAccess()[0]
            if let number = try? cell.decode(Int.self) { return String(number) }
            return try cell.decode(String.self)
        }
    }

    /// The URL without its password.
    static func redacted(_ url: String) -> String {
        guard var parsed = URLComponents(string: url) else { return "postgres (unparsable URL)" }
        if parsed.password != nil { parsed.password = "***" }
        return parsed.string ?? "postgres"
    }

    private func migrate() async throws {
        try await client.withConnection { connection in
            _ = try await connection.query("SELECT pg_advisory_lock(\(Self.migrationLock))", logger: logger)
            do {
                _ = try await connection.query("CREATE TABLE IF NOT EXISTS lifeline_schema (version BIGINT NOT NULL)", logger: logger)
                let rows = try await connection.query("SELECT version FROM lifeline_schema", logger: logger).collect()
                var version = try rows.first.map { try $0.makeRandomAccess()["version"].decode(Int.self) } ?? 0
                if rows.isEmpty { _ = try await connection.query("INSERT INTO lifeline_schema VALUES (0)", logger: logger) }
                guard version <= Self.schemaVersion else {
                    throw StoreError.newerSchema(found: version, supported: Self.schemaVersion, path: location)
                }
                while version < Self.schemaVersion {
                    let step = Self.migrations[version]
                    try await connection.withTransaction(logger: logger) { transaction in
                        for statement in step { _ = try await transaction.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                        _ = try await transaction.query("UPDATE lifeline_schema SET version = \(version + 1)", logger: logger)
                    }
                    version += 1
                }
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
                throw error
            }
            _ = try await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
        }
    }

    private func rows(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        try await client.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
    }

    private func run(_ query: PostgresQuery) async throws {
        _ = try await client.query(query, logger: logger).collect()
    }

    private func transaction(_ body: (PostgresConnection) async throws -> Void) async throws {
        try await client.withTransaction(logger: logger) { connection in try await body(connection) }
    }

    private static func list(_ names: [String]) -> String { names.joined(separator: "\n") }
    private static func list(_ text: String?) -> [String] { (text ?? "").split(separator: "\n").map(String.init) }

    // MARK: Keys and usage

    public func keys() async throws -> [StoredKey] {
        try await rows("SELECT * FROM keys ORDER BY created_at, id").map { row in
            StoredKey(
                id: try row["id"].decode(String.self), name: try row["name"].decode(String.self),
                secretHash: try row["secret_hash"].decode(String.self), prefix: try row["prefix"].decode(String.self),
                tier: try row["tier"].decode(String.self), requestsPerMinute: try row["rpm"].decode(Int?.self),
                tokensPerMinute: try row["tpm"].decode(Int?.self), maxConcurrency: try row["max_concurrency"].decode(Int?.self),
                budgetTokens: try row["budget_tokens"].decode(Int?.self), budgetPeriod: try row["budget_period"].decode(String.self),
                models: try row["models"].decode(String.self).split(separator: ",").map(String.init),
                expiresAt: try row["expires_at"].decode(Double?.self).map { Date(timeIntervalSince1970: $0) },
                createdAt: Date(timeIntervalSince1970: try row["created_at"].decode(Double.self)),
                revokedAt: try row["revoked_at"].decode(Double?.self).map { Date(timeIntervalSince1970: $0) })
        }
    }

    public func insert(_ key: StoredKey) async throws {
        let models = key.models.joined(separator: ",")
        let expires = key.expiresAt?.timeIntervalSince1970
        let revoked = key.revokedAt?.timeIntervalSince1970
        let inserted = try await rows("""
            INSERT INTO keys VALUES (\(key.id), \(key.name), \(key.secretHash), \(key.prefix), \(key.tier), \(key.requestsPerMinute),
                \(key.tokensPerMinute), \(key.maxConcurrency), \(key.budgetTokens), \(key.budgetPeriod), \(models), \(expires),
                \(key.createdAt.timeIntervalSince1970), \(revoked))
            ON CONFLICT DO NOTHING RETURNING id
            """)
        if inserted.isEmpty { throw StoreError.duplicate("key \(key.id)") }
    }

    public func revokeKey(id: String, at date: Date) async throws -> Bool {
        let changed = try await rows("""
            UPDATE keys SET revoked_at = \(date.timeIntervalSince1970) WHERE id = \(id) AND revoked_at IS NULL RETURNING id
            """)
        return !changed.isEmpty
    }

    public func record(_ usage: [UsageRecord]) async throws {
        guard !usage.isEmpty else { return }
        try await transaction { connection in
            for row in usage {
                _ = try await connection.query("""
                    INSERT INTO usage_minutes VALUES (\(row.keyID), \(row.minute), \(row.requests), \(row.promptTokens), \(row.completionTokens))
                    ON CONFLICT (key_id, minute) DO UPDATE SET requests = usage_minutes.requests + excluded.requests,
                        prompt_tokens = usage_minutes.prompt_tokens + excluded.prompt_tokens,
                        completion_tokens = usage_minutes.completion_tokens + excluded.completion_tokens
                    """, logger: logger)
            }
        }
    }

    public func usage(since minute: Int, keyID: String?) async throws -> [String: UsageTotals] {
        let found = try await rows("""
            SELECT key_id, sum(requests)::BIGINT AS r, sum(prompt_tokens)::BIGINT AS p, sum(completion_tokens)::BIGINT AS c
            FROM usage_minutes WHERE minute >= \(minute) AND (\(keyID)::TEXT IS NULL OR key_id = \(keyID)) GROUP BY key_id
            """)
        var totals: [String: UsageTotals] = [:]
        for row in found {
            var total = UsageTotals()
            total.requests = try row["r"].decode(Int.self)
            total.promptTokens = try row["p"].decode(Int.self)
            total.completionTokens = try row["c"].decode(Int.self)
            totals[try row["key_id"].decode(String.self)] = total
        }
        return totals
    }

    // MARK: SLOs and alerts

    /// The store's clock: every instance's rows are stamped by the same clock, whatever theirs say.
    private static let storeClock = "extract(epoch from clock_timestamp())::double precision"

    public func publish(_ buckets: [SharedBucket], now: Double) async throws {
        try await transaction { connection in
            for bucket in buckets {
                _ = try await connection.query("""
                    INSERT INTO shared_buckets VALUES (\(bucket.instance), \(bucket.series), \(bucket.width), \(Int(bucket.index)), \(bucket.good),
                        \(bucket.total), \(unescaped: Self.storeClock), \(bucket.keepUntil))
                    ON CONFLICT (instance, series, idx) DO UPDATE SET width = excluded.width, good = excluded.good, total = excluded.total,
                        updated_at = excluded.updated_at, keep_until = excluded.keep_until
                    """, logger: logger)
            }
            _ = try await connection.query("DELETE FROM shared_buckets WHERE keep_until < \(now)", logger: logger)
        }
    }

    public func sharedBuckets(changedSince since: Double?) async throws -> (buckets: [SharedBucket], now: Double) {
        let clock = try await rows("SELECT \(unescaped: Self.storeClock) AS now")
        let now = try clock.first?["now"].decode(Double.self) ?? Date().timeIntervalSince1970
        let buckets = try await rows("SELECT * FROM shared_buckets WHERE updated_at > \(since ?? -1)").map { row in
            SharedBucket(instance: try row["instance"].decode(String.self), series: try row["series"].decode(String.self),
                         width: try row["width"].decode(Double.self), index: Int64(try row["idx"].decode(Int.self)),
                         good: try row["good"].decode(Int.self), total: try row["total"].decode(Int.self),
                         keepUntil: try row["keep_until"].decode(Double.self))
        }
        return (buckets, now)
    }

    public var isShared: Bool { true }

    public func lead() async throws -> Bool { try await leadership.hold() }

    public func resign() async { await leadership.release() }

    public func loadAlerts() async throws -> [String: SavedAlert] {
        var alerts: [String: SavedAlert] = [:]
        for row in try await rows("SELECT * FROM alert_states") {
            let state = BurnRateAlertState(firingSince: try row["firing_since"].decode(Double?.self),
                                           quietSince: try row["quiet_since"].decode(Double?.self))
            alerts[try row["alert"].decode(String.self)] = SavedAlert(state: state, peakBurn: try row["peak_burn"].decode(Double.self))
        }
        return alerts
    }

    public func saveAlerts(_ alerts: [String: SavedAlert]) async throws {
        try await transaction { connection in
            _ = try await connection.query("DELETE FROM alert_states", logger: logger)
            for (alert, saved) in alerts {
                _ = try await connection.query("""
                    INSERT INTO alert_states VALUES (\(alert), \(saved.state.firingSince), \(saved.state.quietSince), \(saved.peakBurn))
                    """, logger: logger)
            }
        }
    }

    // MARK: Status

    public func incidents() async throws -> [Incident] {
        var updates: [String: [IncidentUpdate]] = [:]
        for row in try await rows("SELECT * FROM incident_updates ORDER BY incident_id, position") {
            let incidentID = try row["incident_id"].decode(String.self)
            var affected: [String: ComponentStatus] = [:]
            for line in Self.list(try row["affected"].decode(String.self)) {
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2, let status = ComponentStatus(rawValue: parts[1]) { affected[parts[0]] = status }
            }
            updates[incidentID, default: []].append(IncidentUpdate(
                id: try row["id"].decode(String.self), incidentID: incidentID,
                status: IncidentStatus(rawValue: try row["status"].decode(String.self)) ?? .investigating,
                body: try row["body"].decode(String.self), createdAt: try row["created_at"].decode(Double.self), affected: affected))
        }
        return try await rows("SELECT * FROM incidents ORDER BY created_at, id").map { row in
            let id = try row["id"].decode(String.self)
            var incident = Incident(
                id: id, name: try row["name"].decode(String.self),
                status: IncidentStatus(rawValue: try row["status"].decode(String.self)) ?? .investigating,
                impact: IncidentImpact(rawValue: try row["impact"].decode(String.self)) ?? .none,
                createdAt: try row["created_at"].decode(Double.self), components: Self.list(try row["components"].decode(String.self)),
                automatic: try row["automatic"].decode(Bool.self), published: try row["published"].decode(Bool.self),
                updates: updates[id] ?? [])
            incident.updatedAt = try row["updated_at"].decode(Double.self)
            incident.startedAt = try row["started_at"].decode(Double.self)
            incident.monitoringAt = try row["monitoring_at"].decode(Double?.self)
            incident.resolvedAt = try row["resolved_at"].decode(Double?.self)
            if let evidence = IncidentEvidence(stored: try row["evidence"].decode(String?.self)) { incident.evidence = evidence }
            incident.postmortemBody = try row["postmortem_body"].decode(String?.self)
            incident.postmortemUpdatedAt = try row["postmortem_updated_at"].decode(Double?.self)
            incident.postmortemPublishedAt = try row["postmortem_published_at"].decode(Double?.self)
            return incident
        }
    }

    public func save(_ incident: Incident) async throws {
        let evidence = try incident.evidence.stored()
        let components = Self.list(incident.components)
        try await transaction { connection in
            _ = try await connection.query("""
                INSERT INTO incidents VALUES (\(incident.id), \(incident.name), \(incident.status.rawValue), \(incident.impact.rawValue),
                    \(incident.createdAt), \(incident.updatedAt), \(incident.startedAt), \(incident.monitoringAt), \(incident.resolvedAt),
                    \(components), \(incident.automatic), \(incident.published), \(evidence), \(incident.postmortemBody),
                    \(incident.postmortemUpdatedAt), \(incident.postmortemPublishedAt))
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status, impact = excluded.impact,
                    created_at = excluded.created_at, updated_at = excluded.updated_at, started_at = excluded.started_at,
                    monitoring_at = excluded.monitoring_at, resolved_at = excluded.resolved_at, components = excluded.components,
                    automatic = excluded.automatic, published = excluded.published, evidence = excluded.evidence,
                    postmortem_body = excluded.postmortem_body, postmortem_updated_at = excluded.postmortem_updated_at,
                    postmortem_published_at = excluded.postmortem_published_at
                """, logger: logger)
            _ = try await connection.query("DELETE FROM incident_updates WHERE incident_id = \(incident.id)", logger: logger)
            for (position, update) in incident.updates.enumerated() {
                let affected = Self.list(update.affected.keys.sorted().map { "\($0)=\(update.affected[$0]!.rawValue)" })
                _ = try await connection.query("""
                    INSERT INTO incident_updates VALUES (\(update.id), \(incident.id), \(position), \(update.status.rawValue), \(update.body),
                        \(update.createdAt), \(affected))
                    """, logger: logger)
            }
        }
    }

    public func maintenances() async throws -> [Maintenance] {
        var updates: [String: [MaintenanceUpdate]] = [:]
        for row in try await rows("SELECT * FROM maintenance_updates ORDER BY maintenance_id, position") {
            updates[try row["maintenance_id"].decode(String.self), default: []].append(MaintenanceUpdate(
                id: try row["id"].decode(String.self),
                status: MaintenanceStatus(rawValue: try row["status"].decode(String.self)) ?? .scheduled,
                body: try row["body"].decode(String.self), createdAt: try row["created_at"].decode(Double.self)))
        }
        return try await rows("SELECT * FROM maintenances ORDER BY scheduled_for, id").map { row in
            let id = try row["id"].decode(String.self)
            var maintenance = Maintenance(
                id: id, name: try row["name"].decode(String.self), message: try row["message"].decode(String.self),
                deployments: Self.list(try row["deployments"].decode(String.self)), components: Self.list(try row["components"].decode(String.self)),
                scheduledFor: try row["scheduled_for"].decode(Double.self), scheduledUntil: try row["scheduled_until"].decode(Double.self),
                createdAt: try row["created_at"].decode(Double.self))
            maintenance.status = MaintenanceStatus(rawValue: try row["status"].decode(String.self)) ?? .scheduled
            maintenance.updatedAt = try row["updated_at"].decode(Double.self)
            maintenance.startedAt = try row["started_at"].decode(Double?.self)
            maintenance.completedAt = try row["completed_at"].decode(Double?.self)
            maintenance.updates = updates[id] ?? []
            return maintenance
        }
    }

    public func save(_ maintenance: Maintenance) async throws {
        let deployments = Self.list(maintenance.deployments)
        let components = Self.list(maintenance.components)
        try await transaction { connection in
            _ = try await connection.query("""
                INSERT INTO maintenances VALUES (\(maintenance.id), \(maintenance.name), \(maintenance.message), \(deployments), \(components),
                    \(maintenance.scheduledFor), \(maintenance.scheduledUntil), \(maintenance.status.rawValue), \(maintenance.createdAt),
                    \(maintenance.updatedAt), \(maintenance.startedAt), \(maintenance.completedAt))
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, message = excluded.message, deployments = excluded.deployments,
                    components = excluded.components, scheduled_for = excluded.scheduled_for, scheduled_until = excluded.scheduled_until,
                    status = excluded.status, created_at = excluded.created_at, updated_at = excluded.updated_at,
                    started_at = excluded.started_at, completed_at = excluded.completed_at
                """, logger: logger)
            _ = try await connection.query("DELETE FROM maintenance_updates WHERE maintenance_id = \(maintenance.id)", logger: logger)
            for (position, update) in maintenance.updates.enumerated() {
                _ = try await connection.query("""
                    INSERT INTO maintenance_updates VALUES (\(update.id), \(maintenance.id), \(position), \(update.status.rawValue),
                        \(update.body), \(update.createdAt))
                    """, logger: logger)
            }
        }
    }

    public func addUptime(_ records: [UptimeRecord]) async throws {
        guard !records.isEmpty else { return }
        try await transaction { connection in
            for record in records {
                _ = try await connection.query("""
                    INSERT INTO uptime_days VALUES (\(record.component), \(record.day), \(record.observedSeconds), \(record.degradedSeconds),
                        \(record.partialOutageSeconds), \(record.majorOutageSeconds), \(record.maintenanceSeconds))
                    ON CONFLICT (component, day) DO UPDATE SET observed_s = uptime_days.observed_s + excluded.observed_s,
                        degraded_s = uptime_days.degraded_s + excluded.degraded_s, partial_s = uptime_days.partial_s + excluded.partial_s,
                        major_s = uptime_days.major_s + excluded.major_s, maintenance_s = uptime_days.maintenance_s + excluded.maintenance_s
                    """, logger: logger)
            }
        }
    }

    public func uptime(since day: Int) async throws -> [UptimeRecord] {
        try await rows("SELECT * FROM uptime_days WHERE day >= \(day) ORDER BY component, day").map { row in
            UptimeRecord(component: try row["component"].decode(String.self), day: try row["day"].decode(Int.self),
                         observedSeconds: try row["observed_s"].decode(Double.self), degradedSeconds: try row["degraded_s"].decode(Double.self),
                         partialOutageSeconds: try row["partial_s"].decode(Double.self), majorOutageSeconds: try row["major_s"].decode(Double.self),
                         maintenanceSeconds: try row["maintenance_s"].decode(Double.self))
        }
    }

    // MARK: Traffic history

    public func record(traffic: [TrafficMinute]) async throws {
        guard !traffic.isEmpty else { return }
        let oldest = (traffic.map(\.minute).max() ?? 0) - trafficKeptDays * 86_400
        try await transaction { connection in
            for row in traffic {
                _ = try await connection.query("""
                    INSERT INTO traffic_minutes VALUES (\(row.scope), \(row.minute), \(row.requests), \(row.tokens), \(row.busySeconds),
                        \(row.peakConcurrency), \(row.rateLimited))
                    ON CONFLICT (scope, minute) DO UPDATE SET requests = traffic_minutes.requests + excluded.requests,
                        tokens = traffic_minutes.tokens + excluded.tokens, busy_s = traffic_minutes.busy_s + excluded.busy_s,
                        peak_concurrency = GREATEST(traffic_minutes.peak_concurrency, excluded.peak_concurrency),
                        rate_limited = traffic_minutes.rate_limited + excluded.rate_limited
                    """, logger: logger)
            }
            _ = try await connection.query("DELETE FROM traffic_minutes WHERE minute < \(oldest)", logger: logger)
        }
    }

    public func traffic(since minute: Int) async throws -> [TrafficMinute] {
        try await rows("SELECT * FROM traffic_minutes WHERE minute >= \(minute) ORDER BY scope, minute").map { row in
            TrafficMinute(scope: try row["scope"].decode(String.self), minute: try row["minute"].decode(Int.self),
                          requests: try row["requests"].decode(Int.self), tokens: try row["tokens"].decode(Int.self),
                          busySeconds: try row["busy_s"].decode(Double.self), peakConcurrency: try row["peak_concurrency"].decode(Int.self),
                          rateLimited: try row["rate_limited"].decode(Int.self))
        }
    }

    // MARK: Deliveries and subscribers

    public func insert(_ delivery: StoredDelivery) async throws -> Bool {
        let inserted = try await rows("""
            INSERT INTO deliveries VALUES (\(delivery.id), \(delivery.key), \(delivery.kind), \(delivery.target), \(delivery.format),
                \(delivery.subjectID), \(delivery.subject), \(delivery.event), \(delivery.status), \(delivery.attempts),
                \(delivery.responseStatus), \(delivery.error), \(delivery.body), \(delivery.createdAt), \(delivery.finishedAt))
            ON CONFLICT DO NOTHING RETURNING id
            """)
        guard !inserted.isEmpty else { return false }
        try await run("""
            DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries ORDER BY created_at DESC OFFSET \(storedDeliveriesKept))
            """)
        return true
    }

    public func claim(deliveryID: String) async throws -> Bool {
        !(try await rows("""
            UPDATE deliveries SET attempts = 1 WHERE id = \(deliveryID) AND attempts = 0 AND status = 'pending' RETURNING id
            """)).isEmpty
    }

    public func update(_ delivery: StoredDelivery) async throws {
        try await run("""
            UPDATE deliveries SET status = \(delivery.status), attempts = \(delivery.attempts), response_status = \(delivery.responseStatus),
                error = \(delivery.error), finished_at = \(delivery.finishedAt) WHERE id = \(delivery.id)
            """)
    }

    public func deliveries(limit: Int) async throws -> [StoredDelivery] {
        try await rows("SELECT * FROM deliveries ORDER BY created_at DESC, id DESC LIMIT \(limit)").map(Self.delivery(from:))
    }

    public func deliveryKeys(limit: Int) async throws -> [String] {
        try await rows("SELECT key FROM deliveries ORDER BY created_at DESC LIMIT \(limit)").map { try $0["key"].decode(String.self) }
    }

    public func pendingDeliveries() async throws -> [StoredDelivery] {
        try await rows("SELECT * FROM deliveries WHERE status = 'pending' ORDER BY created_at, id").map(Self.delivery(from:))
    }

    private static func delivery(from row: PostgresRandomAccessRow) throws -> StoredDelivery {
        StoredDelivery(
            id: try row["id"].decode(String.self), key: try row["key"].decode(String.self), kind: try row["kind"].decode(String.self),
            target: try row["target"].decode(String.self), format: try row["format"].decode(String.self),
            subjectID: try row["subject_id"].decode(String.self), subject: try row["subject"].decode(String.self),
            event: try row["event"].decode(String.self), status: try row["status"].decode(String.self),
            attempts: try row["attempts"].decode(Int.self), responseStatus: try row["response_status"].decode(Int?.self),
            error: try row["error"].decode(String?.self), body: try row["body"].decode(String.self),
            createdAt: try row["created_at"].decode(Double.self), finishedAt: try row["finished_at"].decode(Double?.self))
    }

    public func subscribers() async throws -> [Subscriber] {
        try await rows("SELECT * FROM subscribers ORDER BY created_at, id").map { row in
            Subscriber(id: try row["id"].decode(String.self), endpoint: try row["endpoint"].decode(String.self),
                       tokenHash: try row["token_hash"].decode(String.self),
                       state: Subscriber.State(rawValue: try row["state"].decode(String.self)) ?? .pending,
                       components: Self.list(try row["components"].decode(String.self)), createdAt: try row["created_at"].decode(Double.self),
                       approvedAt: try row["approved_at"].decode(Double?.self))
        }
    }

    public func save(_ subscriber: Subscriber) async throws {
        let components = Self.list(subscriber.components)
        try await run("""
            INSERT INTO subscribers VALUES (\(subscriber.id), \(subscriber.endpoint), \(subscriber.tokenHash), \(subscriber.state.rawValue),
                \(components), \(subscriber.createdAt), \(subscriber.approvedAt))
            ON CONFLICT (id) DO UPDATE SET endpoint = excluded.endpoint, token_hash = excluded.token_hash, state = excluded.state,
                components = excluded.components, created_at = excluded.created_at, approved_at = excluded.approved_at
            """)
    }

    public func removeSubscriber(id: String) async throws -> Bool {
        !(try await rows("DELETE FROM subscribers WHERE id = \(id) RETURNING id")).isEmpty
    }

    public func save(_ response: StoredResponse, now: Double, limit: Int) async throws {
        try await transaction { connection in
            _ = try await connection.query("DELETE FROM stored_responses WHERE id = \(response.id)", logger: logger)
            _ = try await connection.query("""
                INSERT INTO stored_responses (id, owner, created_at, expires_at, response, conversation)
                VALUES (\(response.id), \(response.owner), \(response.createdAt), \(response.expiresAt), \(response.response), \(response.conversation))
                """, logger: logger)
            _ = try await connection.query("DELETE FROM stored_responses WHERE expires_at <= \(now)", logger: logger)
            // Each save takes the next `seq`, so the rows of earlier saves are a `seq` range.
            let keep = max(0, limit)
            _ = try await connection.query(
                "DELETE FROM stored_responses WHERE seq <= (SELECT max(seq) FROM stored_responses) - \(keep)", logger: logger)
        }
    }

    public func storedResponse(id: String, owner: String, now: Double) async throws -> StoredResponse? {
        try await rows("SELECT * FROM stored_responses WHERE id = \(id) AND owner = \(owner) AND expires_at > \(now)").first.map { row in
            StoredResponse(id: try row["id"].decode(String.self), owner: try row["owner"].decode(String.self),
                           createdAt: try row["created_at"].decode(Double.self), expiresAt: try row["expires_at"].decode(Double.self),
                           response: try row["response"].decode(String.self), conversation: try row["conversation"].decode(String.self))
        }
    }

    public func deleteStoredResponse(id: String, owner: String) async throws -> Bool {
        !(try await rows("DELETE FROM stored_responses WHERE id = \(id) AND owner = \(owner) RETURNING id")).isEmpty
    }

    // MARK: Answer cache

    public func put(_ entry: StoredCacheEntry, maxRows: Int) async throws {
        try await transaction { connection in
            _ = try await connection.query("""
                INSERT INTO answer_cache (key, model, created_at, expires_at, stale_until, size, answer)
                VALUES (\(entry.key), \(entry.model), \(entry.createdAt), \(entry.expiresAt), \(entry.staleUntil), \(entry.size), \(entry.answer))
                ON CONFLICT (key) DO UPDATE SET model = excluded.model, created_at = excluded.created_at, expires_at = excluded.expires_at,
                    stale_until = excluded.stale_until, size = excluded.size, answer = excluded.answer
                """, logger: logger)
            let keep = max(0, maxRows)
            _ = try await connection.query("""
                DELETE FROM answer_cache WHERE model = \(entry.model) AND key IN
                    (SELECT key FROM answer_cache WHERE model = \(entry.model) ORDER BY created_at DESC, key DESC OFFSET \(keep))
                """, logger: logger)
        }
    }

    public func cacheEntry(key: String, now: Double) async throws -> StoredCacheEntry? {
        try await rows("SELECT * FROM answer_cache WHERE key = \(key) AND stale_until >= \(now)").first.map { row in
            StoredCacheEntry(key: try row["key"].decode(String.self), model: try row["model"].decode(String.self),
                             createdAt: try row["created_at"].decode(Double.self), expiresAt: try row["expires_at"].decode(Double.self),
                             staleUntil: try row["stale_until"].decode(Double.self), size: Int(try row["size"].decode(Int64.self)),
                             answer: try row["answer"].decode(String.self))
        }
    }

    public func purgeCacheEntries(model: String?) async throws -> Int {
        if let model { return try await rows("DELETE FROM answer_cache WHERE model = \(model) RETURNING key").count }
        return try await rows("DELETE FROM answer_cache RETURNING key").count
    }

    public func removeExpiredCacheEntries(now: Double) async throws -> Int {
        try await rows("DELETE FROM answer_cache WHERE stale_until < \(now) RETURNING key").count
    }

    public func close() async throws {
        // The lock goes first, so another instance takes over at once.
        await leadership.release()
        runner.cancel()
        await runner.value
    }
}

/// The leader's advisory lock, on a connection of its own: PostgreSQL releases a session's lock
/// when the session ends, so a leader that dies (or loses its connection) frees the lock at once,
/// and another instance takes it on its next try. Keepalives are short on that session, so a
/// peer cut off by the network is noticed within seconds rather than hours.
actor Leadership {
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private var connection: PostgresConnection?
    private var holding = false

    init(configuration: PostgresConnection.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// True while the lock is held: a quick query proves the session (and so the lock) is alive.
    func hold() async throws -> Bool {
        // A session that ended took the lock with it: step down now; taking it again on a later
        // try is a new takeover (another instance may have led meanwhile).
        if holding, connection?.isClosed ?? true {
            await release()
            return false
        }
        do {
            let connection = try await connected()
            if holding {
                _ = try await connection.query("SELECT 1", logger: logger).collect()
                return true
            }
            let rows = try await connection.query("SELECT pg_try_advisory_lock(\(PostgresStore.leaderLock)) AS held", logger: logger).collect()
            holding = try rows.first?.makeRandomAccess()["held"].decode(Bool.self) ?? false
            return holding
        } catch {
            await release()
            throw error
        }
    }

    private func connected() async throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        holding = false
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
        for setting in ["tcp_keepalives_idle = 5", "tcp_keepalives_interval = 1", "tcp_keepalives_count = 3"] {
            _ = try await connection.query(PostgresQuery(unsafeSQL: "SET " + setting), logger: logger).collect()
        }
        self.connection = connection
        return connection
    }

    /// Closing the session releases the lock.
    func release() async {
        holding = false
        guard let connection else { return }
        self.connection = nil
        try? await connection.close()
    }
}
