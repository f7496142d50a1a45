import Foundation
import LifelineCore
import LifelineStore
import SQLiteNIO
import XCTest

/// The behaviour every store must have. Each back-end's test class runs every check with
/// fresh, empty stores of its kind.
enum StoreContract {
    static func sampleKey(_ id: String, hash: String? = nil) -> StoredKey {
        StoredKey(id: id, name: "team \(id)", secretHash: hash ?? "hash-\(id)", prefix: "sk-ll-abcd", tier: "high",
                  requestsPerMinute: 60, tokensPerMinute: nil, maxConcurrency: 4, budgetTokens: 1000, budgetPeriod: "day",
                  models: ["chat-a", "chat-b"], expiresAt: Date(timeIntervalSince1970: 2_000_000_000),
                  createdAt: Date(timeIntervalSince1970: 1_700_000_000))
    }

    static func keysRoundTripAndRevokeOnce(_ store: any LifelineStore) async throws {
        try await store.insert(sampleKey("k1"))
        try await store.insert(sampleKey("k2"))
        let keys = try await store.keys()
        XCTAssertEqual(keys.map(\.id), ["k1", "k2"])
        XCTAssertEqual(keys[0], sampleKey("k1"))
        let revokedAt = Date(timeIntervalSince1970: 1_800_000_000)
        let first = try await store.revokeKey(id: "k1", at: revokedAt)
        let second = try await store.revokeKey(id: "k1", at: revokedAt)
        let missing = try await store.revokeKey(id: "nope", at: revokedAt)
        XCTAssertEqual([first, second, missing], [true, false, false])
        let afterRevoke = try await store.keys()
        XCTAssertEqual(afterRevoke[0].revokedAt, revokedAt)
        try await store.close()
    }

    static func duplicateSecretIsRefused(_ store: any LifelineStore) async throws {
        try await store.insert(sampleKey("k1", hash: "same"))
        do {
            try await store.insert(sampleKey("k2", hash: "same"))
            XCTFail("accepted a duplicate secret hash")
        } catch {
            XCTAssertEqual(error as? StoreError, .duplicate("key k2"))
        }
        try await store.close()
    }

    static func usageOfTheSameMinuteAddsUp(_ store: any LifelineStore) async throws {
        try await store.record([UsageRecord(keyID: "k1", minute: 60, requests: 1, promptTokens: 10, completionTokens: 5),
                                UsageRecord(keyID: "k1", minute: 60, requests: 2, promptTokens: 1, completionTokens: 1),
                                UsageRecord(keyID: "k1", minute: 120, requests: 1, promptTokens: 100, completionTokens: 0),
                                UsageRecord(keyID: "k2", minute: 120, requests: 1, promptTokens: 7, completionTokens: 7)])
        let all = try await store.usage(since: 0, keyID: nil)
        XCTAssertEqual(all["k1"]?.requests, 4)
        XCTAssertEqual(all["k1"]?.totalTokens, 117)
        let recent = try await store.usage(since: 120, keyID: "k1")
        XCTAssertEqual(recent.count, 1)
        XCTAssertEqual(recent["k1"]?.promptTokens, 100)
        try await store.close()
    }

    static func sampleIncident() -> Incident {
        var incident = Incident(id: "inc1", name: "Elevated errors on chat-a", status: .investigating, impact: .critical, createdAt: 1_000,
                                components: ["chat-a"], automatic: true, published: false)
        incident.startedAt = 940
        incident.add(status: .investigating, body: "We are investigating.", at: 1_000, affected: ["chat-a": .majorOutage, "API": .partialOutage])
        incident.add(status: .monitoring, body: "Back to normal.", at: 1_100)
        return incident
    }

    static func incidentsRoundTripWithTheirUpdates(_ store: any LifelineStore) async throws {
        var incident = sampleIncident()
        try await store.save(incident)
        let loaded = try await store.incidents()
        XCTAssertEqual(loaded, [incident])
        incident.add(status: .resolved, body: "Resolved.", at: 1_400)
        incident.published = true
        try await store.save(incident)
        let again = try await store.incidents()
        XCTAssertEqual(again, [incident])
        XCTAssertEqual(again[0].updates.map(\.status), [.investigating, .monitoring, .resolved])
        XCTAssertEqual(again[0].resolvedAt, 1_400)
        try await store.close()
    }

