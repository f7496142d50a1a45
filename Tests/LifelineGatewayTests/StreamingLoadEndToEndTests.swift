import LifelineGateway
import LifelineSimulator
import LifelineWire
import XCTest

/// Chat traffic's real shape over real sockets: many long streams at once, clients that hang
/// up, and one provider cutting every stream it carries. Nothing here is timed: each test
/// checks who was answered, refused or resumed.
final class StreamingLoadEndToEndTests: XCTestCase {
    var fixture: GatewayFixture!

    override func tearDown() async throws {
        await fixture?.stop()
    }

    /// The default admission and routing settings, with one model `chat-solo` on simulator A
    /// only, so nothing can hide a refusal by failing over.
    private func startSolo() async throws {
        fixture = try await GatewayFixture.start { config in
            var solo = config.models[0].deployments[0]
            solo.name = "solo-1"
            solo.timeouts.firstTokenMilliseconds = 10_000
            config.models.append(ModelConfig(name: "chat-solo", deployments: [solo]))
        }
    }

    func testStreamsTheClientCutAreForgottenAndNewRequestsAreAllAnswered() async throws {
        try await startSolo()
        var knobs = SimulatorKnobs()
        knobs.ttftMilliseconds = 300
        knobs.tokensPerSecond = 50
        fixture.simulatorA.setKnobs(knobs)
        let body = String(decoding: JSONCoding.encode(chatBody("chat-solo", "hang up on me", stream: true, maxTokens: 200)), as: UTF8.self)
        let request = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        // 40 clients hang up: half while waiting for the first token, half mid-stream.
        var connections: [RawHTTPConnection] = []
        for _ in 0..<40 {
            let connection = try await RawHTTPConnection(port: fixture.gatewayPort)
            try await connection.send(request)
            connections.append(connection)
        }
        try await Task.sleep(for: .milliseconds(50))
        for connection in connections.prefix(20) { try await connection.close() }
        for connection in connections.dropFirst(20) {
            _ = try await connection.receive() // the head and first event
            try await connection.close()
        }
        // Every slot comes back: nothing is left counted in flight at the gateway or the deployment.
        var lastScrape = ""
        try await waitFor("in-flight counts back to 0") {
            lastScrape = try await self.fixture.metricsText()
            return lastScrape.contains("lifeline_in_flight_requests 0")
                && lastScrape.contains(#"lifeline_deployment_in_flight_requests{deployment="solo-1"} 0"#)
        }
        let inFlightLines = lastScrape.split(separator: "\n").filter { $0.contains("in_flight") || $0.contains("requests_total{") }
        if !(lastScrape.contains("lifeline_in_flight_requests 0")) || !lastScrape.contains(#"lifeline_deployment_in_flight_requests{deployment="solo-1"} 0"#) {
            XCTFail("still counted in flight:\n\(inFlightLines.joined(separator: "\n"))")
        }
        let simulator = fixture.simulatorA
        try await waitFor("the upstream streams cancelled") { simulator.activeStreams == 0 }
        let text = try await self.fixture.metricsText()
        XCTAssertTrue(text.contains(#"lifeline_upstream_requests_total{deployment="solo-1",outcome="disconnected"}"#) == false,
                      "a client hanging up is not an upstream failure:\n\(text)")
        XCTAssertTrue(text.contains(#"lifeline_circuit_state{deployment="solo-1"} 0"#), text)

        // Then 60 new streams at once, on the same deployment: every one answered in full.
        knobs.ttftMilliseconds = 100
        knobs.tokensPerSecond = 100
        fixture.simulatorA.setKnobs(knobs)
        let fixture = self.fixture!
        let replies = try await withThrowingTaskGroup(of: GatewayFixture.Reply.self) { group in
            for index in 0..<60 {
                group.addTask { try await fixture.post("/v1/chat/completions", chatBody("chat-solo", "after \(index)", stream: true, maxTokens: 20)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(replies.map(\.status), Array(repeating: 200, count: 60))
        for reply in replies {
            let transcript = try StreamTranscript(reply.body)
            XCTAssertEqual(transcript.doneCount, 1)
            XCTAssertEqual(transcript.errors.count, 0)
        }
    }

    func testManyConcurrentLongStreamsToAHealthyUpstreamAreNeverRefused() async throws {
        try await startSolo()
        var knobs = SimulatorKnobs()
        knobs.ttftMilliseconds = 200
        knobs.tokensPerSecond = 40
        fixture.simulatorA.setKnobs(knobs)
        let fixture = self.fixture!
        let count = 300
        // Streams of different lengths (5 to 45 tokens): how long a stream lasts says nothing
        // about the upstream's health.
        let replies = try await withThrowingTaskGroup(of: GatewayFixture.Reply.self) { group in
            for index in 0..<count {
                group.addTask {
                    try await fixture.post("/v1/chat/completions", chatBody("chat-solo", "long \(index)", stream: true, maxTokens: 5 + index % 41))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let refused = replies.filter { $0.status != 200 }
        XCTAssertEqual(refused.count, 0, "refused: \(refused.prefix(3).map(\.text))")
        for reply in replies where reply.status == 200 {
            let transcript = try StreamTranscript(reply.body)
            XCTAssertEqual(transcript.doneCount, 1)
            XCTAssertEqual(transcript.errors.count, 0)
        }
        let text = try await fixture.metricsText()
        for reason in ["queue_full", "queue_timeout"] {
            XCTAssertEqual(metricValue(#"lifeline_shed_total{reason="\#(reason)",priority="normal"}"#, in: text), 0, text)
        }
    }

    func testABurstOfStreamsCutByOneDeploymentAllResumeOnTheOther() async throws {
        let fixture = try await startPaced()
        let prompts = (0..<10).map { "burst \($0)" }
        var references: [String: String] = [:]
        for prompt in prompts {
            references[prompt] = try StreamTranscript(try await fixture.post("/v1/chat/completions", chatBody("chat-openai", prompt, stream: true, maxTokens: 40)).body).text
        }
        _ = try await fixture.admin("POST", "/faults", ["deployment": "oa-1", "kind": "disconnect", "after_tokens": 5, "duration_s": 600])
        for run in 0..<3 {
            let transcripts = try await withThrowingTaskGroup(of: (String, StreamTranscript, String).self) { group in
                for index in 0..<100 {
                    let prompt = prompts[index % prompts.count]
                    group.addTask {
                        let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", prompt, stream: true, maxTokens: 40))
                        return (prompt, try StreamTranscript(reply.body), "\(reply.status) \(reply.text.prefix(300))")
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let broken = transcripts.filter { $0.1.text != references[$0.0] || !$0.1.errors.isEmpty || $0.1.doneCount != 1 }
            XCTAssertEqual(broken.count, 0, "run \(run): \(broken.count) of 100 streams broke, e.g. \(broken.first.map { "\($0.2) vs \(references[$0.0] ?? "")" } ?? "")")
        }
        let text = try await fixture.metricsText()
        XCTAssertTrue(text.contains(#"lifeline_failovers_total{model="chat-openai",phase="mid_stream",outcome="refused"} 0"#), text)
    }

    func testWhenEveryDeploymentCutsStreamsContinuationsStayBounded() async throws {
        let fixture = try await startPaced()
        for deployment in ["oa-1", "oa-2"] {
            _ = try await fixture.admin("POST", "/faults", ["deployment": .string(deployment), "kind": "disconnect", "after_tokens": 5, "duration_s": 600])
        }
        let streams = 60
        let transcripts = try await withThrowingTaskGroup(of: StreamTranscript.self) { group in
            for index in 0..<streams {
                group.addTask { try StreamTranscript(try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "storm \(index)", stream: true, maxTokens: 60)).body) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        // Every stream ends with the error event the SDKs raise, never silently.
        for transcript in transcripts {
            XCTAssertEqual(transcript.errors.first?["error"]?["code"]?.stringValue, "stream_interrupted")
        }
        let text = try await fixture.metricsText()
        let attempted = try XCTUnwrap(metricValue(#"lifeline_failovers_total{model="chat-openai",phase="mid_stream",outcome="attempted"}"#, in: text))
        let refused = try XCTUnwrap(metricValue(#"lifeline_failovers_total{model="chat-openai",phase="mid_stream",outcome="refused"}"#, in: text))
        // One free continuation each onto the deployment not yet seen failing, then only what
        // the budget allows (3 a second over 10 s), however many streams keep breaking.
        XCTAssertLessThanOrEqual(attempted, Double(streams + 30), text)
        XCTAssertGreaterThan(refused, 0, text)
    }

    /// The fixture's two simulators at 50 tokens a second, behind `patientDeployments`.
    private func startPaced() async throws -> GatewayFixture {
        fixture = try await GatewayFixture.start(configure: Self.patientDeployments)
        var knobs = SimulatorKnobs()
        knobs.tokensPerSecond = 50
        fixture.simulatorA.setKnobs(knobs)
        fixture.simulatorB.setKnobs(knobs)
        return fixture
    }

    /// No backoff, and first-token timeouts long enough that a debug build carrying a hundred
    /// streams on two shared cores never times out: these tests are about who is resumed.
    static func patientDeployments(_ config: inout LifelineConfig) {
        config.routing.backoff = .init(base: 0, maximum: 0)
        for model in config.models.indices {
            for deployment in config.models[model].deployments.indices {
                config.models[model].deployments[deployment].timeouts.firstTokenMilliseconds = 15_000
            }
        }
    }
}
