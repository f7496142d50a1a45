import Foundation
@testable import LifelineGateway
import LifelineCore
import LifelineStore
import LifelineWire
import XCTest

/// `models[].cache.store: true` end to end: a gateway keeps an answer in its SQLite store, and a
/// gateway restarted on the same data directory (its memory empty) answers the repeat from there.
final class AnswerCacheStoreTests: XCTestCase {
    static func start(_ directory: String) async throws -> GatewayFixture {
        try await GatewayFixture.start(dataDirectory: directory) { config in
            var policy = AnswerCachePolicy()
            policy.store = true
            policy.ttlSeconds = 300
            policy.serveStaleOnErrorSeconds = 600
            config.models[0].cache = policy
        }
    }

    func request(_ prompt: String) -> JSONValue {
        var body = chatBody("chat-openai", prompt).objectValue ?? [:]
        body["temperature"] = 0
        return .object(body)
    }

    /// The store's row for the cache key of `prompt` asked by the anonymous caller.
    func row(_ fixture: GatewayFixture, _ prompt: String, now: Double? = nil) async throws -> StoredCacheEntry? {
        let chat = try OpenAIChatRequest.decode(request(prompt))
        let key = AnswerCacheKey.key(for: chat, scope: Caller.anonymousID)
        return try await fixture.runtime.store.cacheEntry(key: key, now: now ?? Date().timeIntervalSince1970)
    }

    func testAnAnswerInTheStoreOutlivesARestartIsPurgedAndSweptWhenExpired() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeline-cachestore-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let first = try await Self.start(directory)
        let asked = try await first.post("/v1/chat/completions", request("What is the capital of France?"))
        XCTAssertEqual(asked.status, 200)
        XCTAssertEqual(asked.headers["x-lifeline-cache"], "miss")
        let answer = try XCTUnwrap(asked.json?["choices"]?[0]?["message"]?["content"]?.stringValue)
        // The store write runs off the request path; wait for the row.
        try await waitFor("the entry in the store") { try await row(first, "What is the capital of France?") != nil }
        let keptRow = try await row(first, "What is the capital of France?")
        let kept = try XCTUnwrap(keptRow)
        XCTAssertEqual(kept.model, "chat-openai")
        XCTAssertEqual(kept.expiresAt - kept.createdAt, 300, accuracy: 0.001)
        XCTAssertEqual(kept.staleUntil - kept.createdAt, 900, accuracy: 0.001)
        XCTAssertFalse(kept.answer.contains("upstream-secret"), "a store row holds an API key")
        await first.stop()

        // Restarted: memory is empty, so a hit can only come from the store.
        let second = try await Self.start(directory)
        let memory = second.runtime.answerCaches.lookup(kept.key, model: "chat-openai")
        guard case .absent = memory else { return XCTFail("a new process had the entry in memory") }
        let repeated = try await second.post("/v1/chat/completions", request("What is the capital of France?"))
        XCTAssertEqual(repeated.status, 200)
        XCTAssertEqual(repeated.headers["x-lifeline-cache"], "hit")
        XCTAssertEqual(repeated.headers["x-lifeline-deployment"], "cache")
        XCTAssertEqual(repeated.json?["choices"]?[0]?["message"]?["content"]?.stringValue, answer)
        // It is in memory now too.
        guard case .fresh = second.runtime.answerCaches.lookup(kept.key, model: "chat-openai") else {
            return XCTFail("a store hit was not put into memory")
        }

        // Purge removes the store's rows as well as memory's entries.
        let purged = try await second.admin("DELETE", "/cache?model=chat-openai")
        XCTAssertEqual(purged.status, 200)
        XCTAssertEqual(purged.json?["purged"]?.intValue, 1)
        XCTAssertEqual(purged.json?["stored"]?.intValue, 1)
        let afterPurge = try await row(second, "What is the capital of France?")
        XCTAssertNil(afterPurge, "purge left the store's row")
        let missAgain = try await second.post("/v1/chat/completions", request("What is the capital of France?"))
        XCTAssertEqual(missAgain.headers["x-lifeline-cache"], "miss")

        // The sweep removes rows past their stale window, and only those (a given time, no waiting).
        try await waitFor("the entry stored again") { try await row(second, "What is the capital of France?") != nil }
        let againRow = try await row(second, "What is the capital of France?")
        let again = try XCTUnwrap(againRow)
        let early = await second.runtime.answerCaches.sweepStored(now: again.staleUntil - 1)
        XCTAssertEqual(early, 0)
        let late = await second.runtime.answerCaches.sweepStored(now: again.staleUntil + 1)
        XCTAssertEqual(late, 1)
        let afterSweep = try await row(second, "What is the capital of France?", now: again.createdAt)
        XCTAssertNil(afterSweep, "the sweep left an expired row")
        await second.stop()
    }
}