    static func maintenancesRoundTripWithTheirUpdates(_ store: any LifelineStore) async throws {
        var maintenance = Maintenance(id: "m1", name: "Upgrade", message: "Upgrading a", deployments: ["a", "b"], components: ["chat-a"],
                                      scheduledFor: 2_000, scheduledUntil: 3_000, createdAt: 1_000)
        try await store.save(maintenance)
        maintenance.move(to: .inProgress, body: "Started", at: 2_000)
        try await store.save(maintenance)
        let loaded = try await store.maintenances()
        XCTAssertEqual(loaded, [maintenance])
        try await store.close()
    }

    static func uptimeOfTheSameDayAddsUp(_ store: any LifelineStore) async throws {
        try await store.addUptime([UptimeRecord(component: "API", day: 100, observedSeconds: 60, majorOutageSeconds: 6),
                                   UptimeRecord(component: "API", day: 100, observedSeconds: 40, partialOutageSeconds: 10),
                                   UptimeRecord(component: "API", day: 101, observedSeconds: 10)])
        let rows = try await store.uptime(since: 100)
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows[0].observedSeconds, 100)
        XCTAssertEqual(rows[0].uptime!, 1 - (6 + 3) / 100.0, accuracy: 1e-9)
        let recent = try await store.uptime(since: 101)
        XCTAssertEqual(recent.map(\.day), [101])
        try await store.close()
    }
}

extension StoreContract {
    static func sharedBucketsArePerInstanceReplacedAndExpire(_ store: any LifelineStore) async throws {
        func bucket(_ instance: String, _ index: Int64, good: Int, total: Int, keepUntil: Double = 4e9) -> SharedBucket {
            SharedBucket(instance: instance, series: "slo:chat:minute", width: 60, index: index, good: good, total: total, keepUntil: keepUntil)
        }
        let now = Date().timeIntervalSince1970
        try await store.publish([bucket("a", 1, good: 9, total: 10), bucket("a", 2, good: 5, total: 5), bucket("b", 2, good: 1, total: 3)], now: now)
        try await store.publish([bucket("a", 2, good: 6, total: 8)], now: now)
        let (all, readAt) = try await store.sharedBuckets(changedSince: nil)
        XCTAssertEqual(all.sorted { ($0.instance, $0.index) < ($1.instance, $1.index) },
                       [bucket("a", 1, good: 9, total: 10), bucket("a", 2, good: 6, total: 8), bucket("b", 2, good: 1, total: 3)],
                       "each instance's row replaced by its own newer count, never added to another's")
        try await Task.sleep(for: .milliseconds(20))
        try await store.publish([bucket("b", 3, good: 2, total: 2), bucket("a", 1, good: 0, total: 1, keepUntil: now - 1)],
                                now: Date().timeIntervalSince1970)
        let (changed, _) = try await store.sharedBuckets(changedSince: readAt)
        XCTAssertEqual(changed, [bucket("b", 3, good: 2, total: 2)], "only what was written after the read; a bucket past its time is forgotten")
        let (left, _) = try await store.sharedBuckets(changedSince: nil)
        XCTAssertFalse(left.contains { $0.instance == "a" && $0.index == 1 })
        try await store.close()
    }
}

extension StoreContract {
    static func alertStatesAreReplacedWhole(_ store: any LifelineStore) async throws {
        let firing = SavedAlert(state: BurnRateAlertState(firingSince: 100, quietSince: 130), peakBurn: 20)
        try await store.saveAlerts(["chat:availability:burn-1h": firing, "chat:latency:burn-6h": SavedAlert(state: BurnRateAlertState(firingSince: 5, quietSince: nil), peakBurn: 7)])
        try await store.saveAlerts(["chat:availability:burn-1h": firing])
        let loaded = try await store.loadAlerts()
        XCTAssertEqual(loaded, ["chat:availability:burn-1h": firing])
        try await store.close()
    }

