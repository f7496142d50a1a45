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
}

extension StoreContract {
    static func sliBucketsSurviveAndUpsert(_ store: any LifelineStore) async throws {
        let first = SLIBucketSnapshot(minuteWidth: 60, minutes: [SLIBucket(index: 1, good: 9, total: 10), SLIBucket(index: 2, good: 5, total: 5)],
                                      hourWidth: 3600, hours: [SLIBucket(index: 7, good: 14, total: 15)])
        try await store.saveSLIBuckets(slo: "chat:availability", first)
        try await store.saveSLIBuckets(slo: "chat:availability",
                                       SLIBucketSnapshot(minuteWidth: 60, minutes: [SLIBucket(index: 2, good: 6, total: 8)], hourWidth: 3600, hours: []))
        let loaded = try await store.loadSLIBuckets()["chat:availability"]
        XCTAssertEqual(loaded?.minutes, [SLIBucket(index: 1, good: 9, total: 10), SLIBucket(index: 2, good: 6, total: 8)])
        XCTAssertEqual(loaded?.hours, [SLIBucket(index: 7, good: 14, total: 15)])
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
    func testSLIBucketsSurviveAndUpsert() async throws { try await StoreContract.sliBucketsSurviveAndUpsert(try await makeStore()) }

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
