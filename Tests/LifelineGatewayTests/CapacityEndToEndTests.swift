import Foundation
@testable import LifelineGateway
import LifelineWire
import XCTest

/// `GET /admin/v1/capacity` over real sockets: traffic sent is the load reported, with the
/// deployments' configured and learned limits.
final class CapacityEndToEndTests: XCTestCase {
    var fixture: GatewayFixture?

    override func tearDown() async throws {
        await fixture?.stop()
    }

    func testTrafficShowsAsLoadAgainstConfiguredAndLearnedLimits() async throws {
        fixture = try await GatewayFixture.start { config in
            config.models[0].deployments[0].requestsPerMinute = 600
        }
        let fixture = try XCTUnwrap(fixture)
        for _ in 0..<12 { _ = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "capacity", maxTokens: 8)) }
        let unauthorized = try await fixture.admin("GET", "/capacity", authorized: false).status
        XCTAssertEqual(unauthorized, 401)
        let reply = try await fixture.admin("GET", "/capacity")
        let report = try XCTUnwrap(reply.json)
        let models = report["models"]?.arrayValue ?? []
        XCTAssertEqual(models.compactMap { $0["model"]?.stringValue }.sorted(), ["chat-anthropic", "chat-openai"])
        let openai = try XCTUnwrap(models.first { $0["model"] == "chat-openai" })
        XCTAssertEqual(openai["peak"]?["requests_per_minute"]?.doubleValue, 12, "all twelve in the minute under way")
        XCTAssertGreaterThan(openai["peak"]?["tokens_per_minute"]?.doubleValue ?? 0, 0)
        let deployments = openai["deployments"]?.arrayValue ?? []
        XCTAssertEqual(deployments.compactMap { $0["deployment"]?.stringValue }, ["oa-1", "oa-2"])
        XCTAssertEqual(deployments[0]["capacity"]?["requests_per_minute"]?.doubleValue, 600, "the configured allowance binds")
        XCTAssertEqual(deployments[0]["capacity_known"]?["requests_per_minute"], true)
        XCTAssertGreaterThan(deployments[0]["learned_concurrency_limit"]?.doubleValue ?? 0, 0)
        XCTAssertNotNil(deployments[0]["mean_latency_s"]?.doubleValue)
        XCTAssertEqual(deployments[1]["peak"]?["requests_per_minute"]?.doubleValue, 0, "the second deployment took nothing")
        XCTAssertNotNil(openai["headroom"]?.doubleValue)
        XCTAssertEqual(openai["forecast"]?["method"], "none", "minutes of history are too little to forecast")
        XCTAssertNotNil(openai["survives_largest_failure"]?.boolValue)

        // Written behind to the store, the history reads the same after a flush.
        await fixture.runtime.traffic.flush()
        let stored = try await fixture.runtime.store.traffic(since: 0)
        XCTAssertEqual(stored.filter { $0.scope == "model:chat-openai" }.map(\.requests).reduce(0, +), 12)
        let again = try await fixture.admin("GET", "/capacity").json?["models"]?.arrayValue?.first { $0["model"] == "chat-openai" }
        XCTAssertEqual(again?["peak"]?["requests_per_minute"]?.doubleValue, 12)
    }
}
