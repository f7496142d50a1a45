import LifelineGateway
@testable import LifelineSimulator
import LifelineWire
import XCTest

/// Breakers, budgets, timeouts, drills and drain, over real sockets.
final class ResilienceEndToEndTests: XCTestCase {
    var fixture: GatewayFixture!

    override func tearDown() async throws {
        await fixture?.stop()
    }

    func start(_ configure: @escaping (inout LifelineConfig) -> Void = { _ in }) async throws {
        fixture = try await GatewayFixture.start { config in
            for model in config.models.indices {
                for deployment in config.models[model].deployments.indices {
                    config.models[model].deployments[deployment].timeouts.firstTokenMilliseconds = 300
                }
            }
            config.routing.backoff = .init(base: 0, maximum: 0)
            configure(&config)
        }
    }

    func deploymentState(_ name: String) async throws -> JSONValue? {
        let list = try await fixture.admin("GET", "/deployments")
        return list.json?["data"]?.arrayValue?.first { $0["name"]?.stringValue == name }
    }

    func testABlackholedDeploymentCostsAtMostTheFirstTokenTimeoutThenIsEjected() async throws {
        try await start { $0.routing.outlierDetection.consecutiveFailures = 2 }
        let fault = try await fixture.admin("POST", "/faults", ["deployment": "oa-1", "kind": "blackhole", "duration_s": 30])
        XCTAssertEqual(fault.status, 201, fault.text)
        for stream in [false, true, false] {
            let clock = ContinuousClock()
            let started = clock.now
            let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "blackhole", stream: stream))
            let elapsed = clock.now - started
            XCTAssertEqual(reply.status, 200)
            XCTAssertEqual(reply.headers["x-lifeline-deployment"], "oa-2")
            // Bounded by the 300 ms first-token timeout plus the answer itself, never a hang.
            XCTAssertLessThan(elapsed, .seconds(2))
        }
        // Two consecutive timeouts ejected oa-1: the third request went straight to oa-2.
        let state = try await deploymentState("oa-1")
        XCTAssertEqual(state?["state"], "ejected")
        XCTAssertEqual(state?["breaker"]?["ejections"], 1)
        let metrics = String(decoding: try await fixture.get("/metrics").body, as: UTF8.self)
        XCTAssertTrue(metrics.contains(#"lifeline_ejections_total{deployment="oa-1"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"lifeline_circuit_state{deployment="oa-1"} 1"#))
        XCTAssertTrue(metrics.contains(#"lifeline_failovers_total{model="chat-openai",phase="before_first_byte",outcome="attempted"} 2"#))
        XCTAssertTrue(metrics.contains(#"lifeline_upstream_requests_total{deployment="oa-1",outcome="timeout"} 2"#))
    }

    func testAnEjectedDeploymentReturnsAfterItsEjectionPeriod() async throws {
        try await start {
            $0.routing.outlierDetection.consecutiveFailures = 1
            $0.routing.outlierDetection.baseEjectionTime = 0.3
        }
        var knobs = SimulatorKnobs()
        knobs.errorRate = 1
        fixture.simulatorA.setKnobs(knobs)
        let failing = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "eject"))
        XCTAssertEqual(failing.headers["x-lifeline-deployment"], "oa-2")
        let ejected = try await deploymentState("oa-1")
        XCTAssertEqual(ejected?["state"], "ejected")
        fixture.simulatorA.resetKnobs()
        try await Task.sleep(for: .milliseconds(400))
        // The half-open trial succeeds and closes the breaker.
        let back = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "eject"))
        XCTAssertEqual(back.headers["x-lifeline-deployment"], "oa-1")
        let recovered = try await deploymentState("oa-1")
        XCTAssertEqual(recovered?["state"], "healthy")
    }

    func testASpentRetryBudgetStopsFailoverOntoFailingDeploymentsInsteadOfMultiplyingLoad() async throws {
        try await start {
            $0.routing.retryBudget.ratio = 0
            $0.routing.retryBudget.minimumPerSecond = 0.1 // one budgeted retry per 10 s window
            $0.routing.outlierDetection.consecutiveFailures = 1000
            $0.routing.outlierDetection.failureRateMinimumRequests = 1000
        }
        var knobs = SimulatorKnobs()
        knobs.errorRate = 1
        fixture.simulatorA.setKnobs(knobs)
        fixture.simulatorB.setKnobs(knobs)
        // oa-2 has not failed yet: the failover onto it is free (and fails).
        let first = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "budget"))
        XCTAssertEqual(first.status, 503)
        XCTAssertEqual(first.headers["x-lifeline-attempts"], "2")
        // Now oa-2 is failing too: the failover onto it spends the one budgeted retry.
        let second = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "budget"))
        XCTAssertEqual(second.headers["x-lifeline-attempts"], "2")
        let before = fixture.simulatorB.requestsReceived
        let third = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "budget"))
        XCTAssertEqual(third.status, 503)
        XCTAssertNotNil(third.headers["retry-after"])
        XCTAssertTrue(third.json?["error"]?["message"]?.stringValue?.contains("retry budget") ?? false, third.text)
        XCTAssertEqual(fixture.simulatorB.requestsReceived, before)
        let metrics = String(decoding: try await fixture.get("/metrics").body, as: UTF8.self)
        XCTAssertTrue(metrics.contains(#"lifeline_retry_budget_exhausted_total{model="chat-openai"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"lifeline_failovers_total{model="chat-openai",phase="before_first_byte",outcome="refused"} 1"#), metrics)
    }

    func testAFailoverOntoAHealthyDeploymentWithRoomIsFreeEvenWithTheBudgetSpent() async throws {
        try await start {
            $0.routing.retryBudget.ratio = 0
            $0.routing.retryBudget.minimumPerSecond = 0.1
            $0.routing.outlierDetection.consecutiveFailures = 1000
            $0.routing.outlierDetection.failureRateMinimumRequests = 1000
        }
        var knobs = SimulatorKnobs()
        knobs.errorRate = 1
        fixture.simulatorA.setKnobs(knobs)
        for _ in 0..<5 {
            let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "free"))
            XCTAssertEqual(reply.status, 200)
            XCTAssertEqual(reply.headers["x-lifeline-deployment"], "oa-2")
        }
        let metrics = String(decoding: try await fixture.get("/metrics").body, as: UTF8.self)
        XCTAssertTrue(metrics.contains(#"lifeline_retry_budget_exhausted_total{model="chat-openai"} 0"#), metrics)
    }

    func testAClientErrorFromTheUpstreamIsNotRetried() async throws {
        try await start()
        var knobs = SimulatorKnobs()
        knobs.errorRate = 1
        knobs.errorStatus = 400
        fixture.simulatorA.setKnobs(knobs)
        let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "bad"))
        XCTAssertEqual(reply.status, 400)
        XCTAssertEqual(reply.headers["x-lifeline-attempts"], "1")
        XCTAssertEqual(fixture.simulatorB.requestsReceived, 0)
    }

    func testADrainedDeploymentTakesNoNewRequestsUntilUndrained() async throws {
        try await start()
        let drained = try await fixture.admin("POST", "/deployments/oa-1/drain")
        XCTAssertEqual(drained.json?["state"], "draining")
        for _ in 0..<3 {
            let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "drain"))
            XCTAssertEqual(reply.headers["x-lifeline-deployment"], "oa-2")
            XCTAssertEqual(reply.headers["x-lifeline-attempts"], "1")
        }
        _ = try await fixture.admin("POST", "/deployments/oa-1/undrain")
        let back = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "drain"))
        XCTAssertEqual(back.headers["x-lifeline-deployment"], "oa-1")
        let missing = try await fixture.admin("POST", "/deployments/nope/drain")
        XCTAssertEqual(missing.status, 404)
    }

    func testDrillFaultsAreValidatedListedAndCleared() async throws {
        try await start()
        let unauthorized = try await fixture.admin("GET", "/faults", authorized: false)
        XCTAssertEqual(unauthorized.status, 401)
        let badKind = try await fixture.admin("POST", "/faults", ["deployment": "oa-1", "kind": "meteor"])
        XCTAssertEqual(badKind.status, 400)
        XCTAssertEqual(badKind.json?["error"]?["param"], "kind")
        let badRate = try await fixture.admin("POST", "/faults", ["deployment": "oa-1", "kind": "error", "rate": 2])
        XCTAssertEqual(badRate.json?["error"]?["param"], "rate")
        let unknown = try await fixture.admin("POST", "/faults", ["deployment": "zz", "kind": "error"])
        XCTAssertEqual(unknown.status, 404)

        let created = try await fixture.admin("POST", "/faults", ["deployment": "an-1", "kind": "error", "status": 503, "duration_s": 60])
        let id = try XCTUnwrap(created.json?["id"]?.stringValue)
        let failed = try await fixture.post("/v1/messages", chatBody("chat-anthropic", "drill", api: .anthropic))
        XCTAssertEqual(failed.headers["x-lifeline-deployment"], "an-2")
        let listed = try await fixture.admin("GET", "/faults")
        XCTAssertEqual(listed.json?["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [id])
        let deleted = try await fixture.admin("DELETE", "/faults/\(id)")
        XCTAssertEqual(deleted.status, 200)
        let again = try await fixture.admin("DELETE", "/faults/\(id)")
        XCTAssertEqual(again.status, 404)
        let healthy = try await fixture.post("/v1/messages", chatBody("chat-anthropic", "drill", api: .anthropic))
        XCTAssertEqual(healthy.headers["x-lifeline-deployment"], "an-1")
    }

    func testADisconnectDrillMidStreamIsResumedWithIdenticalText() async throws {
        try await start()
        let body = chatBody("chat-anthropic", "drill resume", stream: true, maxTokens: 100)
        let reference = try StreamTranscript(try await fixture.post("/v1/chat/completions", body).body)
        _ = try await fixture.admin("POST", "/faults", ["deployment": "an-1", "kind": "disconnect", "after_tokens": 3])
        let reply = try await fixture.post("/v1/chat/completions", body)
        let transcript = try StreamTranscript(reply.body)
        XCTAssertEqual(transcript.text, reference.text)
        XCTAssertEqual(transcript.comments.count, 1)
        let metrics = String(decoding: try await fixture.get("/metrics").body, as: UTF8.self)
        XCTAssertTrue(metrics.contains(#"lifeline_failovers_total{model="chat-anthropic",phase="mid_stream",outcome="attempted"} 1"#), metrics)
    }

    func testAStreamResumedOnAnotherModelIdGoesOnWithoutASecondOpening() async throws {
        // an-2 runs another upstream model: its simulator's own answer differs from an-1's.
        try await start { config in config.models[1].deployments[1].model = "another-model" }
        let body = chatBody("chat-anthropic", "retry budgets", stream: true, maxTokens: 100)
        let reference = try StreamTranscript(try await fixture.post("/v1/chat/completions", body).body)
        let openers = DeterministicText.openers
        XCTAssertEqual(openers.filter { reference.text.contains($0) }.count, 1, reference.text)
        var resumed: [String] = []
        for _ in 0..<2 {
            _ = try await fixture.admin("POST", "/faults", ["deployment": "an-1", "kind": "disconnect", "after_tokens": 6])
            let reply = try await fixture.post("/v1/chat/completions", body)
            let transcript = try StreamTranscript(reply.body)
            XCTAssertEqual(transcript.comments.count, 1, reply.text)
            XCTAssertEqual(transcript.doneCount, 1)
            resumed.append(transcript.text)
            _ = try await fixture.admin("DELETE", "/faults")
        }
        let text = resumed[0]
        XCTAssertEqual(resumed[1], text, "deterministic")
        let sent = reference.text.split(separator: " ", omittingEmptySubsequences: false).prefix(6).joined(separator: " ")
        XCTAssertTrue(text.hasPrefix(sent), "\(sent)|\(text)")
        XCTAssertGreaterThan(text.count, sent.count + 10, text)
        // One opening: the continuation does not answer again from the start.
        XCTAssertEqual(openers.filter { text.contains($0) }.count, 1, text)
    }

    func testADeploymentAtItsOwnRequestAllowanceIsAvoidedInsteadOfHit() async throws {
        try await start { $0.models[0].deployments[0].requestsPerMinute = 2 }
        var served: [String] = []
        for _ in 0..<3 {
            let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "allowance"))
            served.append(reply.headers["x-lifeline-deployment"] ?? "")
            XCTAssertEqual(reply.headers["x-lifeline-attempts"], "1")
        }
        XCTAssertEqual(served, ["oa-1", "oa-1", "oa-2"])
        XCTAssertEqual(fixture.simulatorA.requestsReceived, 2)
    }

    func testASlowStreamStartIsHedgedOnTheNextDeploymentAndTheLoserCancelled() async throws {
        try await start { config in
            var hedging = HedgingConfig()
            hedging.minimumDelayMilliseconds = 50
            hedging.maximumDelayMilliseconds = 100
            config.models[0].hedging = hedging
            config.models[0].deployments[0].timeouts.firstTokenMilliseconds = 5_000
        }
        var slow = SimulatorKnobs()
        slow.ttftMilliseconds = 1_500
        fixture.simulatorA.setKnobs(slow)
        let clock = ContinuousClock()
        let started = clock.now
        let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hedge me", stream: true))
        XCTAssertLessThan(clock.now - started, .milliseconds(1_200))
        XCTAssertEqual(reply.headers["x-lifeline-deployment"], "oa-2")
        XCTAssertEqual(reply.headers["x-lifeline-attempts"], "2")
        XCTAssertEqual(try StreamTranscript(reply.body).doneCount, 1)
        for _ in 0..<100 where fixture.simulatorA.activeStreams > 0 { try await Task.sleep(for: .milliseconds(20)) }
        XCTAssertEqual(fixture.simulatorA.activeStreams, 0, "the losing attempt was not cancelled")
        let metrics = String(decoding: try await fixture.get("/metrics").body, as: UTF8.self)
        XCTAssertTrue(metrics.contains(#"lifeline_hedges_total{model="chat-openai"} 1"#), metrics)
        // The slow deployment was not punished: a hedge is not a failure.
        let state = try await deploymentState("oa-1")
        XCTAssertEqual(state?["state"], "healthy")
    }

    func testAHealthProbeSuccessReturnsAnEjectedDeploymentEarly() async throws {
        try await start { config in
            config.routing.outlierDetection.consecutiveFailures = 1
            config.routing.outlierDetection.baseEjectionTime = 60
            var check = HealthCheckConfig()
            check.intervalSeconds = 0.1
            config.models[0].deployments[0].healthCheck = check
        }
        var knobs = SimulatorKnobs()
        knobs.errorRate = 1
        fixture.simulatorA.setKnobs(knobs)
        _ = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "probe"))
        // The probe (GET /models) still answers, so the next probe closes the breaker long before 60 s.
        fixture.simulatorA.resetKnobs()
        var state = try await deploymentState("oa-1")
        for _ in 0..<50 where state?["state"] != "healthy" {
            try await Task.sleep(for: .milliseconds(50))
            state = try await deploymentState("oa-1")
        }
        XCTAssertEqual(state?["state"], "healthy")
        XCTAssertEqual(state?["breaker"]?["ejections"], 1)
        let back = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "probe"))
        XCTAssertEqual(back.headers["x-lifeline-deployment"], "oa-1")
        let metrics = String(decoding: try await fixture.get("/metrics").body, as: UTF8.self)
        XCTAssertTrue(metrics.contains(#"lifeline_health_probes_total{deployment="oa-1",outcome="ok"}"#))
        // Probes are not user traffic.
        XCTAssertFalse(metrics.contains(#"lifeline_upstream_requests_total{deployment="oa-1",outcome="ok"} 0"#))
        XCTAssertTrue(metrics.contains(#"lifeline_upstream_requests_total{deployment="oa-1",outcome="ok"} 1"#), metrics)
    }

    func testADeploymentAtItsConcurrencyLimitIsSkippedNotQueuedBehind() async throws {
        try await start { config in
            config.admission.deploymentConcurrency.pin(at: 1)
        }
        var slow = SimulatorKnobs()
        slow.ttftMilliseconds = 250 // under the 300 ms first-token timeout these tests use
        fixture.simulatorA.setKnobs(slow)
        let fixture = self.fixture!
        async let first = fixture.post("/v1/chat/completions", chatBody("chat-openai", "first"))
        try await Task.sleep(for: .milliseconds(100))
        let during = String(decoding: try await fixture.get("/metrics").body, as: UTF8.self)
        XCTAssertTrue(during.contains(#"lifeline_deployment_in_flight_requests{deployment="oa-1"} 1"#), during)
        let second = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "second"))
        XCTAssertEqual(second.headers["x-lifeline-deployment"], "oa-2")
        XCTAssertEqual(second.headers["x-lifeline-attempts"], "1")
        let firstReply = try await first
        XCTAssertEqual(firstReply.headers["x-lifeline-deployment"], "oa-1")
        // Once the first finished, oa-1 has room again.
        let third = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "third"))
        XCTAssertEqual(third.headers["x-lifeline-deployment"], "oa-1")
        let metrics = String(decoding: try await fixture.get("/metrics").body, as: UTF8.self)
        XCTAssertTrue(metrics.contains(#"lifeline_concurrency_limit{scope="oa-1"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"lifeline_deployment_in_flight_requests{deployment="oa-1"} 0"#), metrics)
    }

    func testARequestWhoseDeploymentsStayAtTheirLimitIsShedAsOverloadedNotAnOutage() async throws {
        try await start { config in
            config.admission.deploymentConcurrency.pin(at: 1)
            config.admission.queue.maximumWait = 0.2
        }
        // Each stream holds its deployment's one slot for about a second.
        var slow = SimulatorKnobs()
        slow.tokensPerSecond = 20
        fixture.simulatorA.setKnobs(slow)
        fixture.simulatorB.setKnobs(slow)
        let fixture = self.fixture!
        async let first = fixture.post("/v1/chat/completions", chatBody("chat-openai", "first", stream: true, maxTokens: 20))
        async let second = fixture.post("/v1/chat/completions", chatBody("chat-openai", "second", stream: true, maxTokens: 20))
        try await Task.sleep(for: .milliseconds(150))
        let third = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "third", maxTokens: 20))
        XCTAssertEqual(third.status, 503)
        XCTAssertEqual(third.json?["error"]?["code"]?.stringValue, "overloaded", "\(third.json as Any)")
        XCTAssertEqual(third.headers["retry-after"], "1")
        let (one, two) = try await (first, second)
        XCTAssertEqual([one.status, two.status], [200, 200])
        let metrics = String(decoding: try await fixture.get("/metrics").body, as: UTF8.self)
        XCTAssertEqual(metricValue(#"lifeline_shed_total{reason="deployment_busy",priority="normal"}"#, in: metrics), 1, metrics)
    }

    /// An upstream that answers a stream's head but no first token, or not even the head, is
    /// left at the first-token timeout and the stream fails over, unseen by its client.
    func testAStreamWhoseFirstTokenDoesNotComeInTimeFailsOver() async throws {
        try await start { $0.routing.outlierDetection.consecutiveFailures = 10 }
        for hangs in [false, true] {
            var knobs = SimulatorKnobs()
            if hangs { knobs.hang = true } else { knobs.ttftMilliseconds = 10_000 }
            fixture.simulatorA.setKnobs(knobs)
            let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "late first token", stream: true))
            XCTAssertEqual(reply.status, 200, reply.text)
            XCTAssertEqual(reply.headers["x-lifeline-deployment"], "oa-2", "hangs \(hangs)")
            XCTAssertEqual(reply.headers["x-lifeline-attempts"], "2")
            XCTAssertEqual(try StreamTranscript(reply.body).doneCount, 1)
        }
        let metrics = try await fixture.metricsText()
        XCTAssertEqual(metricValue(#"lifeline_upstream_requests_total{deployment="oa-1",outcome="timeout"}"#, in: metrics), 2)
    }

    /// A connection that could not be had carried nothing, so even a model's only deployment is
    /// tried again (within `max_attempts`); an upstream that answered an error is not.
    func testALoneDeploymentThatRefusesConnectionsIsTriedAgainButOneThatAnsweredAnErrorIsNot() async throws {
        let closed = try closedLoopbackPort()
        try await start { config in
            var refusing = DeploymentConfig(name: "refusing", protocol: .openai, model: "sim-model")
            refusing.baseURL = "http://127.0.0.1:\(closed)/v1"
            var failing = config.models[0].deployments[0]
            failing.name = "failing"
            config.models += [ModelConfig(name: "lone-refusing", deployments: [refusing]),
                              ModelConfig(name: "lone-failing", deployments: [failing])]
            config.routing.outlierDetection.consecutiveFailures = 10
        }
        for stream in [false, true] {
            let refused = try await fixture.post("/v1/chat/completions", chatBody("lone-refusing", "anyone there", stream: stream))
            XCTAssertEqual(refused.status, 503, refused.text)
            XCTAssertEqual(refused.headers["x-lifeline-attempts"], "3", "stream \(stream)")
        }
        var knobs = SimulatorKnobs()
        knobs.errorRate = 1
        fixture.simulatorA.setKnobs(knobs)
        let failed = try await fixture.post("/v1/chat/completions", chatBody("lone-failing", "an error"))
        XCTAssertEqual(failed.status, 503, failed.text)
        XCTAssertEqual(failed.headers["x-lifeline-attempts"], "1")
        let metrics = try await fixture.metricsText()
        XCTAssertEqual(metricValue(#"lifeline_upstream_requests_total{deployment="refusing",outcome="connect"}"#, in: metrics), 6)
    }

    func testAFaultExpiresByItself() async throws {
        try await start()
        let created = try await fixture.admin("POST", "/faults", ["deployment": "oa-1", "kind": "error", "duration_s": 1])
        XCTAssertEqual(created.status, 201)
        try await Task.sleep(for: .milliseconds(1100))
        let listed = try await fixture.admin("GET", "/faults")
        XCTAssertEqual(listed.json?["data"]?.arrayValue?.count, 0)
    }
}

final class ReloadTests: XCTestCase {
    func testReloadSwapsDeploymentsAndRefusesAnInvalidConfig() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        var next = fixture.runtime.config
        next.models[0].deployments[0].priority = 5 // oa-2 now preferred
        try fixture.runtime.reload(next)
        let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "reload"))
        XCTAssertEqual(reply.headers["x-lifeline-deployment"], "oa-2")

        var invalid = next
        invalid.server.port = 1
        XCTAssertThrowsError(try fixture.runtime.reload(invalid)) { error in
            XCTAssertEqual((error as? ConfigError)?.issues.first?.path, "server")
        }
        let still = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "reload"))
        XCTAssertEqual(still.headers["x-lifeline-deployment"], "oa-2")
    }
}

/// A loopback port nothing listens on: bound for a moment to learn a free one, then closed.
func closedLoopbackPort() throws -> Int {
    #if canImport(Glibc)
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let descriptor = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}
