import Foundation
import LifelineCore
@testable import LifelineGateway
import LifelineWire
import XCTest

/// Status subscribers and postmortems over real sockets, and what a restart must not repeat:
/// no update sent twice to a subscriber, no alert notified twice.
final class SubscriberAndPostmortemTests: XCTestCase {
    var fixture: GatewayFixture?
    var receiver: WebhookReceiver?

    override func tearDown() async throws {
        await fixture?.stop()
        await receiver?.stop()
    }


    private func subscribe(_ body: JSONValue, admin: Bool = false) async throws -> GatewayFixture.Reply {
        let fixture = try XCTUnwrap(fixture)
        return try await fixture.post("/api/v2/subscribers", body,
                                      headers: admin ? ["authorization": "Bearer \(GatewayFixture.adminToken)"] : [:])
    }

    func testSubscribersAreApprovedGetEachUpdateOnceAndNothingAgainAfterARestart() async throws {
        let receiver = try await WebhookReceiver.start()
        self.receiver = receiver
        fixture = try await GatewayFixture.start(configure: GatewayFixture.fastStatus)
        var fixture = try XCTUnwrap(fixture)
        let directory = fixture.runtime.config.server.dataDirectory

        // Bad registrations name the field.
        let noEndpoint = try await subscribe(["subscriber": ["components": ["API"]]])
        XCTAssertEqual(noEndpoint.status, 400)
        XCTAssertEqual(noEndpoint.json?["error"]?["param"], "endpoint")
        let notHTTP = try await subscribe(["endpoint": "ftp://example.test/x"])
        XCTAssertEqual(notHTTP.json?["error"]?["param"], "endpoint")
        let unknownComponent = try await subscribe(["endpoint": .string(receiver.url + "/s"), "components": ["nope"]])
        XCTAssertEqual(unknownComponent.json?["error"]?["param"], "components")
        let malformed = try await fixture.post("/api/v2/subscribers", raw: Array("{".utf8))
        XCTAssertEqual(malformed.status, 400)

        // A public registration waits for approval; the endpoint is not echoed in full.
        let registered = try await subscribe(["subscriber": ["endpoint": .string(receiver.url + "/status-hook?secret=abc")]])
        XCTAssertEqual(registered.status, 201, registered.text)
        let id = try XCTUnwrap(registered.json?["id"]?.stringValue)
        let token = try XCTUnwrap(registered.json?["token"]?.stringValue)
        XCTAssertEqual(registered.json?["state"], "pending")
        XCTAssertFalse(registered.text.contains("secret=abc"))

        let before = try await fixture.admin("POST", "/incidents", ["name": "Slow answers", "body": "Before approval.",
                                                                     "components": ["chat-openai": "degraded_performance"]])
        XCTAssertEqual(before.status, 201)
        let incidentID = try XCTUnwrap(before.json?["id"]?.stringValue)
        try await Task.sleep(for: .milliseconds(300))
        XCTAssertEqual(receiver.received.count, 0, "nothing is sent to a pending subscriber")

        let listed = try await fixture.admin("GET", "/subscribers").json?["data"]?.arrayValue ?? []
        XCTAssertEqual(listed.first?["endpoint"]?.stringValue, receiver.url + "/status-hook?secret=abc", "operators see the endpoint to judge it")
        let approved = try await fixture.admin("POST", "/subscribers/\(id)/approve")
        XCTAssertEqual(approved.json?["state"], "active")

        _ = try await fixture.admin("POST", "/incidents/\(incidentID)/updates", ["body": "Found it.", "status": "identified"])
        _ = try await fixture.admin("POST", "/incidents/\(incidentID)/resolve", ["body": "Fixed."])
        _ = await receiver.wait { $0.count >= 2 }
        try await Task.sleep(for: .milliseconds(300))
        let posts = receiver.received
        XCTAssertEqual(posts.map { $0.body["incident"]?["incident_updates"]?[0]?["status"]?.stringValue }, ["identified", "resolved"],
                       "each update after approval, once, newest update first as Statuspage sends it")
        XCTAssertEqual(posts.first?.path, "/status-hook")
        XCTAssertEqual(posts.first?.body["incident"]?["id"]?.stringValue, incidentID)
        XCTAssertNotNil(posts.first?.body["page"]?["status_indicator"]?.stringValue)
        XCTAssertEqual(posts.first?.body["meta"]?["unsubscribe"]?.stringValue?.hasSuffix("/api/v2/subscribers/\(id)"), true)
        let log = try await fixture.admin("GET", "/notifications").json?["data"]?.arrayValue ?? []
        XCTAssertEqual(log.filter { $0["kind"] == "subscriber" && $0["status"] == "delivered" }.count, 2)

        // A restart on the same data sends nothing again.
        await fixture.stop()
        fixture = try await GatewayFixture.start(dataDirectory: directory, configure: GatewayFixture.fastStatus)
        self.fixture = fixture
        try await Task.sleep(for: .milliseconds(500))
        XCTAssertEqual(receiver.received.count, 2, "no update is sent twice across a restart")
        let relisted = try await fixture.admin("GET", "/subscribers").json?["data"]?.arrayValue ?? []
        XCTAssertEqual(relisted.map { $0["state"]?.stringValue }, ["active"])

        // Removal takes the subscriber's own token.
        let forged = try await fixture.send("DELETE", "/api/v2/subscribers/\(id)", headers: ["authorization": "Bearer ll-sub-wrong"])
        XCTAssertEqual(forged.status, 403)
        let removed = try await fixture.send("DELETE", "/api/v2/subscribers/\(id)", headers: ["authorization": "Bearer \(token)"])
        XCTAssertEqual(removed.status, 200)
        let afterRemoval = try await fixture.admin("GET", "/subscribers").json?["data"]?.arrayValue ?? []
        XCTAssertEqual(afterRemoval.count, 0)
    }

