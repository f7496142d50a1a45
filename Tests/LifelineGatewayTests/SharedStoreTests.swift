import Foundation
import LifelineCore
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

    func startInstances(_ count: Int, configure: @escaping (inout LifelineConfig) -> Void = { _ in }) async throws {
        database = "lifeline_gw_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        _ = try await PostgresStore.administer(url: adminURL, "CREATE DATABASE \(database)")
        var components = try XCTUnwrap(URLComponents(string: adminURL))
        components.path = "/" + database
        let url = try XCTUnwrap(components.string)
        for _ in 0..<count {
            fixtures.append(try await GatewayFixture.start { config in
                config.storage.postgresURL = url
                config.storage.keyRefreshSeconds = 0.2
                configure(&config)
            })
        }
    }

    func testACachedAnswerKeptInTheStoreIsAHitOnTheOtherInstance() async throws {
        try await startInstances(2) { config in
            var policy = AnswerCachePolicy()
            policy.store = true
            config.models[0].cache = policy
        }
        var body = chatBody("chat-openai", "Which instance answers this?").objectValue ?? [:]
        body["temperature"] = 0
        let asked = try await fixtures[0].post("/v1/chat/completions", .object(body))
        XCTAssertEqual(asked.headers["x-lifeline-cache"], "miss")
        let key = AnswerCacheKey.key(for: try OpenAIChatRequest.decode(.object(body)), scope: Caller.anonymousID)
        // The write runs off the request path; wait for the row the other instance reads.
        try await waitFor("the entry in PostgreSQL") {
            try await fixtures[1].runtime.store.cacheEntry(key: key, now: Date().timeIntervalSince1970) != nil
        }
        let other = try await fixtures[1].post("/v1/chat/completions", .object(body))
        XCTAssertEqual(other.headers["x-lifeline-cache"], "hit", "the other instance did not answer from the shared store")
        XCTAssertEqual(other.json?["choices"]?[0]?["message"]?["content"]?.stringValue,
                       asked.json?["choices"]?[0]?["message"]?["content"]?.stringValue)
        // A purge on one instance clears the shared rows.
        let purged = try await fixtures[1].admin("DELETE", "/cache")
        XCTAssertEqual(purged.json?["stored"]?.intValue, 1)
        let left = try await fixtures[0].runtime.store.cacheEntry(key: key, now: Date().timeIntervalSince1970)
        XCTAssertNil(left)
    }

    /// Whether the instance says, in `/readyz`, that it leads.
    func leads(_ fixture: GatewayFixture) async throws -> Bool { try await fixture.get("/readyz").json?["instance"]?["leader"] == true }

    /// The two instances once exactly one of them leads.
    func leaderAndFollower() async throws -> (leader: GatewayFixture, follower: GatewayFixture) {
        let elected = try await secondsUntil {
            let roles = [try await leads(fixtures[0]), try await leads(fixtures[1])]
            return roles.filter { $0 }.count == 1
        }
        XCTAssertNotNil(elected, "never exactly one leader")
        return try await leads(fixtures[0]) ? (fixtures[0], fixtures[1]) : (fixtures[1], fixtures[0])
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

extension SharedStoreTests {
    /// The database refuses connections for a while (as in an outage), then comes back.
    func testADatabaseOutageKeepsServingWithCachedKeysSaysSoAndCatchesUpOnUsage() async throws {
        try await startInstances(1)
        let gateway = fixtures[0]
        let created = try await gateway.admin("POST", "/keys", ["name": "through the outage"])
        let secret = try XCTUnwrap(created.json?["secret"]?.stringValue)
        let id = try XCTUnwrap(created.json?["id"]?.stringValue)
        let headers = ["authorization": "Bearer \(secret)"]
        let before = try await gateway.get("/readyz").json
        XCTAssertEqual(before?["store"]?["status"], "ok")

        _ = try await PostgresStore.administer(url: adminURL, "ALTER DATABASE \(database) ALLOW_CONNECTIONS false")
        _ = try await PostgresStore.administer(url: adminURL, """
            SELECT count(pg_terminate_backend(pid))::BIGINT FROM pg_stat_activity WHERE datname = '\(database)'
            """)
        var outageStatuses: [Int] = []
        let noticed = try await secondsUntil {
            outageStatuses.append(try await gateway.post("/v1/chat/completions", chatBody("chat-openai", "outage", maxTokens: 4), headers: headers).status)
            return try await gateway.get("/readyz").json?["store"]?["status"] == "unreachable"
        }
        XCTAssertNotNil(noticed, "readiness never reported the store")
        let ready = try await gateway.get("/readyz")
        XCTAssertEqual(ready.status, 200, "an instance that can serve stays in the balancer")
        for _ in 0..<5 {
            outageStatuses.append(try await gateway.post("/v1/chat/completions", chatBody("chat-openai", "outage", maxTokens: 4), headers: headers).status)
        }
        XCTAssertEqual(Set(outageStatuses), [200], "the cached key answers throughout")
        let metrics = try await gateway.get("/metrics").text
        XCTAssertTrue(metrics.contains("lifeline_store_reachable 0"), metrics)

        _ = try await PostgresStore.administer(url: adminURL, "ALTER DATABASE \(database) ALLOW_CONNECTIONS true")
        let recovered = try await secondsUntil { try await gateway.get("/readyz").json?["store"]?["status"] == "ok" }
        XCTAssertNotNil(recovered, "readiness never saw the store come back")
        var components = try XCTUnwrap(URLComponents(string: adminURL))
        components.path = "/" + database
        let url = try XCTUnwrap(components.string)
        let caughtUp = try await secondsUntil {
            let rows = try await PostgresStore.administer(url: url, "SELECT COALESCE(sum(requests), 0)::BIGINT FROM usage_minutes WHERE key_id = '\(id)'")
            return Int(rows.first ?? "0") == outageStatuses.count
        }
        XCTAssertNotNil(caughtUp, "usage recorded during the outage did not reach the store")
        print("store outage: noticed after \(noticed ?? -1) s, \(outageStatuses.count) requests served meanwhile, usage caught up \(caughtUp ?? -1) s after recovery")
    }
}

extension SharedStoreTests {
    func testAKeysRequestsPerMinuteHoldAcrossInstances() async throws {
        try await startInstances(2)
        let (first, second) = (fixtures[0], fixtures[1])
        let created = try await first.admin("POST", "/keys", ["name": "shared limit", "rpm": 20])
        let secret = try XCTUnwrap(created.json?["secret"]?.stringValue)
        let headers = ["authorization": "Bearer \(secret)"]
        func send(_ fixture: GatewayFixture, _ count: Int) async throws -> Int {
            var accepted = 0
            for _ in 0..<count {
                if try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "limit", maxTokens: 4), headers: headers).status == 200 {
                    accepted += 1
                }
            }
            return accepted
        }
        _ = try await secondsUntil { try await second.post("/v1/chat/completions", chatBody("chat-openai", "known?", maxTokens: 4),
                                                           headers: headers).status == 200 }
        let onFirst = try await send(first, 14)
        // Flush (1 s) and reconcile (0.2 s here) carry the first instance's usage to the second.
        try await Task.sleep(for: .milliseconds(2_500))
        let onSecond = try await send(second, 14)
        print("shared limit: rpm 20, accepted \(onFirst) on the first instance and \(onSecond) on the second")
        XCTAssertEqual(onFirst, 14)
        // One request of the 20 went to the second instance above; about one more refills in the seconds this takes.
        XCTAssertLessThanOrEqual(1 + onFirst + onSecond, 22, "without reconciliation the second instance would accept all 14")
        XCTAssertGreaterThanOrEqual(onSecond, 3)
    }
}

