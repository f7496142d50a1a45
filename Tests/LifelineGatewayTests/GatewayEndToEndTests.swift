import LifelineSimulator
import LifelineWire
import XCTest

/// The gateway's contracts over real sockets: both APIs, translation, failover and resumption.
final class GatewayEndToEndTests: XCTestCase {
    var fixture: GatewayFixture!

    override func setUp() async throws {
        fixture = try await GatewayFixture.start()
    }

    override func tearDown() async throws {
        await fixture.stop()
    }

    func testBothAPIsAnswerOnEveryModelWithTheLifelineHeaders() async throws {
        for model in ["chat-openai", "chat-anthropic"] {
            let openAI = try await fixture.post("/v1/chat/completions", chatBody(model, "hello there"), headers: ["x-request-id": "req-42"])
            XCTAssertEqual(openAI.status, 200, openAI.text)
            XCTAssertEqual(openAI.headers["x-request-id"], "req-42")
            XCTAssertEqual(openAI.headers["x-lifeline-deployment"], model == "chat-openai" ? "oa-1" : "an-1")
            XCTAssertEqual(openAI.headers["x-lifeline-attempts"], "1")
            XCTAssertEqual(openAI.json?["model"]?.stringValue, model)
            XCTAssertEqual(openAI.json?["object"], "chat.completion")
            let openAIText = try XCTUnwrap(openAI.json?["choices"]?[0]?["message"]?["content"]?.stringValue)
            XCTAssertFalse(openAIText.isEmpty)

            let anthropic = try await fixture.post("/v1/messages", chatBody(model, "hello there", api: .anthropic))
            XCTAssertEqual(anthropic.status, 200, anthropic.text)
            XCTAssertNotNil(anthropic.headers["x-request-id"])
            XCTAssertEqual(anthropic.json?["type"], "message")
            XCTAssertEqual(anthropic.json?["stop_reason"], "end_turn")
            // The simulator is deterministic, so the same prompt reads the same through either API.
            XCTAssertEqual(anthropic.json?["content"]?[0]?["text"]?.stringValue, openAIText)
        }
    }

    func testStreamsCarryTheSameTextAsWholeAnswers() async throws {
        for api in WireProtocol.clientAPIs {
            for model in ["chat-openai", "chat-anthropic"] {
                let whole = try await fixture.post(path(for: api), chatBody(model, "stream check", api: api))
                let streamed = try await fixture.post(path(for: api), chatBody(model, "stream check", stream: true, api: api))
                XCTAssertEqual(streamed.headers["content-type"], "text/event-stream")
                let transcript = try StreamTranscript(streamed.body)
                let expected = api == .openai ? whole.json?["choices"]?[0]?["message"]?["content"]?.stringValue
                                              : whole.json?["content"]?[0]?["text"]?.stringValue
                XCTAssertEqual(transcript.text, expected, "\(api) on \(model)")
                if api == .openai {
                    XCTAssertEqual(transcript.doneCount, 1)
                } else {
                    XCTAssertEqual(transcript.eventNames.first, "message_start")
                    XCTAssertEqual(transcript.eventNames.last, "message_stop")
                    XCTAssertTrue(transcript.eventNames.contains("ping"))
                }
            }
        }
    }

    func testFailoverBeforeTheFirstByteIsInvisibleToTheClient() async throws {
        var knobs = SimulatorKnobs()
        knobs.errorRate = 1
        fixture.simulatorA.setKnobs(knobs)
        for api in WireProtocol.clientAPIs {
            for model in ["chat-openai", "chat-anthropic"] {
                for stream in [false, true] {
                    let reply = try await fixture.post(path(for: api), chatBody(model, "failover", stream: stream, api: api))
                    XCTAssertEqual(reply.status, 200, reply.text)
                    XCTAssertEqual(reply.headers["x-lifeline-deployment"], model == "chat-openai" ? "oa-2" : "an-2")
                    XCTAssertEqual(reply.headers["x-lifeline-attempts"], "2")
                }
            }
        }
    }

