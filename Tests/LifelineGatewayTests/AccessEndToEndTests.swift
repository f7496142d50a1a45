import LifelineGateway
import LifelineSimulator
import LifelineWire
import XCTest

/// Keys, limits and load shedding over real sockets.
final class AccessEndToEndTests: XCTestCase {
    var fixture: GatewayFixture!

    override func tearDown() async throws {
        await fixture?.stop()
    }

    func createKey(_ body: JSONValue) async throws -> (id: String, secret: String) {
        let created = try await fixture.admin("POST", "/keys", body)
        XCTAssertEqual(created.status, 201, created.text)
        return (try XCTUnwrap(created.json?["id"]?.stringValue), try XCTUnwrap(created.json?["secret"]?.stringValue))
    }

    var upstreamCalls: Int { fixture.simulatorA.requestsReceived + fixture.simulatorB.requestsReceived }

    func testKeysAuthenticateInBothStylesAndUnknownOrRevokedKeysGet401() async throws {
        fixture = try await GatewayFixture.start()
        let (id, secret) = try await createKey(["name": "team", "tier": "high"])
        XCTAssertTrue(secret.hasPrefix("sk-ll-"))
        let bearer = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hi"), headers: ["authorization": "Bearer \(secret)"])
        XCTAssertEqual(bearer.status, 200)
        let apiKey = try await fixture.post("/v1/messages", chatBody("chat-anthropic", "hi", api: .anthropic), headers: ["x-api-key": secret])
        XCTAssertEqual(apiKey.status, 200)
        // SDKs insist on some key: a non-Lifeline key runs as the anonymous caller while auth is optional.
        let anonymous = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hi"), headers: ["authorization": "Bearer sk-openai-x"])
        XCTAssertEqual(anonymous.status, 200)

        let before = upstreamCalls
        let unknown = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hi"), headers: ["authorization": "Bearer sk-ll-unknown"])
        XCTAssertEqual(unknown.status, 401)
        XCTAssertEqual(unknown.json?["error"]?["code"], "invalid_api_key")
        let revoked = try await fixture.admin("DELETE", "/keys/\(id)")
        XCTAssertEqual(revoked.json?["status"], "revoked")
        let afterRevoke = try await fixture.post("/v1/messages", chatBody("chat-anthropic", "hi", api: .anthropic), headers: ["x-api-key": secret])
        XCTAssertEqual(afterRevoke.status, 401)
        XCTAssertEqual(afterRevoke.json?["error"]?["type"], "authentication_error")
        XCTAssertEqual(upstreamCalls, before)

        let listed = try await fixture.admin("GET", "/keys")
        let entry = listed.json?["data"]?.arrayValue?.first
        XCTAssertEqual(entry?["status"], "revoked")
        XCTAssertNil(entry?["secret"], "a listed key must never show its secret")
        XCTAssertFalse(listed.text.contains(secret))
    }

