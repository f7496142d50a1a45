import LifelineGateway
import LifelineSimulator
import LifelineWire
import XCTest

/// Upstream 401, 403 and 404 are the deployment's failure: failed over, ejected, shown to
/// operators, and never passed to a client with the upstream's words.
final class UpstreamRefusalEndToEndTests: XCTestCase {
    var fixture: GatewayFixture!
    var receiver: WebhookReceiver?
    /// What a real provider says on a 401: it quotes the key it was sent.
    static let leakyMessage = "Incorrect API key provided: sk-upstream-9fQ2xL7pA3mBzR81. Sent with Bearer upstream-secret."

    override func tearDown() async throws {
        await fixture?.stop()
        await receiver?.stop()
    }

    func start(_ configure: @escaping (inout LifelineConfig) -> Void = { _ in }) async throws {
        fixture = try await GatewayFixture.start { config in
            config.routing.backoff = .init(base: 0, maximum: 0)
            config.routing.retryBudget.minimumPerSecond = 100
            config.routing.outlierDetection.consecutiveFailures = 3
            configure(&config)
        }
    }

    func refuse(_ simulator: Simulator, status: Int, message: String = leakyMessage) {
        var knobs = SimulatorKnobs()
        knobs.errorRate = 1
        knobs.errorStatus = status
        knobs.errorMessage = message
        simulator.setKnobs(knobs)
    }

    func deployment(_ name: String) async throws -> JSONValue? {
        let list = try await fixture.admin("GET", "/deployments")
        return list.json?["data"]?.arrayValue?.first { $0["name"]?.stringValue == name }
    }

    func assertNoSecret(_ reply: GatewayFixture.Reply, file: StaticString = #filePath, line: UInt = #line) {
        for secret in ["sk-upstream", "upstream-secret", "Incorrect API key", "simulator was told"] {
            XCTAssertFalse(reply.text.contains(secret), "'\(secret)' reached the client: \(reply.text)", file: file, line: line)
        }
    }