    func testStreamCutMidAnswerResumesIdenticallyOnTheOtherDeployment() async throws {
        for api in WireProtocol.clientAPIs {
            for model in ["chat-openai", "chat-anthropic"] {
                let body = chatBody(model, "resume me please \(api)", stream: true, api: api, maxTokens: 200)
                fixture.simulatorA.resetKnobs()
                let reference = try StreamTranscript(try await fixture.post(path(for: api), body).body)
                var knobs = SimulatorKnobs()
                knobs.disconnectAfterTokens = 5
                fixture.simulatorA.setKnobs(knobs)
                let resumed = try await fixture.post(path(for: api), body)
                let transcript = try StreamTranscript(resumed.body)
                XCTAssertEqual(resumed.headers["x-lifeline-deployment"], model == "chat-openai" ? "oa-1" : "an-1")
                XCTAssertEqual(transcript.text, reference.text, "\(api) client on \(model)")
                XCTAssertEqual(transcript.comments.filter { $0.hasPrefix(": lifeline resumed") }.count, 1, resumed.text)
                XCTAssertTrue(transcript.errors.isEmpty)
                if api == .openai {
                    XCTAssertEqual(transcript.doneCount, 1)
                } else {
                    XCTAssertEqual(transcript.eventNames.filter { $0 == "message_stop" }.count, 1)
                }
            }
        }
    }

    /// A continuation is asked for the client's whole `max_tokens`: an upstream that answers the
    /// prefill from the start needs it all, and one that continues is stopped at the client's limit
    /// by the gateway. Either way the resumed answer is the unfailed one, and ends the same way.
    func testAResumedStreamKeepsTheWholeAnswerWhetherTheNextUpstreamRestartsOrContinues() async throws {
        for api in WireProtocol.clientAPIs {
            for (maxTokens, ending) in [(12, api == .openai ? "length" : "max_tokens"), (200, api == .openai ? "stop" : "end_turn")] {
                for restarts in [false, true] {
                    // One model per API, so no deployment is cut often enough to be ejected.
                    let (model, next) = api == .openai ? ("chat-openai", "oa-2") : ("chat-anthropic", "an-2")
                    let body = chatBody(model, "resume within the budget", stream: true, api: api, maxTokens: maxTokens)
                    fixture.simulatorA.resetKnobs()
                    fixture.simulatorB.resetKnobs()
                    let reference = try StreamTranscript(try await fixture.post(path(for: api), body).body)
                    XCTAssertEqual(reference.finishReasons, [ending], "the reference must end on \(ending)")
                    var cut = SimulatorKnobs()
                    cut.disconnectAfterTokens = 5
                    fixture.simulatorA.setKnobs(cut)
                    var nextKnobs = SimulatorKnobs()
                    nextKnobs.restartOnPrefill = restarts
                    fixture.simulatorB.setKnobs(nextKnobs)
                    let reply = try await fixture.post(path(for: api), body)
                    let resumed = try StreamTranscript(reply.body)
                    let label = "\(api), max_tokens \(maxTokens), \(restarts ? "restarting" : "continuing") upstream"
                    XCTAssertEqual(resumed.comments.filter { $0.hasPrefix(": lifeline resumed on \(next)") }.count, 1, "\(label): \(reply.text)")
                    XCTAssertEqual(resumed.text, reference.text, label)
                    XCTAssertEqual(resumed.finishReasons, [ending], label)
                    XCTAssertTrue(resumed.errors.isEmpty, label)
                }
            }
        }
        XCTAssertEqual(fixture.simulatorB.prefillsReceived, 8, "every continuation carried the text sent as a prefill")
    }