    func testRequiredAuthRefusesToStartWithoutAKeyThenRefusesAnonymousCallers() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeline-auth-\(UUID().uuidString)").path
        do {
            fixture = try await GatewayFixture.start { $0.auth.mode = .required; $0.server.dataDirectory = directory }
            XCTFail("started with auth required and no key")
        } catch {
            XCTAssertTrue("\(error)".contains("no usable API key exists yet"), "\(error)")
        }
        let created = try await OfflineKeys.create(dataDirectory: directory, request: ["name": "first", "tier": "high"])
        let secret = try XCTUnwrap(created["secret"]?.stringValue)
        fixture = try await GatewayFixture.start { $0.auth.mode = .required; $0.server.dataDirectory = directory }
        let anonymous = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hi"))
        XCTAssertEqual(anonymous.status, 401)
        XCTAssertEqual(anonymous.json?["error"]?["code"], "missing_api_key")
        let keyed = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hi"), headers: ["authorization": "Bearer \(secret)"])
        XCTAssertEqual(keyed.status, 200)
    }

    func testAKeyMayOnlyUseItsModels() async throws {
        fixture = try await GatewayFixture.start()
        let (_, secret) = try await createKey(["name": "narrow", "models": ["chat-openai"]])
        let allowed = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hi"), headers: ["authorization": "Bearer \(secret)"])
        XCTAssertEqual(allowed.status, 200)
        let forbidden = try await fixture.post("/v1/chat/completions", chatBody("chat-anthropic", "hi"), headers: ["authorization": "Bearer \(secret)"])
        XCTAssertEqual(forbidden.status, 403)
        XCTAssertEqual(forbidden.json?["error"]?["type"], "permission_error")
    }

    func testRequestsPerMinuteAreEnforcedWithOpenAIStyleHeaders() async throws {
        fixture = try await GatewayFixture.start()
        let (_, secret) = try await createKey(["name": "limited", "rpm": 2, "tpm": 100_000])
        let headers = ["authorization": "Bearer \(secret)"]
        let first = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "one", maxTokens: 50), headers: headers)
        XCTAssertEqual(first.headers["x-ratelimit-limit-requests"], "2")
        XCTAssertEqual(first.headers["x-ratelimit-remaining-requests"], "1")
        XCTAssertEqual(first.headers["x-ratelimit-limit-tokens"], "100000")
        let remainingTokens = try XCTUnwrap(Int(first.headers["x-ratelimit-remaining-tokens"] ?? ""))
        XCTAssertLessThan(remainingTokens, 100_000)
        XCTAssertNotNil(first.headers["x-ratelimit-reset-requests"])
        _ = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "two"), headers: headers)
        let before = upstreamCalls
        let third = try await fixture.post("/v1/messages", chatBody("chat-anthropic", "three", api: .anthropic), headers: headers)
        XCTAssertEqual(third.status, 429)
        XCTAssertEqual(third.json?["error"]?["type"], "rate_limit_error")
        XCTAssertEqual(third.headers["retry-after"], "30")
        XCTAssertEqual(third.headers["x-ratelimit-remaining-requests"], "0")
        XCTAssertEqual(upstreamCalls, before)
    }

    func testATokenBudgetStopsAKeyOnceSpent() async throws {
        fixture = try await GatewayFixture.start()
        let (id, secret) = try await createKey(["name": "budget", "budget_tokens": 10, "budget_period": "day"])
        let headers = ["authorization": "Bearer \(secret)"]
        let first = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "spend it"), headers: headers)
        XCTAssertEqual(first.status, 200)
        let second = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "again"), headers: headers)
        XCTAssertEqual(second.status, 429)
        XCTAssertEqual(second.json?["error"]?["code"], "insufficient_quota")
        let shown = try await fixture.admin("GET", "/keys/\(id)")
        XCTAssertGreaterThan(shown.json?["usage"]?["tokens_used"]?.intValue ?? 0, 10)
    }

    /// The queue's clock sleeps while no one waits: a request that queues after an idle spell is
    /// still shed at its maximum wait, not left until the slot frees. Twice, with a calm between.
    func testAWaiterIsShedAtItsMaximumWaitAfterTheQueueWasIdle() async throws {
        fixture = try await GatewayFixture.start { config in
            config.admission.concurrency.pin(at: 1)
            config.admission.queue.maximumWait = 0.3
        }
        var knobs = SimulatorKnobs()
        knobs.ttftMilliseconds = 3_000
        fixture.simulatorA.setKnobs(knobs)
        let fixture = self.fixture!
        for round in 1...2 {
            async let holder = fixture.post("/v1/chat/completions", chatBody("chat-openai", "holds the slot \(round)"))
            try await waitFor("the slot taken") { metricValue("lifeline_in_flight_requests", in: try await fixture.metricsText()) == 1 }
            let waiter = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "waits \(round)"))
            XCTAssertEqual(waiter.status, 503, waiter.text)
            XCTAssertEqual(waiter.json?["error"]?["code"], "overloaded")
            let held = try await holder
            XCTAssertEqual(held.status, 200)
            let metrics = try await fixture.metricsText()
            XCTAssertEqual(metricValue(#"lifeline_shed_total{reason="queue_timeout",priority="normal"}"#, in: metrics), Double(round), metrics)
        }
    }

    func testUnderOverloadCriticalRequestsSucceedWhileLowOnesAreShedWithRetryAfter() async throws {
        fixture = try await GatewayFixture.start { config in
            config.admission.concurrency.pin(at: 2)
            config.admission.queue.maximumLength = 2
            config.admission.queue.maximumWait = 5
            config.admission.queue.target = 5
        }
        var knobs = SimulatorKnobs()
        knobs.ttftMilliseconds = 400
        fixture.simulatorA.setKnobs(knobs)
        let (_, critical) = try await createKey(["name": "pager", "tier": "critical"])
        let (_, low) = try await createKey(["name": "batch", "tier": "low"])
        let fixture = self.fixture!
        let lowReplies = await withTaskGroup(of: GatewayFixture.Reply?.self) { group in
            for index in 0..<8 {
                group.addTask { try? await fixture.post("/v1/chat/completions", chatBody("chat-openai", "low \(index)"), headers: ["authorization": "Bearer \(low)"]) }
            }
            try? await Task.sleep(for: .milliseconds(100))
            var criticalReplies: [GatewayFixture.Reply?] = []
            await withTaskGroup(of: GatewayFixture.Reply?.self) { inner in
                for index in 0..<3 {
                    inner.addTask { try? await fixture.post("/v1/chat/completions", chatBody("chat-openai", "critical \(index)"), headers: ["authorization": "Bearer \(critical)"]) }
                }
                for await reply in inner { criticalReplies.append(reply) }
            }
            XCTAssertEqual(criticalReplies.compactMap { $0?.status }, [200, 200, 200])
            var replies: [GatewayFixture.Reply?] = []
            for await reply in group { replies.append(reply) }
            return replies
        }
        let statuses = lowReplies.compactMap { $0?.status }
        XCTAssertEqual(statuses.count, 8)
        let shed = lowReplies.compactMap { $0 }.filter { $0.status == 503 }
        XCTAssertGreaterThanOrEqual(shed.count, 4, "\(statuses)")
        XCTAssertTrue(shed.allSatisfy { $0.headers["retry-after"] != nil && $0.json?["error"]?["code"] == "overloaded" })
        let metrics = String(decoding: try await fixture.get("/metrics").body, as: UTF8.self)
        XCTAssertTrue(metrics.contains(#"lifeline_shed_total{reason="queue_full",priority="low"}"#), metrics)
        // Every reason and priority is exported from the start; critical ones were never shed.
        XCTAssertEqual(metricValue(#"lifeline_shed_total{reason="queue_full",priority="critical"}"#, in: metrics), 0, metrics)
        XCTAssertEqual(metricValue(#"lifeline_shed_total{reason="queue_timeout",priority="critical"}"#, in: metrics), 0, metrics)
        XCTAssertTrue(metrics.contains(#"lifeline_concurrency_limit{scope="gateway"} 2"#))
        // What the limits check before they learn from a first token: a share, present from the start.
        for share in ["lifeline_host_cpu_busy_ratio", "lifeline_cpu_throttled_ratio"] {
            let value = try XCTUnwrap(metricValue(share, in: metrics), metrics)
            XCTAssertTrue((0...1).contains(value), "\(share) \(value)")
        }
    }

    func testKeyCreationValidatesItsFields() async throws {
        fixture = try await GatewayFixture.start()
        let noName = try await fixture.admin("POST", "/keys", ["tier": "high"])
        XCTAssertEqual(noName.status, 400)
        XCTAssertEqual(noName.json?["error"]?["param"], "name")
        let badTier = try await fixture.admin("POST", "/keys", ["name": "x", "tier": "vip"])
        XCTAssertEqual(badTier.json?["error"]?["param"], "tier")
        let badRPM = try await fixture.admin("POST", "/keys", ["name": "x", "rpm": -1])
        XCTAssertEqual(badRPM.json?["error"]?["param"], "rpm")
        let listed = try await fixture.admin("GET", "/keys")
        XCTAssertEqual(listed.json?["data"]?.arrayValue?.count, 0)
    }
}

final class RestartTests: XCTestCase {
    /// Keys, key usage and the SLO error budget live in the store: a restart forgets none of them.
    func testARestartKeepsKeysUsageAndTheSpentErrorBudget() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeline-restart-\(UUID().uuidString)").path
        let configure: (inout LifelineConfig) -> Void = { $0.server.dataDirectory = directory }
        var fixture = try await GatewayFixture.start(configure: configure)
        let created = try await fixture.admin("POST", "/keys", ["name": "survivor", "budget_tokens": 1_000_000])
        let secret = try XCTUnwrap(created.json?["secret"]?.stringValue)
        let id = try XCTUnwrap(created.json?["id"]?.stringValue)
        _ = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "use some tokens"), headers: ["authorization": "Bearer \(secret)"])
        var knobs = SimulatorKnobs()
        knobs.errorRate = 1
        fixture.simulatorA.setKnobs(knobs)
        fixture.simulatorB.setKnobs(knobs)
        for _ in 0..<5 { _ = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "fail")) }
        fixture.runtime.evaluateAlerts()
        let before = try await fixture.admin("GET", "/alerts")
        let budgetBefore = try XCTUnwrap(before.json?["slos"]?.arrayValue?.first { $0["slo"] == "chat-openai:availability" }?["error_budget_remaining"]?.doubleValue)
        XCTAssertLessThan(budgetBefore, 1)
        let usedBefore = try await fixture.admin("GET", "/keys/\(id)").json?["usage"]?["tokens_used"]?.intValue ?? 0
        XCTAssertGreaterThan(usedBefore, 0)
        await fixture.stop()

        let restarted = try await GatewayFixture.start(configure: configure)
        defer { Task { await restarted.stop() } }
        fixture = restarted
        restarted.runtime.evaluateAlerts()
        let after = try await fixture.admin("GET", "/alerts")
        let budgetAfter = try XCTUnwrap(after.json?["slos"]?.arrayValue?.first { $0["slo"] == "chat-openai:availability" }?["error_budget_remaining"]?.doubleValue)
        XCTAssertEqual(budgetAfter, budgetBefore, accuracy: 0.000001)
        let key = try await fixture.admin("GET", "/keys/\(id)")
        XCTAssertEqual(key.json?["usage"]?["tokens_used"]?.intValue, usedBefore)
        let again = try await fixture.post("/v1/chat/completions", chatBody("chat-anthropic", "still valid"), headers: ["authorization": "Bearer \(secret)"])
        XCTAssertEqual(again.status, 200)
    }
}
