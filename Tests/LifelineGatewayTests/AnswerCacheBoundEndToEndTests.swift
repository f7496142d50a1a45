import LifelineCore
@testable import LifelineGateway
import LifelineWire
import XCTest

/// The in-memory answer cache stays within `max_entries` and `max_bytes` while thousands of
/// distinct questions go through the gateway over real sockets (the 100,000-request run is in
/// bench/cache/bound.py and the policy's own test; this one keeps CI short).
final class AnswerCacheBoundEndToEndTests: XCTestCase {
    func testDistinctRequestsNeverGrowTheCachePastItsBounds() async throws {
        let maxEntries = 200
        let maxBytes = 64 * 1_024
        let fixture = try await GatewayFixture.start { config in
            var policy = AnswerCachePolicy()
            policy.maxEntries = maxEntries
            policy.maxBytes = maxBytes
            config.models[0].cache = policy
        }
        defer { Task { await fixture.stop() } }
        let total = 3_000
        let workers = 16
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    for index in stride(from: worker, to: total, by: workers) {
                        var body = chatBody("chat-openai", "distinct question \(index)", maxTokens: 8).objectValue ?? [:]
                        body["temperature"] = 0
                        let reply = try await fixture.post("/v1/chat/completions", .object(body))
                        XCTAssertEqual(reply.status, 200)
                        XCTAssertEqual(reply.headers["x-lifeline-cache"], "miss")
                    }
                }
            }
            try await group.waitForAll()
        }
        let text = try await fixture.metricsText()
        let entries = try XCTUnwrap(metricValue(#"lifeline_cache_entries{model="chat-openai"}"#, in: text), text)
        let bytes = try XCTUnwrap(metricValue(#"lifeline_cache_bytes{model="chat-openai"}"#, in: text), text)
        let evictions = try XCTUnwrap(metricValue(#"lifeline_cache_evictions_total{model="chat-openai"}"#, in: text), text)
        XCTAssertGreaterThan(entries, 0)
        XCTAssertLessThanOrEqual(entries, Double(maxEntries))
        XCTAssertLessThanOrEqual(bytes, Double(maxBytes))
        XCTAssertGreaterThan(evictions, 0)
        XCTAssertLessThanOrEqual(entries + evictions, Double(total), "an answer is stored once, then kept or evicted")
        XCTAssertEqual(metricValue(#"lifeline_cache_requests_total{model="chat-openai",result="miss"}"#, in: text), Double(total))
    }
}
