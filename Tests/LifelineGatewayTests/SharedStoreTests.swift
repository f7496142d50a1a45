import Foundation
@testable import LifelineGateway
import LifelineStore
import LifelineWire
import XCTest

/// Two gateway instances sharing one PostgreSQL database, over real sockets. Runs when
/// `LIFELINE_TEST_POSTGRES_URL` names a server (scripts/test.sh starts one); skipped otherwise.
final class SharedStoreTests: XCTestCase {
    var fixtures: [GatewayFixture] = []
    var adminURL = ""
    var database = ""

    override func setUp() async throws {
        guard let url = ProcessInfo.processInfo.environment["LIFELINE_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw XCTSkip("LIFELINE_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
        }
        adminURL = url
    }

    override func tearDown() async throws {
        for fixture in fixtures { await fixture.stop() }
        if !database.isEmpty { _ = try? await PostgresStore.administer(url: adminURL, "DROP DATABASE IF EXISTS \(database) WITH (FORCE)") }
    }

    func startInstances(_ count: Int) async throws {
        database = "lifeline_gw_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        _ = try await PostgresStore.administer(url: adminURL, "CREATE DATABASE \(database)")
        var components = try XCTUnwrap(URLComponents(string: adminURL))
        components.path = "/" + database
        let url = try XCTUnwrap(components.string)
        for _ in 0..<count {
            fixtures.append(try await GatewayFixture.start { config in
                config.storage.postgresURL = url
                config.storage.keyRefreshSeconds = 0.2
            })
        }
    }

    /// Seconds until `check` holds, polling every 20 ms, or nil after 10 s.
    func secondsUntil(_ check: () async throws -> Bool) async throws -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < 10 {
            if try await check() { return Date().timeIntervalSince(start) }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    func testAKeyCreatedOnOneInstanceWorksOnTheOtherAndItsRevocationToo() async throws {
        try await startInstances(2)
        let (first, second) = (fixtures[0], fixtures[1])
        let created = try await first.admin("POST", "/keys", ["name": "shared", "tier": "high"])
        XCTAssertEqual(created.status, 201, created.text)
        let secret = try XCTUnwrap(created.json?["secret"]?.stringValue)
        let id = try XCTUnwrap(created.json?["id"]?.stringValue)
        let headers = ["authorization": "Bearer \(secret)"]
        func status(_ fixture: GatewayFixture) async throws -> Int {
            try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "shared key", maxTokens: 4), headers: headers).status
        }
        let accepted = try await secondsUntil { try await status(second) == 200 }
        XCTAssertNotNil(accepted, "the key never worked on the second instance")
        XCTAssertLessThan(accepted ?? 99, 2, "within 2 s")

        let revoked = try await first.admin("DELETE", "/keys/\(id)").status
        XCTAssertEqual(revoked, 200)
        let refused = try await secondsUntil { try await status(second) == 401 }
        XCTAssertNotNil(refused, "the revoked key kept working on the second instance")
        XCTAssertLessThan(refused ?? 99, 2, "within 2 s")
        print("shared store: key usable elsewhere after \(accepted ?? -1) s, revocation effective after \(refused ?? -1) s")
    }

    func testIncidentsAndSubscribersLiveInTheSharedStore() async throws {
        try await startInstances(1)
        let opened = try await fixtures[0].admin("POST", "/incidents", ["name": "Kept in PostgreSQL", "body": "Checking."])
        XCTAssertEqual(opened.status, 201)
        await fixtures[0].stop()
        fixtures.removeAll()
        var components = try XCTUnwrap(URLComponents(string: adminURL))
        components.path = "/" + database
        let url = try XCTUnwrap(components.string)
        fixtures.append(try await GatewayFixture.start { config in config.storage.postgresURL = url })
        let incidents = try await fixtures[0].get("/api/v2/incidents.json").json?["incidents"]?.arrayValue ?? []
        XCTAssertEqual(incidents.map { $0["name"]?.stringValue }, ["Kept in PostgreSQL"], "a new instance reads the history")
    }
}