    static func deliveriesAreKeyedOnceAndUpdated(_ store: any LifelineStore) async throws {
        func delivery(_ id: String, key: String, at: Double) -> StoredDelivery {
            StoredDelivery(id: id, key: key, kind: "subscriber", target: "sub1", format: "statuspage", subjectID: "inc1", subject: "Errors",
                           event: "upd1", status: "pending", body: #"{"a":1}"#, createdAt: at)
        }
        let first = try await store.insert(delivery("d1", key: "k1", at: 10))
        let again = try await store.insert(delivery("d2", key: "k1", at: 11))
        _ = try await store.insert(delivery("d3", key: "k2", at: 12))
        XCTAssertEqual([first, again], [true, false])
        var sent = delivery("d1", key: "k1", at: 10)
        sent.status = "delivered"
        sent.attempts = 2
        sent.responseStatus = 204
        sent.finishedAt = 15
        try await store.update(sent)
        let newest = try await store.deliveries(limit: 10)
        XCTAssertEqual(newest.map(\.id), ["d3", "d1"])
        XCTAssertEqual(newest.last, sent)
        let pending = try await store.pendingDeliveries()
        let keys = try await store.deliveryKeys(limit: 10)
        XCTAssertEqual(pending.map(\.id), ["d3"])
        XCTAssertEqual(keys, ["k2", "k1"])
        let claims = [try await store.claim(deliveryID: "d3"), try await store.claim(deliveryID: "d3"),
                      try await store.claim(deliveryID: "d1"), try await store.claim(deliveryID: "nope")]
        XCTAssertEqual(claims, [true, false, false, false], "a pending delivery is taken once; a finished or unknown one never")
        let taken = try await store.pendingDeliveries()
        XCTAssertEqual(taken.first?.attempts, 1)
        try await store.close()
    }

    static func subscribersRoundTripAndRemove(_ store: any LifelineStore) async throws {
        var subscriber = Subscriber(id: "s1", endpoint: "https://hooks.example.test/x?token=1", tokenHash: "abc", state: .pending,
                                    components: ["API", "chat-a"], createdAt: 100)
        try await store.save(subscriber)
        subscriber.state = .active
        subscriber.approvedAt = 200
        try await store.save(subscriber)
        let saved = try await store.subscribers()
        let first = try await store.removeSubscriber(id: "s1")
        let second = try await store.removeSubscriber(id: "s1")
        let remaining = try await store.subscribers()
        XCTAssertEqual(saved, [subscriber])
        XCTAssertEqual([first, second], [true, false])
        XCTAssertEqual(remaining, [])
        try await store.close()
    }

    static func storedResponsesAreTheOwnersAndAgeOut(_ store: any LifelineStore) async throws {
        func response(_ id: String, owner: String = "k1", at created: Double, expires: Double = 10_000) -> StoredResponse {
            StoredResponse(id: id, owner: owner, createdAt: created, expiresAt: expires, response: #"{"id":"\#(id)"}"#, conversation: "[]")
        }
        try await store.save(response("resp_a", at: 100), now: 100, limit: 3)
        try await store.save(response("resp_b", owner: "k2", at: 101), now: 101, limit: 3)
        let own = try await store.storedResponse(id: "resp_a", owner: "k1", now: 102)
        let others = try await store.storedResponse(id: "resp_a", owner: "k2", now: 102)
        XCTAssertEqual(own, response("resp_a", at: 100))
        XCTAssertNil(others, "another owner read a stored response")
        let expired = try await store.storedResponse(id: "resp_a", owner: "k1", now: 10_000)
        XCTAssertNil(expired, "an expired response was returned")

        // Beyond the limit the oldest go; expired ones go at the next save.
        try await store.save(response("resp_short", at: 102, expires: 150), now: 102, limit: 3)
        try await store.save(response("resp_c", at: 103), now: 103, limit: 3)
        let oldest = try await store.storedResponse(id: "resp_a", owner: "k1", now: 104)
        let newest = try await store.storedResponse(id: "resp_c", owner: "k1", now: 104)
        XCTAssertNil(oldest, "the oldest response outlived the limit")
        XCTAssertNotNil(newest)
        try await store.save(response("resp_d", at: 200), now: 200, limit: 3)
        let short = try await store.storedResponse(id: "resp_short", owner: "k1", now: 120)
        XCTAssertNil(short, "an expired response was not forgotten")

        let othersDelete = try await store.deleteStoredResponse(id: "resp_d", owner: "k2")
        let ownDelete = try await store.deleteStoredResponse(id: "resp_d", owner: "k1")
        let again = try await store.deleteStoredResponse(id: "resp_d", owner: "k1")
        XCTAssertEqual([othersDelete, ownDelete, again], [false, true, false])
        let deleted = try await store.storedResponse(id: "resp_d", owner: "k1", now: 200)
        XCTAssertNil(deleted)
        try await store.close()
    }

    static func cacheEntriesAreBoundedPerModelPurgedAndSwept(_ store: any LifelineStore) async throws {
        func entry(_ key: String, model: String = "m1", at created: Double, staleUntil: Double = 10_000) -> StoredCacheEntry {
            StoredCacheEntry(key: key, model: model, createdAt: created, expiresAt: created + 60, staleUntil: staleUntil, size: 300,
                             answer: #"{"text":"\#(key)"}"#)
        }
        try await store.put(entry("a", at: 100), maxRows: 2)
        try await store.put(entry("b", at: 101), maxRows: 2)
        try await store.put(entry("x", model: "m2", at: 102), maxRows: 2)
        let found = try await store.cacheEntry(key: "a", now: 150)
        XCTAssertEqual(found, entry("a", at: 100))
        // Replacing a key keeps one row with the new answer.
        var replaced = entry("b", at: 103)
        replaced.answer = #"{"text":"b2"}"#
        try await store.put(replaced, maxRows: 2)
        let again = try await store.cacheEntry(key: "b", now: 150)
        XCTAssertEqual(again, replaced)
        // Beyond maxRows the model's oldest goes; another model's rows do not count.
        try await store.put(entry("c", at: 104), maxRows: 2)
        let oldest = try await store.cacheEntry(key: "a", now: 150)
        let other = try await store.cacheEntry(key: "x", now: 150)
        XCTAssertNil(oldest, "the oldest entry outlived max_entries")
        XCTAssertNotNil(other, "a bound of one model removed another model's entry")
        // Past the stale window an entry is not returned, and the sweep removes exactly those.
        try await store.put(entry("short", model: "m2", at: 105, staleUntil: 200), maxRows: 5)
        let pastWindow = try await store.cacheEntry(key: "short", now: 201)
        XCTAssertNil(pastWindow, "an entry past its stale window was returned")
        let swept = try await store.removeExpiredCacheEntries(now: 201)
        XCTAssertEqual(swept, 1)
        let withinWindow = try await store.cacheEntry(key: "short", now: 150)
        XCTAssertNil(withinWindow, "the sweep left an expired row")
        // Purge by model, then all.
        let purgedM2 = try await store.purgeCacheEntries(model: "m2")
        XCTAssertEqual(purgedM2, 1)
        let remaining = try await store.cacheEntry(key: "c", now: 150)
        XCTAssertNotNil(remaining, "purging one model removed another's entry")
        let purgedAll = try await store.purgeCacheEntries(model: nil)
        XCTAssertEqual(purgedAll, 2)
        let gone = try await store.cacheEntry(key: "c", now: 150)
        XCTAssertNil(gone)
        try await store.close()
    }

    static func incidentEvidenceAndPostmortemRoundTrip(_ store: any LifelineStore) async throws {
        var incident = sampleIncident()
        incident.evidence.record(ObservedRequest(at: 1_010, available: false, caller: "k1", deployment: "a", completionTokens: 7))
        incident.evidence.recordEjection(deployment: "a", at: 1_011)
        incident.postmortemBody = "## Summary\nIt broke."
        incident.postmortemUpdatedAt = 1_100
        incident.postmortemPublishedAt = 1_200
        try await store.save(incident)
        let loaded = try await store.incidents()
        XCTAssertEqual(loaded, [incident])
        try await store.close()
    }
}

extension StoreContract {
    static func trafficMinutesAddUpKeepThePeakAndAgeOut(_ store: any LifelineStore) async throws {
        let now = 1_800_000_000
        try await store.record(traffic: [
            TrafficMinute(scope: "model:chat", minute: now, requests: 3, tokens: 30, busySeconds: 1.5, peakConcurrency: 2),
            TrafficMinute(scope: "deployment:a", minute: now, requests: 3, tokens: 30, busySeconds: 1.5, peakConcurrency: 2, rateLimited: 1),
            TrafficMinute(scope: "model:chat", minute: now - 20 * 86_400, requests: 9),
        ])
        try await store.record(traffic: [TrafficMinute(scope: "model:chat", minute: now, requests: 2, tokens: 10, busySeconds: 0.5, peakConcurrency: 5)])
        let rows = try await store.traffic(since: 0)
        XCTAssertEqual(rows, [
            TrafficMinute(scope: "deployment:a", minute: now, requests: 3, tokens: 30, busySeconds: 1.5, peakConcurrency: 2, rateLimited: 1),
            TrafficMinute(scope: "model:chat", minute: now, requests: 5, tokens: 40, busySeconds: 2, peakConcurrency: 5),
        ], "same minute adds up, the peak is the larger, minutes older than the kept days are gone")
        try await store.close()
    }
}

final class SQLiteStoreTests: XCTestCase {
    var directory: URL!

    override func setUp() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeline-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func makeStore() async throws -> any LifelineStore {
        try await SQLiteStore.open(path: directory.appendingPathComponent("lifeline-\(UUID().uuidString).sqlite").path)
    }

    func testKeysRoundTripAndRevokeOnce() async throws { try await StoreContract.keysRoundTripAndRevokeOnce(try await makeStore()) }
    func testADuplicateSecretIsRefused() async throws { try await StoreContract.duplicateSecretIsRefused(try await makeStore()) }
    func testUsageOfTheSameMinuteAddsUp() async throws { try await StoreContract.usageOfTheSameMinuteAddsUp(try await makeStore()) }
    func testSharedBucketsArePerInstanceReplacedAndExpire() async throws {
        try await StoreContract.sharedBucketsArePerInstanceReplacedAndExpire(try await makeStore())
    }
    func testIncidentsRoundTripWithTheirUpdates() async throws {
        try await StoreContract.incidentsRoundTripWithTheirUpdates(try await makeStore())
    }
    func testMaintenancesRoundTripWithTheirUpdates() async throws {
        try await StoreContract.maintenancesRoundTripWithTheirUpdates(try await makeStore())
    }
    func testUptimeOfTheSameDayAddsUp() async throws { try await StoreContract.uptimeOfTheSameDayAddsUp(try await makeStore()) }
    func testAlertStatesAreReplacedWhole() async throws { try await StoreContract.alertStatesAreReplacedWhole(try await makeStore()) }
    func testDeliveriesAreKeyedOnceAndUpdated() async throws { try await StoreContract.deliveriesAreKeyedOnceAndUpdated(try await makeStore()) }
    func testSubscribersRoundTripAndRemove() async throws { try await StoreContract.subscribersRoundTripAndRemove(try await makeStore()) }
    func testStoredResponsesAreTheOwnersAndAgeOut() async throws {
        try await StoreContract.storedResponsesAreTheOwnersAndAgeOut(try await makeStore())
    }
    func testCacheEntriesAreBoundedPerModelPurgedAndSwept() async throws {
        try await StoreContract.cacheEntriesAreBoundedPerModelPurgedAndSwept(try await makeStore())
    }
    func testTrafficMinutesAddUpKeepThePeakAndAgeOut() async throws {
        try await StoreContract.trafficMinutesAddUpKeepThePeakAndAgeOut(try await makeStore())
    }
    func testIncidentEvidenceAndPostmortemRoundTrip() async throws {
        try await StoreContract.incidentEvidenceAndPostmortemRoundTrip(try await makeStore())
    }

    func testIncidentsSurviveReopeningAndAVersionOneFileIsMigrated() async throws {
        let path = directory.appendingPathComponent("upgrade.sqlite").path
        let first = try await SQLiteStore.open(path: path)
        try await first.insert(StoreContract.sampleKey("k1"))
        try await first.close()
        // As a file written before the status and SLI tables existed.
        for table in ["incident_updates", "incidents", "maintenance_updates", "maintenances", "uptime_days", "shared_buckets", "alert_states",
                      "deliveries", "subscribers", "traffic_minutes", "stored_responses", "answer_cache"] {
            try await runSQLite(path, "DROP TABLE \(table)")
        }
        try await runSQLite(path, "PRAGMA user_version = 1")
        let second = try await SQLiteStore.open(path: path)
        try await second.save(StoreContract.sampleIncident())
        try await second.close()
        let third = try await SQLiteStore.open(path: path)
        let incidents = try await third.incidents()
        let keys = try await third.keys()
        XCTAssertEqual(incidents, [StoreContract.sampleIncident()])
        XCTAssertEqual(keys.map(\.id), ["k1"])
        try await third.close()
    }

    func testSLIBucketsKeptBeforeInstancesBecomeAnEarlierInstancesRows() async throws {
        let path = directory.appendingPathComponent("buckets.sqlite").path
        try await SQLiteStore.open(path: path).close()
        // As a file of schema 5, when one process kept its buckets without an instance.
        try await runSQLite(path, "DROP TABLE shared_buckets")
        try await runSQLite(path, "DROP TABLE stored_responses")
        try await runSQLite(path, "DROP TABLE answer_cache")
        try await runSQLite(path, """
            CREATE TABLE sli_buckets (slo TEXT NOT NULL, ring TEXT NOT NULL, width REAL NOT NULL, idx INTEGER NOT NULL,
                good INTEGER NOT NULL, total INTEGER NOT NULL, PRIMARY KEY (slo, ring, idx))
            """)
        try await runSQLite(path, "INSERT INTO sli_buckets VALUES ('chat', 'hour', 3600, 490000, 95, 100)")
        try await runSQLite(path, "PRAGMA user_version = 5")
        let store = try await SQLiteStore.open(path: path)
        let (rows, _) = try await store.sharedBuckets(changedSince: nil)
        XCTAssertEqual(rows.map { [$0.instance, $0.series, "\($0.index)", "\($0.good)/\($0.total)"] },
                       [["earlier", "slo:chat:hour", "490000", "95/100"]])
        try await store.close()
    }

    func testDataSurvivesReopening() async throws {
        let path = directory.appendingPathComponent("reopen.sqlite").path
        let first = try await SQLiteStore.open(path: path)
        try await first.insert(StoreContract.sampleKey("k1"))
        try await first.close()
        let second = try await SQLiteStore.open(path: path)
        let keys = try await second.keys()
        XCTAssertEqual(keys.map(\.id), ["k1"])
        try await second.close()
    }

    func testANewerSchemaIsRefusedAndLeftUntouched() async throws {
        let path = directory.appendingPathComponent("newer.sqlite").path
        let store = try await SQLiteStore.open(path: path)
        try await store.insert(StoreContract.sampleKey("k1"))
        try await store.close()
        try await runSQLite(path, "PRAGMA user_version = 99")
        do {
            _ = try await SQLiteStore.open(path: path)
            XCTFail("opened a newer schema")
        } catch {
            XCTAssertEqual(error as? StoreError, .newerSchema(found: 99, supported: SQLiteStore.schemaVersion, path: path))
            XCTAssertTrue("\(error)".contains("Nothing was changed"))
        }
        try await runSQLite(path, "PRAGMA user_version = \(SQLiteStore.schemaVersion)")
        let reopened = try await SQLiteStore.open(path: path)
        let keys = try await reopened.keys()
        XCTAssertEqual(keys.count, 1)
        try await reopened.close()
    }

    func testACorruptFileGivesAClearErrorAndIsNotOverwritten() async throws {
        let path = directory.appendingPathComponent("corrupt.sqlite").path
        let garbage = Data(repeating: 0x42, count: 4096)
        try garbage.write(to: URL(fileURLWithPath: path))
        do {
            _ = try await SQLiteStore.open(path: path)
            XCTFail("opened a corrupt file")
        } catch {
            guard case .unreadable(let reported, _)? = error as? StoreError else { return XCTFail("\(error)") }
            XCTAssertEqual(reported, path)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), garbage)
    }

    /// Changes a file behind the store's back, as another program (or a newer Lifeline) would.
    func runSQLite(_ path: String, _ statement: String) async throws {
        let connection = try await SQLiteConnection.open(storage: .file(path: path))
        _ = try await connection.query(statement, [])
        try await connection.close()
    }
}

/// The same contract on PostgreSQL, each test in a database of its own. Runs when
/// `LIFELINE_TEST_POSTGRES_URL` names a server (scripts/test.sh starts one); skipped otherwise.
final class PostgresStoreTests: XCTestCase {
    var adminURL = ""
    var databases: [String] = []

    override func setUp() async throws {
        guard let url = ProcessInfo.processInfo.environment["LIFELINE_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw XCTSkip("LIFELINE_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
        }
        adminURL = url
    }

    override func tearDown() async throws {
        for database in databases { try? await runPostgres(adminURL, "DROP DATABASE IF EXISTS \(database) WITH (FORCE)") }
    }

    /// A fresh, empty database and its URL.
    func freshDatabase() async throws -> String {
        let name = "lifeline_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await runPostgres(adminURL, "CREATE DATABASE \(name)")
        databases.append(name)
        var components = try XCTUnwrap(URLComponents(string: adminURL))
        components.path = "/" + name
        return try XCTUnwrap(components.string)
    }

    func makeStore() async throws -> any LifelineStore {
        try await PostgresStore.open(url: try await freshDatabase())
    }

    func testKeysRoundTripAndRevokeOnce() async throws { try await StoreContract.keysRoundTripAndRevokeOnce(try await makeStore()) }
    func testADuplicateSecretIsRefused() async throws { try await StoreContract.duplicateSecretIsRefused(try await makeStore()) }
    func testUsageOfTheSameMinuteAddsUp() async throws { try await StoreContract.usageOfTheSameMinuteAddsUp(try await makeStore()) }
    func testSharedBucketsArePerInstanceReplacedAndExpire() async throws {
        try await StoreContract.sharedBucketsArePerInstanceReplacedAndExpire(try await makeStore())
    }
    func testIncidentsRoundTripWithTheirUpdates() async throws {
        try await StoreContract.incidentsRoundTripWithTheirUpdates(try await makeStore())
    }
    func testMaintenancesRoundTripWithTheirUpdates() async throws {
        try await StoreContract.maintenancesRoundTripWithTheirUpdates(try await makeStore())
    }
    func testUptimeOfTheSameDayAddsUp() async throws { try await StoreContract.uptimeOfTheSameDayAddsUp(try await makeStore()) }
    func testAlertStatesAreReplacedWhole() async throws { try await StoreContract.alertStatesAreReplacedWhole(try await makeStore()) }
    func testDeliveriesAreKeyedOnceAndUpdated() async throws { try await StoreContract.deliveriesAreKeyedOnceAndUpdated(try await makeStore()) }
    func testSubscribersRoundTripAndRemove() async throws { try await StoreContract.subscribersRoundTripAndRemove(try await makeStore()) }
    func testStoredResponsesAreTheOwnersAndAgeOut() async throws {
        try await StoreContract.storedResponsesAreTheOwnersAndAgeOut(try await makeStore())
    }
    func testCacheEntriesAreBoundedPerModelPurgedAndSwept() async throws {
        try await StoreContract.cacheEntriesAreBoundedPerModelPurgedAndSwept(try await makeStore())
    }
    func testTrafficMinutesAddUpKeepThePeakAndAgeOut() async throws {
        try await StoreContract.trafficMinutesAddUpKeepThePeakAndAgeOut(try await makeStore())
    }
    func testIncidentEvidenceAndPostmortemRoundTrip() async throws {
        try await StoreContract.incidentEvidenceAndPostmortemRoundTrip(try await makeStore())
    }

    func testInstancesStartingAtOnceMigrateOnceAndShareData() async throws {
        let url = try await freshDatabase()
        let stores = try await withThrowingTaskGroup(of: PostgresStore.self) { group in
            for _ in 0..<4 { group.addTask { try await PostgresStore.open(url: url) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(stores.count, 4)
        try await stores[0].insert(StoreContract.sampleKey("k1"))
        let seen = try await stores[3].keys()
        XCTAssertEqual(seen.map(\.id), ["k1"], "one database behind every instance")
        for store in stores { try await store.close() }
        let version = try await queryPostgres(url, "SELECT version FROM lifeline_schema")
        XCTAssertEqual(version, ["\(PostgresStore.schemaVersion)"])
    }

    func testOneInstanceLeadsAndAnotherTakesOverWhenItGoes() async throws {
        let url = try await freshDatabase()
        let first = try await PostgresStore.open(url: url)
        let second = try await PostgresStore.open(url: url)
        let firstLeads = try await first.lead()
        let secondLeads = try await second.lead()
        let firstStillLeads = try await first.lead()
        XCTAssertEqual([firstLeads, secondLeads, firstStillLeads], [true, false, true])
        try await first.close()
        let secondLeadsNow = try await second.lead()
        XCTAssertTrue(secondLeadsNow, "the lock goes with the session that held it")
        // A leader whose session the server ends finds out on its next check, and the lock is free.
        let database = try XCTUnwrap(URLComponents(string: url)).path.dropFirst()
        let holders = """
            FROM pg_locks WHERE locktype = 'advisory' AND objid = \(UInt32(truncatingIfNeeded: PostgresStore.leaderLock))
                AND database = (SELECT oid FROM pg_database WHERE datname = '\(database)')
            """
        try await runPostgres(adminURL, "SELECT pg_terminate_backend(pid) " + holders)
        // Ending a backend is asynchronous: wait (bounded) until its lock is gone.
        for _ in 0..<100 where try await queryPostgres(adminURL, "SELECT count(*) " + holders) != ["0"] {
            try await Task.sleep(for: .milliseconds(20))
        }
        let secondAfterItsSessionEnded = (try? await second.lead()) ?? false
        XCTAssertFalse(secondAfterItsSessionEnded, "a leader whose session ended still claimed the lock")
        let third = try await PostgresStore.open(url: url)
        let thirdLeads = try await third.lead()
        XCTAssertTrue(thirdLeads)
        try await second.close()
        try await third.close()
    }

    func testANewerSchemaIsRefused() async throws {
        let url = try await freshDatabase()
        try await PostgresStore.open(url: url).close()
        try await runPostgres(url, "UPDATE lifeline_schema SET version = 99")
        do {
            _ = try await PostgresStore.open(url: url)
            XCTFail("opened a database with a newer schema")
        } catch {
            XCTAssertTrue("\(error)".contains("newer"), "\(error)")
        }
    }

    func testAURLWithoutAHostIsRefusedWithoutItsPassword() async throws {
        do {
            _ = try await PostgresStore.open(url: "mysql://user:hunter2@/x")
            XCTFail("accepted a non-postgres URL")
        } catch {
            XCTAssertFalse("\(error)".contains("hunter2"), "\(error)")
        }
    }
}

/// Runs one statement outside any transaction (CREATE DATABASE needs that).
func runPostgres(_ url: String, _ sql: String) async throws {
    _ = try await PostgresStore.administer(url: url, sql)
}

func queryPostgres(_ url: String, _ sql: String) async throws -> [String] {
    try await PostgresStore.administer(url: url, sql)
}