    func testAResolvedOutageDraftsAPostmortemThatOperatorsEditAndPublish() async throws {
        fixture = try await GatewayFixture.start(configure: GatewayFixture.fastStatus)
        let fixture = try XCTUnwrap(fixture)
        for deployment in ["oa-1", "oa-2"] {
            let added = try await fixture.admin("POST", "/faults", ["deployment": .string(deployment), "kind": "error", "status": 500,
                                                                    "rate": 1, "duration_s": 60])
            XCTAssertEqual(added.status, 201)
        }
        var incidentID = ""
        try await waitFor("an incident") {
            for _ in 0..<3 { _ = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "outage", maxTokens: 4)) }
            incidentID = try await fixture.get("/api/v2/incidents/unresolved.json").json?["incidents"]?[0]?["id"]?.stringValue ?? ""
            return !incidentID.isEmpty
        }
        let early = try await fixture.admin("GET", "/incidents/\(incidentID)/postmortem").json
        XCTAssertEqual(early?["body"], .null, "drafted only when the incident resolves")
        _ = try await fixture.admin("DELETE", "/faults")
        try await waitFor("the incident to resolve") {
            for _ in 0..<3 { _ = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "recovered", maxTokens: 4)) }
            return try await fixture.get("/api/v2/incidents/unresolved.json").json?["incidents"]?.arrayValue?.isEmpty == true
        }

        let draftReply = try await fixture.admin("GET", "/incidents/\(incidentID)/postmortem")
        let draft = try XCTUnwrap(draftReply.json)
        let body = try XCTUnwrap(draft["body"]?.stringValue)
        XCTAssertEqual(draft["published"], false)
        XCTAssertGreaterThan(draft["impact"]?["failed_requests"]?.doubleValue ?? 0, 0)
        XCTAssertEqual(draft["impact"]?["callers_affected"], 1, "every request came from the anonymous caller")
        for section in ["## Summary", "## Impact", "## Timeline (UTC)", "## Deployments involved", "First symptom", "Detected:",
                        "Recovery: the last failed request.", "— Resolved: "]
        {
            XCTAssertTrue(body.contains(section), "missing \(section) in:\n\(body)")
        }
        XCTAssertGreaterThan(draft["impact"]?["upstream_failures"]?["oa-1"]?["error_5xx"]?.doubleValue ?? 0, 0, "\(draft)")
        XCTAssertTrue(body.contains("- oa-1: "), body)
        XCTAssertTrue(body.contains("failed attempts (error 5xx "), body)

        let publicBefore = try await fixture.get("/api/v2/incidents.json").json?["incidents"]?[0]
        XCTAssertEqual(publicBefore?["postmortem_body"], .null, "a draft is not public")
        XCTAssertEqual(publicBefore?["postmortem_published_at"], .null)

        let bad = try await fixture.admin("PUT", "/incidents/\(incidentID)/postmortem", ["body": 5])
        XCTAssertEqual(bad.status, 400)
        XCTAssertEqual(bad.json?["error"]?["param"], "body")
        let unknown = try await fixture.admin("PUT", "/incidents/\(incidentID)/postmortem", ["text": "x"])
        XCTAssertEqual(unknown.json?["error"]?["param"], "text")
        let edited = body + "\n\nCause: both upstreams of chat-openai failed at once <b>during a drill</b>."
        let saved = try await fixture.admin("PUT", "/incidents/\(incidentID)/postmortem", ["body": .string(edited)])
        XCTAssertEqual(saved.json?["body"]?.stringValue, edited)
        let published = try await fixture.admin("POST", "/incidents/\(incidentID)/postmortem/publish")
        XCTAssertEqual(published.status, 200)
        XCTAssertNotNil(published.json?["published_at"]?.stringValue)

        let incident = try await fixture.get("/api/v2/incidents.json").json?["incidents"]?[0]
        XCTAssertEqual(incident?["postmortem_body"]?.stringValue, edited)
        XCTAssertNotNil(incident?["postmortem_published_at"]?.stringValue)
        let page = try await fixture.get("/status").text
        XCTAssertTrue(page.contains("Postmortem"))
        XCTAssertTrue(page.contains("&lt;b&gt;during a drill&lt;/b&gt;"), "postmortem text is escaped")
        XCTAssertFalse(page.contains("<b>during"))
        let atom = try await fixture.get("/history.atom").text
        XCTAssertTrue(atom.contains("Postmortem"))
    }

    func testAFiringAlertSurvivesARestartWithoutASecondNotificationAndResolvesOnce() async throws {
        let receiver = try await WebhookReceiver.start()
        self.receiver = receiver
        func configure(_ config: inout LifelineConfig) {
            config.alerting.windowScale = AlertingTests.scale
            config.alerting.evaluationIntervalSeconds = 0.1
            config.slos = [SLOConfig(model: "chat-openai", availability: AvailabilitySLOConfig())]
            config.routing.backoff = Backoff(base: 0, maximum: 0)
            config.notifications.webhooks = [WebhookConfig(name: "ops-json", format: .json, url: receiver.url + "/json")]
        }
        let page = "chat-openai:availability:burn-1h"
        func pagePosts(_ state: String) -> Int {
            receiver.received.filter { $0.body["alert"]?.stringValue == page && $0.body["state"]?.stringValue == state }.count
        }
        func firing(_ fixture: GatewayFixture) async throws -> [JSONValue] {
            try await fixture.admin("GET", "/alerts").json?["firing"]?.arrayValue?.filter { $0["alert"]?.stringValue == page } ?? []
        }
        func breakBoth(_ fixture: GatewayFixture) async throws {
            for deployment in ["oa-1", "oa-2"] {
                _ = try await fixture.admin("POST", "/faults", ["deployment": .string(deployment), "kind": "error", "status": 500, "duration_s": 60])
            }
        }

        var fixture = try await GatewayFixture.start(configure: configure)
        self.fixture = fixture
        let directory = fixture.runtime.config.server.dataDirectory
        try await breakBoth(fixture)
        try await waitFor("the page to fire and be sent") {
            _ = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "outage"))
            return pagePosts("firing") == 1
        }
        XCTAssertEqual(pagePosts("firing"), 1, "\(receiver.received.map { ($0.path, $0.body["alert"], $0.body["state"]) })")
        let episode = try await firing(fixture).first?["id"]?.stringValue

        await fixture.stop()
        fixture = try await GatewayFixture.start(dataDirectory: directory, configure: configure)
        self.fixture = fixture
        try await breakBoth(fixture)
        for _ in 0..<10 {
            _ = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "still out"))
            try await Task.sleep(for: .milliseconds(60))
        }
        let restored = try await firing(fixture)
        XCTAssertEqual(restored.map { $0["id"]?.stringValue }, [episode], "the same episode goes on firing after the restart")
        XCTAssertEqual(pagePosts("firing"), 1, "no second firing notification")

        _ = try await fixture.admin("DELETE", "/faults")
        try await waitFor("the page to resolve and be sent", timeout: 20) {
            _ = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "recovered"))
            try await Task.sleep(for: .milliseconds(50))
            return pagePosts("resolved") >= 1
        }
        try await Task.sleep(for: .milliseconds(300))
        let log = try await fixture.admin("GET", "/notifications").text
        let alertsNow = try await fixture.admin("GET", "/alerts").text
        XCTAssertEqual(pagePosts("firing"), 1)
        XCTAssertEqual(pagePosts("resolved"), 1, "\(log)\n\(alertsNow)")
        let resolvedPost = receiver.received.first { $0.body["alert"]?.stringValue == page && $0.body["state"]?.stringValue == "resolved" }
        XCTAssertEqual(resolvedPost?.body["id"]?.stringValue, episode, "it resolves as the episode that fired before the restart")
    }
}