extension SharedStoreTests {
    /// One instance leads; failures only a follower sees open the leader's incident (the SLI
    /// counts are shared), every instance shows it, and when the leader goes the follower takes
    /// the same incident over: no second incident, and no subscriber update sent twice.
    func testOneLeaderJudgesEveryInstancesTrafficAndAFollowerTakesOverTheSameIncident() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { Task { await receiver.stop() } }
        try await startInstances(2) { config in
            GatewayFixture.fastStatus(&config)
            // The other instance's counts arrive a store round late: a window of a few rounds.
            config.status.thresholds.windowSeconds = 2
            config.status.policy.resolveAfterSeconds = 0.5
        }
        let (leader, follower) = try await leaderAndFollower()
        let subscribed = try await follower.post("/api/v2/subscribers", ["subscriber": ["endpoint": .string(receiver.url + "/updates")]],
                                                 headers: ["authorization": "Bearer \(GatewayFixture.adminToken)"])
        XCTAssertEqual(subscribed.status, 201, subscribed.text)

        // Only the follower fails, and only the follower gets traffic.
        for deployment in ["oa-1", "oa-2"] {
            let added = try await follower.admin("POST", "/faults", ["deployment": .string(deployment), "kind": "error", "status": 500,
                                                                     "rate": 1, "duration_s": 60])
            XCTAssertEqual(added.status, 201)
        }
        func traffic() async throws {
            for _ in 0..<3 { _ = try await follower.post("/v1/chat/completions", chatBody("chat-openai", "shared", maxTokens: 4)) }
        }
        func open(_ fixture: GatewayFixture) async throws -> [String] {
            (try await fixture.get("/api/v2/incidents/unresolved.json").json?["incidents"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        }
        var incidentID = ""
        try await waitFor("the leader to open an incident from the follower's traffic") {
            try await traffic()
            incidentID = try await open(leader).first ?? ""
            return !incidentID.isEmpty
        }
        try await waitFor("the follower to show the leader's incident") { try await open(follower) == [incidentID] }
        _ = await receiver.wait { posts in posts.contains { $0.body["incident"]?["id"]?.stringValue == incidentID } }

        await leader.stop()
        fixtures.removeAll { $0 === leader }
        let takeover = try await secondsUntil {
            try await traffic()
            return try await leads(follower)
        }
        XCTAssertNotNil(takeover, "the follower never took over")
        print("leader change: the follower led \(takeover ?? -1) s after the leader stopped")
        let stillOpen = try await open(follower)
        XCTAssertEqual(stillOpen, [incidentID], "the same incident goes on; none opens beside it")

        let cleared = try await follower.admin("DELETE", "/faults").status
        XCTAssertEqual(cleared, 200)
        try await waitFor("the new leader to resolve the incident") {
            try await traffic()
            return try await open(follower).isEmpty
        }
        let all = try await follower.get("/api/v2/incidents.json").json?["incidents"]?.arrayValue ?? []
        XCTAssertEqual(all.map { $0["id"]?.stringValue }, [incidentID], "one event, one incident, across the leader change")
        let posts = await receiver.wait { posts in posts.contains { $0.body["incident"]?["status"] == "resolved" } }
        let updates = posts.compactMap { post -> String? in
            guard let updates = post.body["incident"]?["incident_updates"]?.arrayValue else { return nil }
            return updates.first?["id"]?.stringValue
        }
        XCTAssertEqual(updates.count, Set(updates).count, "an update was sent twice: \(updates)")
        XCTAssertTrue(posts.contains { $0.body["incident"]?["status"] == "resolved" })
    }
}

extension SharedStoreTests {
    /// Operators may use any instance: an incident opened and resolved on a follower shows on
    /// the leader, and a maintenance scheduled there is started by the leader and drains its
    /// deployment on every instance; ended on the follower, it is over everywhere.
    func testOperatorsOnAFollowerReachTheLeaderAndMaintenanceDrainsEveryInstance() async throws {
        try await startInstances(2, configure: GatewayFixture.fastStatus)
        let (leader, follower) = try await leaderAndFollower()
        func open(_ fixture: GatewayFixture) async throws -> [String] {
            (try await fixture.get("/api/v2/incidents/unresolved.json").json?["incidents"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
        }

        let opened = try await follower.admin("POST", "/incidents", ["name": "Opened on a follower", "body": "Looking."])
        XCTAssertEqual(opened.status, 201, opened.text)
        let id = try XCTUnwrap(opened.json?["id"]?.stringValue)
        try await waitFor("the leader to show it", timeout: 5) { try await open(leader) == ["Opened on a follower"] }
        let resolved = try await follower.admin("POST", "/incidents/\(id)/resolve", ["body": "Fixed."])
        XCTAssertEqual(resolved.status, 200, resolved.text)
        try await waitFor("the leader to show it resolved", timeout: 5) { try await open(leader).isEmpty }

        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let scheduled = try await follower.admin("POST", "/maintenances", [
            "deployments": ["oa-1"], "message": "Upgrading oa-1.",
            "scheduled_for": .string(formatter.string(from: Date())),
            "scheduled_until": .string(formatter.string(from: Date().addingTimeInterval(60))),
        ])
        XCTAssertEqual(scheduled.status, 201, scheduled.text)
        let maintenance = try XCTUnwrap(scheduled.json?["id"]?.stringValue)
        func drained(_ fixture: GatewayFixture) -> Bool { fixture.runtime.pool.deployment(named: "oa-1")?.isDrained == true }
        try await waitFor("both instances to drain oa-1", timeout: 5) { drained(leader) && drained(follower) }
        let answer = try await follower.post("/v1/chat/completions", chatBody("chat-openai", "during maintenance", maxTokens: 4))
        XCTAssertEqual(answer.headers["x-lifeline-deployment"], "oa-2")

        let ended = try await follower.admin("POST", "/maintenances/\(maintenance)/complete")
        XCTAssertEqual(ended.json?["status"], "completed", ended.text)
        XCTAssertFalse(drained(follower), "undrained at once where the operator asked")
        try await waitFor("the leader to undrain oa-1", timeout: 5) { !drained(leader) }
        let shown = try await leader.get("/api/v2/scheduled-maintenances.json").json?["scheduled_maintenances"]?.arrayValue ?? []
        XCTAssertEqual(shown.map { $0["status"]?.stringValue }, ["completed"])
    }
}