    func testADeploymentThatRejectsCredentialsIsFailedOverEjectedAndShownUntilItAnswers() async throws {
        let receiver = try await WebhookReceiver.start()
        self.receiver = receiver
        try await start { config in
            config.routing.outlierDetection.baseEjectionTime = 3
            config.alerting.evaluationIntervalSeconds = 0.05
            config.notifications.webhooks = [WebhookConfig(name: "ops", format: .json, url: receiver.url + "/hook")]
        }
        refuse(fixture.simulatorA, status: 401)
        // Every inference path: chat and messages, streamed and not; all answered by the healthy one.
        for (api, stream) in [(WireProtocol.openai, false), (.openai, true), (.anthropic, false), (.anthropic, true)] {
            let model = api == .openai ? "chat-openai" : "chat-anthropic"
            let reply = try await fixture.post(path(for: api), chatBody(model, "credentials", stream: stream, api: api))
            XCTAssertEqual(reply.status, 200, reply.text)
            XCTAssertEqual(reply.headers["x-lifeline-deployment"], api == .openai ? "oa-2" : "an-2")
            XCTAssertEqual(reply.headers["x-lifeline-attempts"], "2")
        }
        let embedded = try await fixture.post("/v1/embeddings", ["model": "chat-openai", "input": "credentials"])
        XCTAssertEqual(embedded.status, 200, embedded.text)
        XCTAssertEqual(embedded.headers["x-lifeline-deployment"], "oa-2")
        // Three refusals in a row ejected oa-1; a fourth request goes straight to oa-2.
        let after = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "credentials"))
        XCTAssertEqual(after.status, 200)
        XCTAssertEqual(after.headers["x-lifeline-attempts"], "1")

        let text = try await fixture.metricsText()
        XCTAssertTrue(text.contains(#"lifeline_upstream_requests_total{deployment="oa-1",outcome="auth_error"} 3"#), text)
        XCTAssertTrue(text.contains(#"lifeline_upstream_requests_total{deployment="an-1",outcome="auth_error"} 2"#), text)
        XCTAssertFalse(text.contains(#"outcome="client_error""#), text)
        XCTAssertTrue(text.contains(#"lifeline_ejections_total{deployment="oa-1"} 1"#), text)
        XCTAssertTrue(text.contains(#"lifeline_deployment_problem{deployment="oa-1",kind="credentials_rejected"} 1"#), text)
        XCTAssertTrue(text.contains(#"lifeline_deployment_problem{deployment="oa-2",kind="credentials_rejected"} 0"#), text)

        let listed = try await deployment("oa-1")
        XCTAssertEqual(listed?["state"], "ejected")
        XCTAssertEqual(listed?["problem"]?["kind"], "credentials_rejected")
        XCTAssertEqual(listed?["problem"]?["status"], 401)
        XCTAssertEqual(listed?["problem"]?["summary"], "rejected our credentials")
        XCTAssertEqual(listed?["problem"]?["count"], 3)
        XCTAssertNotNil(listed?["problem"]?["last_at"]?.stringValue)
        let healthy = try await deployment("oa-2")
        XCTAssertEqual(healthy?["problem"], .null)
        let listing = try await fixture.admin("GET", "/deployments")
        XCTAssertFalse(listing.text.contains("sk-upstream"))

        // No traffic will fix it: a page fires at once, naming the deployment and not the key.
        let alert = "deployment:oa-1:credentials_rejected"
        let paged = await receiver.wait { posts in posts.contains { $0.body["alert"]?.stringValue == alert } }
        let page = try XCTUnwrap(paged.first { $0.body["alert"]?.stringValue == alert })
        XCTAssertEqual(page.body["severity"], "page")
        XCTAssertEqual(page.body["state"], "firing")
        XCTAssertEqual(page.body["deployment"], "oa-1")
        XCTAssertEqual(page.body["status"], 401)
        XCTAssertTrue(page.body["summary"]?.stringValue?.contains("check its api_key") ?? false, "\(page.body)")
        let firing = try await fixture.admin("GET", "/alerts").json?["firing"]?.arrayValue?.compactMap { $0["alert"]?.stringValue } ?? []
        XCTAssertTrue(firing.contains(alert), "\(firing)")
        XCTAssertTrue(firing.contains("deployment:an-1:credentials_rejected"), "\(firing)")
        XCTAssertFalse(firing.contains { $0.contains("oa-2") || $0.contains("an-2") }, "\(firing)")
        let alertMetrics = try await fixture.metricsText()
        XCTAssertTrue(alertMetrics.contains(#"lifeline_alerts_firing{alert="deployment:oa-1:credentials_rejected",severity="page"} 1"#), alertMetrics)

        // Fixed upstream: the half-open trial answers, and the problem is gone.
        fixture.simulatorA.resetKnobs()
        try await waitFor("oa-1 answers again") {
            let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "credentials"))
            return reply.headers["x-lifeline-deployment"] == "oa-1"
        }
        let recovered = try await deployment("oa-1")
        XCTAssertEqual(recovered?["problem"], .null)
        let recoveredMetrics = try await fixture.metricsText()
        XCTAssertTrue(recoveredMetrics.contains(#"lifeline_deployment_problem{deployment="oa-1",kind="credentials_rejected"} 0"#))
        let resolved = await receiver.wait { posts in
            posts.contains { $0.body["alert"]?.stringValue == alert && $0.body["state"]?.stringValue == "resolved" }
        }
        XCTAssertTrue(resolved.contains { $0.body["alert"]?.stringValue == alert && $0.body["state"]?.stringValue == "resolved" })
        XCTAssertFalse(resolved.contains { JSONCoding.encodeString($0.body).contains("sk-upstream") })
    }

    func testWhenEveryDeploymentRejectsCredentialsTheClientGets502NamingTheConfigurationNotTheKey() async throws {
        try await start()
        refuse(fixture.simulatorA, status: 401)
        refuse(fixture.simulatorB, status: 403)
        let chat = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "all refused"))
        XCTAssertEqual(chat.status, 502, chat.text)
        assertNoSecret(chat)
        let message = try XCTUnwrap(chat.json?["error"]?["message"]?.stringValue)
        XCTAssertTrue(message.contains("deployment 'oa-1' rejected Lifeline's credentials; check its api_key"), message)
        XCTAssertTrue(message.contains("deployment 'oa-2' rejected Lifeline's credentials; check its api_key"), message)
        XCTAssertEqual(chat.json?["error"]?["code"], "upstream_misconfigured")

        let messages = try await fixture.post("/v1/messages", chatBody("chat-anthropic", "all refused", stream: true, api: .anthropic))
        XCTAssertEqual(messages.status, 502, messages.text)
        XCTAssertEqual(messages.json?["type"], "error")
        XCTAssertEqual(messages.json?["error"]?["type"], "api_error")
        assertNoSecret(messages)

        let embeddings = try await fixture.post("/v1/embeddings", ["model": "chat-openai", "input": "all refused"])
        XCTAssertEqual(embeddings.status, 502, embeddings.text)
        assertNoSecret(embeddings)

        // 5xx bodies are never forwarded: the 503 names the kind and status only.
        refuse(fixture.simulatorA, status: 500)
        refuse(fixture.simulatorB, status: 503)
        let failed = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "all failed"))
        XCTAssertEqual(failed.status, 503, failed.text)
        XCTAssertNotNil(failed.headers["retry-after"])
        assertNoSecret(failed)
        let last = try XCTUnwrap(failed.json?["error"]?["message"]?.stringValue)
        XCTAssertTrue(last.contains("Last error: deployment 'oa-2' answered HTTP 503."), last)
    }

    func testAnErrorTheRequestCausedIsReturnedWithItsSecretsRedacted() async throws {
        try await start()
        refuse(fixture.simulatorA, status: 400, message: "Invalid 'messages' for key sk-upstream-9fQ2xL7pA3mBzR81 (Bearer upstream-secret): token abcDEF123ghiJKL456mnoPQR789.")
        let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "bad request"))
        XCTAssertEqual(reply.status, 400, reply.text)
        XCTAssertEqual(reply.headers["x-lifeline-attempts"], "1")
        assertNoSecret(reply)
        XCTAssertFalse(reply.text.contains("abcDEF123ghiJKL456mnoPQR789"), reply.text)
        let message = try XCTUnwrap(reply.json?["error"]?["message"]?.stringValue)
        XCTAssertTrue(message.hasPrefix("Invalid 'messages' for key [redacted]"), message)
        XCTAssertEqual(fixture.simulatorB.requestsReceived, 0)
        // The deployment answered: it has no problem, and the outcome is the request's.
        let answered = try await deployment("oa-1")
        XCTAssertEqual(answered?["problem"], .null)
        let counted = try await fixture.metricsText()
        XCTAssertTrue(counted.contains(#"lifeline_upstream_requests_total{deployment="oa-1",outcome="client_error"} 1"#))
    }

    func testABaseURLWithoutV1IsNotFoundAndFailedOver() async throws {
        try await start { config in
            // The common mistake: an OpenAI base_url written without /v1.
            let url = config.models[0].deployments[0].baseURL
            config.models[0].deployments[0].baseURL = String(url.dropLast(3))
        }
        for stream in [false, true] {
            let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "wrong url", stream: stream))
            XCTAssertEqual(reply.status, 200, reply.text)
            XCTAssertEqual(reply.headers["x-lifeline-deployment"], "oa-2")
        }
        let counted = try await fixture.metricsText()
        XCTAssertTrue(counted.contains(#"lifeline_upstream_requests_total{deployment="oa-1",outcome="not_found"} 2"#))
        let listed = try await deployment("oa-1")
        XCTAssertEqual(listed?["problem"]?["kind"], "not_found")
        XCTAssertEqual(listed?["problem"]?["summary"], "answered not found: check base_url and model")
    }

    func testADrillErrorWith401Or404BehavesLikeTheUpstreamsOwn() async throws {
        try await start()
        let fault = try await fixture.admin("POST", "/faults", ["deployment": "an-1", "kind": "error", "status": 401, "duration_s": 60])
        XCTAssertEqual(fault.status, 201, fault.text)
        let reply = try await fixture.post("/v1/messages", chatBody("chat-anthropic", "drill", api: .anthropic))
        XCTAssertEqual(reply.status, 200, reply.text)
        XCTAssertEqual(reply.headers["x-lifeline-deployment"], "an-2")
        let drilled = try await deployment("an-1")
        XCTAssertEqual(drilled?["problem"]?["kind"], "credentials_rejected")
        _ = try await fixture.admin("DELETE", "/faults")
        _ = try await fixture.admin("POST", "/faults", ["deployment": "oa-1", "kind": "error", "status": 404, "duration_s": 60])
        _ = try await fixture.admin("POST", "/faults", ["deployment": "oa-2", "kind": "error", "status": 404, "duration_s": 60])
        let missing = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "drill"))
        XCTAssertEqual(missing.status, 502, missing.text)
        XCTAssertTrue(missing.text.contains("deployment 'oa-1' answered not found; check its base_url and model"), missing.text)
    }

    func testCheckConfigProbeReportsRefusedCredentialsWrongURLsAndDeadServers() async throws {
        try await start()
        refuse(fixture.simulatorB, status: 401)
        let live = try XCTUnwrap(fixture.runtime.pool.deployment(named: "oa-1")?.config)
        let refusing = try XCTUnwrap(fixture.runtime.pool.deployment(named: "an-2")?.config)
        var config = LifelineConfig()
        var ok = live
        ok.name = "ok"
        var wrongURL = live
        wrongURL.name = "wrong-url"
        wrongURL.baseURL = String(live.baseURL.dropLast(3))
        var badKey = refusing
        badKey.name = "bad-key"
        var dead = live
        dead.name = "dead"
        dead.baseURL = "http://127.0.0.1:1/v1"
        // The zero config's deployments are simulators that `serve` starts: skipped, not failed.
        var simulated = try XCTUnwrap(LifelineConfig.zeroConfig.models.first?.deployments.first)
        simulated.name = "simulated"
        config.models = [ModelConfig(name: "m", deployments: [ok, wrongURL, badKey, dead, simulated])]
        let results = await DeploymentCheck.run(config, timeoutMilliseconds: 5_000)
        XCTAssertEqual(results.map(\.deployment), ["ok", "wrong-url", "bad-key", "dead", "simulated"])
        XCTAssertEqual(results[0].verdict, .ok(via: .oneTokenRequest))
        XCTAssertEqual(results[1].verdict, .notFound(status: 404))
        XCTAssertEqual(results[2].verdict, .credentialsRejected(status: 401))
        XCTAssertEqual(results[3].verdict, .unreachable)
        XCTAssertTrue(results[4].verdict.passed)
        XCTAssertEqual(results.map(\.verdict.passed), [true, false, false, false, true])
        XCTAssertEqual(results[2].verdict.description, "credentials rejected (HTTP 401): check api_key")
    }
}