    /// A deployment set to `continuation: replay` is asked the original request again, with no
    /// prefill; the deterministic answer repeats what the client has, and the repeat is dropped.
    func testADeploymentThatReplaysIsAskedTheOriginalRequestAndTheRepeatIsDropped() async throws {
        await fixture.stop()
        fixture = try await GatewayFixture.start { config in
            config.models[0].deployments[1].continuation = .replay
            config.models[1].deployments[1].continuation = .replay
        }
        for api in WireProtocol.clientAPIs {
            for maxTokens in [12, 200] {
                let (model, next) = api == .openai ? ("chat-openai", "oa-2") : ("chat-anthropic", "an-2")
                let body = chatBody(model, "replay the answer", stream: true, api: api, maxTokens: maxTokens)
                fixture.simulatorA.resetKnobs()
                let reference = try StreamTranscript(try await fixture.post(path(for: api), body).body)
                var cut = SimulatorKnobs()
                cut.disconnectAfterTokens = 5
                fixture.simulatorA.setKnobs(cut)
                let reply = try await fixture.post(path(for: api), body)
                let resumed = try StreamTranscript(reply.body)
                let label = "\(api), max_tokens \(maxTokens)"
                XCTAssertEqual(resumed.comments.filter { $0.hasPrefix(": lifeline resumed on \(next)") }.count, 1, "\(label): \(reply.text)")
                XCTAssertEqual(resumed.text, reference.text, label)
                XCTAssertEqual(resumed.finishReasons, reference.finishReasons, label)
            }
        }
        XCTAssertEqual(fixture.simulatorB.requestsReceived, 4)
        XCTAssertEqual(fixture.simulatorB.prefillsReceived, 0, "a replay carries no prefill")
    }

