import Foundation
@testable import LifelineGateway
import LifelineWire
import Logging
import XCTest

/// The status page over real sockets: Statuspage JSON, feeds and the HTML page with its CSP;
/// automatic incidents from drills users see (with approval mode); maintenance draining its
/// deployment and holding back alerts.
final class StatusEndToEndTests: XCTestCase {
    var fixture: GatewayFixture!

    override func tearDown() async throws {
        await fixture?.stop()
    }

    private func start(approval: Bool = false) async throws {
        fixture = try await GatewayFixture.start { config in
            GatewayFixture.fastStatus(&config)
            config.status.policy.requireApproval = approval
        }
    }


    private func sendRequests(_ count: Int, model: String = "chat-openai") async throws {
        for _ in 0..<count { _ = try await fixture.post("/v1/chat/completions", chatBody(model, "status", maxTokens: 4)) }
    }

    func testStatusDocumentsFeedsAndPageAreServedInTheirShapes() async throws {
        try await start()
        let summaryReply = try await fixture.get("/api/v2/summary.json")
        let summary = try XCTUnwrap(summaryReply.json)
        XCTAssertEqual(summary["status"], ["indicator": "none", "description": "All Systems Operational"])
        XCTAssertEqual(summary["page"]?["time_zone"], "Etc/UTC")
        let components = try XCTUnwrap(summary["components"]?.arrayValue)
        XCTAssertEqual(components.map { $0["name"]?.stringValue }, ["API", "Chat", "chat-openai", "chat-anthropic"])
        XCTAssertEqual(components[0]["id"]?.stringValue?.count, 12)
        XCTAssertEqual(components[2]["only_show_if_degraded"], false)
        for path in ["status.json", "components.json", "incidents.json", "incidents/unresolved.json", "scheduled-maintenances.json",
                     "scheduled-maintenances/upcoming.json", "scheduled-maintenances/active.json"]
        {
            let reply = try await fixture.get("/api/v2/" + path)
            XCTAssertEqual(reply.status, 200, path)
            XCTAssertNotNil(reply.json?["page"], path)
        }
        let page = try await fixture.get("/status")
        XCTAssertEqual(page.status, 200)
        XCTAssertEqual(page.headers["content-type"], "text/html; charset=utf-8")
        XCTAssertEqual(page.headers["content-security-policy"], WebUIRoutes.contentSecurityPolicy)
        XCTAssertLessThan(page.body.count, 50_000)
        XCTAssertFalse(page.text.contains("<script"))
        XCTAssertFalse(page.text.contains("style="))
        XCTAssertTrue(page.text.contains("All Systems Operational"))
        let stylesheet = try await fixture.get("/assets/status.css").status
        XCTAssertEqual(stylesheet, 200)
        let atom = try await fixture.get("/history.atom")
        XCTAssertEqual(atom.headers["content-type"], "application/atom+xml; charset=utf-8")
        XCTAssertTrue(atom.text.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\""))
        let rss = try await fixture.get("/history.rss")
        XCTAssertTrue(rss.text.contains("<rss version=\"2.0\""))
    }

    func testAnOutageUsersSeeOpensADraftThatIsPublishedAndResolves() async throws {
        try await start(approval: true)
        for deployment in ["oa-1", "oa-2"] {
            let added = try await fixture.admin("POST", "/faults", ["deployment": .string(deployment), "kind": "error", "status": 500,
                                                                    "rate": 1, "duration_s": 60])
            XCTAssertEqual(added.status, 201)
        }
        var draftID = ""
        try await waitFor("a draft incident") {
            try await sendRequests(3)
            let list = try await fixture.admin("GET", "/incidents").json?["data"]?.arrayValue ?? []
            draftID = list.first?["id"]?.stringValue ?? ""
            return !draftID.isEmpty
        }
        let unpublished = try await fixture.get("/api/v2/incidents.json").json?["incidents"]?.arrayValue
        XCTAssertEqual(unpublished?.count, 0, "a draft is not public")
        let publishing = try await fixture.admin("POST", "/incidents/\(draftID)/publish").status
        XCTAssertEqual(publishing, 200)
        let published = try await fixture.get("/api/v2/incidents/unresolved.json").json?["incidents"]?.arrayValue ?? []
        XCTAssertEqual(published.map { $0["id"]?.stringValue }, [draftID])
        XCTAssertEqual(published.first?["impact"], "critical")
        let page = try await fixture.get("/status").text
        XCTAssertTrue(page.contains("Active incidents"))

        let clearing = try await fixture.admin("DELETE", "/faults").status
        XCTAssertEqual(clearing, 200)
        try await waitFor("the incident to resolve") {
            try await sendRequests(3)
            return try await fixture.get("/api/v2/incidents/unresolved.json").json?["incidents"]?.arrayValue?.isEmpty == true
        }
        let all = try await fixture.get("/api/v2/incidents.json").json?["incidents"]?.arrayValue ?? []
        XCTAssertEqual(all.map { $0["status"]?.stringValue }, ["resolved"], "one event, one incident")
    }

    func testAnIncidentLogsEachStoredUpdateOnceNotEveryEvaluation() async throws {
        let captured = StructuredLogTests.Captured()
        var logger = Logger(label: "lifeline") { JSONLogHandler(label: $0, output: captured.output) }
        logger.logLevel = .info
        fixture = try await GatewayFixture.start(gatewayLogger: logger) { config in
            GatewayFixture.fastStatus(&config)
            config.status.policy.updateIntervalSeconds = 3600
        }
        for deployment in ["oa-1", "oa-2"] {
            _ = try await fixture.admin("POST", "/faults", ["deployment": .string(deployment), "kind": "error", "status": 500, "rate": 1, "duration_s": 60])
        }
        var incidentID = ""
        try await waitFor("an incident") {
            try await sendRequests(3)
            incidentID = try await fixture.get("/api/v2/incidents/unresolved.json").json?["incidents"]?[0]?["id"]?.stringValue ?? ""
            return !incidentID.isEmpty
        }
        // Failures go on while it is open, so its evidence changes at every evaluation (every 50 ms).
        let evaluations = 20
        for _ in 0..<evaluations {
            try await sendRequests(1)
            try await Task.sleep(for: .milliseconds(50))
        }
        let incident = try await fixture.get("/api/v2/incidents/unresolved.json").json?["incidents"]?[0]
        XCTAssertEqual(incident?["id"]?.stringValue, incidentID)
        let updates = try XCTUnwrap(incident?["incident_updates"]?.arrayValue)
        let lines = captured.all.compactMap { try? JSONCoding.decode(Array($0.utf8)) }
            .filter { $0["message"]?.stringValue?.hasPrefix("incident ") == true && $0["id"]?.stringValue == incidentID }
        XCTAssertEqual(lines.count, updates.count, lines.map { JSONCoding.encodeString($0) }.joined(separator: "\n"))
        XCTAssertEqual(lines.first?["message"], "incident investigating")
    }

    func testIncidentRequestsAreCheckedAndNeedTheAdminToken() async throws {
        try await start()
        let unauthorized = try await fixture.admin("POST", "/incidents", ["name": "x"], authorized: false).status
        XCTAssertEqual(unauthorized, 401)
        let missing = try await fixture.admin("POST", "/incidents", ["body": "no name"])
        XCTAssertEqual(missing.status, 400)
        XCTAssertEqual(missing.json?["error"]?["param"], "name")
        let badComponent = try await fixture.admin("POST", "/incidents", ["name": "x", "components": ["nope": "major_outage"]])
        XCTAssertEqual(badComponent.json?["error"]?["param"], "components")
        let unknown = try await fixture.admin("POST", "/incidents/nope/resolve").status
        XCTAssertEqual(unknown, 404)
    }

    func testMaintenanceDrainsItsDeploymentHoldsBackAlertsAndRestores() async throws {
        try await start()
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let reply = try await fixture.admin("POST", "/maintenances", [
            "deployments": ["oa-1"], "message": "Upgrading oa-1.",
            "scheduled_for": .string(formatter.string(from: Date())),
            "scheduled_until": .string(formatter.string(from: Date().addingTimeInterval(30))),
        ])
        XCTAssertEqual(reply.status, 201, reply.text)
        let id = try XCTUnwrap(reply.json?["id"]?.stringValue)
        let runtime = fixture.runtime!
        try await waitFor("oa-1 drained") { runtime.pool.deployment(named: "oa-1")?.isDrained == true }
        XCTAssertTrue(runtime.notifier.suppression is MaintenanceSuppression)
        XCTAssertTrue(runtime.status.inMaintenance(deployments: ["oa-1", "oa-2"]))
        XCTAssertFalse(runtime.status.inMaintenance(deployments: ["an-1", "an-2"]))
        let components = try await fixture.get("/api/v2/components.json").json?["components"]?.arrayValue ?? []
        XCTAssertEqual(components.first { $0["name"] == "chat-openai" }?["status"], "under_maintenance")
        let answer = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "during maintenance", maxTokens: 4))
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.headers["x-lifeline-deployment"], "oa-2")

        let completed = try await fixture.admin("POST", "/maintenances/\(id)/complete")
        XCTAssertEqual(completed.json?["status"], "completed")
        XCTAssertEqual(runtime.pool.deployment(named: "oa-1")?.isDrained, false)
        XCTAssertFalse(runtime.status.inMaintenance(deployments: ["oa-1"]))
    }
}
