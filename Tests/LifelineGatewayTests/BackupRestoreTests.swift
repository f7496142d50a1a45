import Foundation
import LifelineCore
@testable import LifelineGateway
import LifelineStore
import LifelineWire
import XCTest

/// Disaster recovery for the embedded store: a backup taken while the gateway serves, restored
/// into a fresh instance, holds every key, incident and usage record.
final class BackupRestoreTests: XCTestCase {
    var fixtures: [GatewayFixture] = []

    override func tearDown() async throws {
        for fixture in fixtures { await fixture.stop() }
    }

    func testABackupTakenWhileServingRestoresEveryKeyIncidentAndUsageRecordIntoAFreshInstance() async throws {
        let first = try await GatewayFixture.start()
        fixtures.append(first)
        let created = try await first.admin("POST", "/keys", ["name": "kept"])
        let secret = try XCTUnwrap(created.json?["secret"]?.stringValue)
        let id = try XCTUnwrap(created.json?["id"]?.stringValue)
        let answered = try await first.post("/v1/chat/completions", chatBody("chat-openai", "count me", maxTokens: 8),
                                            headers: ["authorization": "Bearer \(secret)"])
        XCTAssertEqual(answered.status, 200)
        let incident = try await first.admin("POST", "/incidents", ["name": "Before the backup", "body": "Recorded."])
        XCTAssertEqual(incident.status, 201)
        // Usage is written behind; wait until it is in the store.
        await first.runtime.usage.flush()
        await first.runtime.status.flush()

        let directory = first.runtime.config.server.dataDirectory
        let backup = FileManager.default.temporaryDirectory.appendingPathComponent("lifeline-backup-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: backup) }
        // A second connection to the live file, as `lifeline backup` opens it, while the gateway serves.
        let live = try await SQLiteStore.open(path: directory + "/lifeline.sqlite")
        async let traffic = first.post("/v1/chat/completions", chatBody("chat-openai", "during the backup", maxTokens: 8))
        try await live.backup(to: backup)
        try await live.close()
        let duringBackup = try await traffic
        XCTAssertEqual(duringBackup.status, 200, "serving went on")
        let again = try await SQLiteStore.open(path: directory + "/lifeline.sqlite")
        do {
            try await again.backup(to: backup)
            XCTFail("a backup overwrote an existing file")
        } catch {}
        try await again.close()

        let fresh = FileManager.default.temporaryDirectory.appendingPathComponent("lifeline-restored-\(UUID().uuidString)").path
        let kept = try await SQLiteStore.restore(from: backup, to: fresh + "/lifeline.sqlite")
        XCTAssertNil(kept, "nothing was there to keep aside")
        let second = try await GatewayFixture.start(dataDirectory: fresh)
        fixtures.append(second)
        let withKey = try await second.post("/v1/chat/completions", chatBody("chat-openai", "restored", maxTokens: 8),
                                            headers: ["authorization": "Bearer \(secret)"])
        XCTAssertEqual(withKey.status, 200, "the key works on the restored instance")
        let before = try await first.admin("GET", "/keys/\(id)").json?["usage"]?["tokens_used"]?.intValue ?? 0
        XCTAssertGreaterThan(before, 0)
        let usage = try await second.admin("GET", "/keys/\(id)").json?["usage"]?["tokens_used"]?.intValue ?? 0
        XCTAssertGreaterThanOrEqual(usage, before, "the usage recorded before the backup is there (and the request since)")
        let incidents = try await second.get("/api/v2/incidents.json").json?["incidents"]?.arrayValue ?? []
        XCTAssertEqual(incidents.map { $0["name"]?.stringValue }, ["Before the backup"])
    }

    func testRestoringKeepsTheCurrentStoreAsideAndRefusesABrokenBackup() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeline-restore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("lifeline.sqlite").path
        let current = try await SQLiteStore.open(path: path)
        try await current.insert(StoredKey(id: "current", name: "current", secretHash: "h1", prefix: "sk-ll-a", tier: "normal", createdAt: Date()))
        let backup = directory.appendingPathComponent("backup.sqlite").path
        try await current.backup(to: backup)
        try await current.insert(StoredKey(id: "later", name: "later", secretHash: "h2", prefix: "sk-ll-b", tier: "normal", createdAt: Date()))
        try await current.close()

        let broken = directory.appendingPathComponent("broken.sqlite").path
        try Data("not a database".utf8).write(to: URL(fileURLWithPath: broken))
        do {
            try await SQLiteStore.restore(from: broken, to: path)
            XCTFail("restored a broken backup")
        } catch {}
        let untouched = try await SQLiteStore.open(path: path)
        let stillThere = try await untouched.keys()
        try await untouched.close()
        XCTAssertEqual(stillThere.map(\.id), ["current", "later"], "a broken backup changes nothing")

        let keptPath = try await SQLiteStore.restore(from: backup, to: path)
        let kept = try XCTUnwrap(keptPath)
        let restored = try await SQLiteStore.open(path: path)
        let restoredKeys = try await restored.keys()
        try await restored.close()
        XCTAssertEqual(restoredKeys.map(\.id), ["current"])
        let aside = try await SQLiteStore.open(path: kept)
        let asideKeys = try await aside.keys()
        try await aside.close()
        XCTAssertEqual(asideKeys.map(\.id), ["current", "later"], "the store that was replaced is kept")
    }
}