    func testEveryDeploymentDownGivesA503WithRetryAfter() async throws {
        var knobs = SimulatorKnobs()
        knobs.errorRate = 1
        knobs.errorStatus = 502
        fixture.simulatorA.setKnobs(knobs)
        fixture.simulatorB.setKnobs(knobs)
        let openAI = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "down"))
        XCTAssertEqual(openAI.status, 503)
        XCTAssertNotNil(openAI.headers["retry-after"])
        XCTAssertEqual(openAI.json?["error"]?["type"], "service_unavailable")
        let anthropic = try await fixture.post("/v1/messages", chatBody("chat-anthropic", "down", stream: true, api: .anthropic))
        XCTAssertEqual(anthropic.status, 503)
        XCTAssertEqual(anthropic.json?["type"], "error")
        XCTAssertEqual(anthropic.json?["error"]?["type"], "overloaded_error")
    }

    func testUpstream429RetryAfterReachesTheClientWhenNothingElseCanAnswer() async throws {
        var knobs = SimulatorKnobs()
        knobs.rateLimitRate = 1
        knobs.retryAfterSeconds = 7
        fixture.simulatorA.setKnobs(knobs)
        fixture.simulatorB.setKnobs(knobs)
        let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "limited"))
        XCTAssertEqual(reply.status, 503)
        XCTAssertEqual(reply.headers["retry-after"], "7")
    }

    func testBadInputIsRefusedInEachAPIsOwnShapeWithoutCallingAnUpstream() async throws {
        let before = fixture.simulatorA.requestsReceived + fixture.simulatorB.requestsReceived
        let malformed = try await fixture.post("/v1/chat/completions", raw: Array("{\"model\": ".utf8))
        XCTAssertEqual(malformed.status, 400)
        XCTAssertEqual(malformed.json?["error"]?["type"], "invalid_request_error")
        let malformedAnthropic = try await fixture.post("/v1/messages", raw: Array("not json".utf8))
        XCTAssertEqual(malformedAnthropic.status, 400)
        XCTAssertEqual(malformedAnthropic.json?["error"]?["type"], "invalid_request_error")

        let noMessages = try await fixture.post("/v1/chat/completions", ["model": "chat-openai"])
        XCTAssertEqual(noMessages.status, 400)
        XCTAssertEqual(noMessages.json?["error"]?["param"], "messages")
        let badType = try await fixture.post("/v1/chat/completions", ["model": "chat-openai", "messages": [["role": "user", "content": "x"]], "max_tokens": "ten"])
        XCTAssertEqual(badType.json?["error"]?["param"], "max_tokens")

        let unknown = try await fixture.post("/v1/chat/completions", chatBody("no-such-model", "x"))
        XCTAssertEqual(unknown.status, 404)
        XCTAssertEqual(unknown.json?["error"]?["code"], "model_not_found")
        let unknownAnthropic = try await fixture.post("/v1/messages", chatBody("no-such-model", "x", api: .anthropic))
        XCTAssertEqual(unknownAnthropic.status, 404)
        XCTAssertEqual(unknownAnthropic.json?["error"]?["type"], "not_found_error")

        let huge = try await fixture.post("/v1/chat/completions", raw: Array(repeating: UInt8(ascii: " "), count: 4 * 1024 * 1024 + 1))
        XCTAssertEqual(huge.status, 413)
        XCTAssertEqual(huge.json?["error"]?["code"], "request_too_large")
        XCTAssertEqual(fixture.simulatorA.requestsReceived + fixture.simulatorB.requestsReceived, before)
    }

    func testModelsHealthAndReadiness() async throws {
        let models = try await fixture.get("/v1/models")
        XCTAssertEqual(models.json?["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, ["chat-openai", "chat-anthropic"])
        XCTAssertNotNil(models.headers["x-request-id"])
        let health = try await fixture.get("/healthz")
        XCTAssertEqual(health.status, 200)
        let ready = try await fixture.get("/readyz")
        XCTAssertEqual(ready.status, 200)
    }

    func testEmbeddingsPassThroughWithThePublicModelName() async throws {
        let reply = try await fixture.post("/v1/embeddings", ["model": "chat-openai", "input": ["a", "b"], "dimensions": 8])
        XCTAssertEqual(reply.status, 200, reply.text)
        XCTAssertEqual(reply.json?["model"], "chat-openai")
        XCTAssertEqual(reply.json?["data"]?.arrayValue?.count, 2)
        XCTAssertEqual(reply.json?["data"]?[0]?["embedding"]?.arrayValue?.count, 8)
        let bad = try await fixture.post("/v1/embeddings", ["model": "chat-openai"])
        XCTAssertEqual(bad.json?["error"]?["param"], "input")
    }
}

private extension JSONValue {
    subscript(index: Int) -> JSONValue? {
        guard let array = arrayValue, array.indices.contains(index) else { return nil }
        return array[index]
    }
}

final class SlowClientTests: XCTestCase {
    func testAClientThatStallsMidRequestIsDisconnectedWithoutReachingAnUpstream() async throws {
        let fixture = try await GatewayFixture.start { $0.server.idleTimeoutSeconds = 0.5 }
        defer { Task { await fixture.stop() } }
        let socket = try await RawHTTPConnection(port: fixture.gatewayPort)
        // Headers promise a body that never comes.
        try await socket.send("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mod")
        let clock = ContinuousClock()
        let started = clock.now
        let answer = try await socket.receive()
        // The connection is closed (no answer bytes, or an error status) within a few idle periods.
        XCTAssertLessThan(clock.now - started, .seconds(3))
        XCTAssertFalse(answer.contains("200 OK"))
        try await socket.close()
        XCTAssertEqual(fixture.simulatorA.requestsReceived + fixture.simulatorB.requestsReceived, 0)
    }
}

final class ClientDisconnectTests: XCTestCase {
    func testAClientThatLeavesMidStreamCancelsTheUpstreamStream() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        var knobs = SimulatorKnobs()
        // About 8 s per answer: far longer than the wait below, so only cancellation can end it in time.
        knobs.tokensPerSecond = 5
        fixture.simulatorA.setKnobs(knobs)

        // Read the first bytes of a slow stream over a raw socket, then hang up.
        let socket = try await RawHTTPConnection(port: fixture.gatewayPort)
        let body = JSONCoding.encodeString(chatBody("chat-openai", "a slow answer", stream: true))
        try await socket.send("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let start = try await socket.receive()
        XCTAssertTrue(start.contains("200 OK"), start)
        XCTAssertEqual(fixture.simulatorA.activeStreams, 1)
        try await socket.close()

        // Bounded wait: the gateway notices at its next write (one token, 200 ms) and cancels upstream.
        for _ in 0..<100 where fixture.simulatorA.activeStreams > 0 { try await Task.sleep(for: .milliseconds(20)) }
        XCTAssertEqual(fixture.simulatorA.activeStreams, 0)
    }
}
