import Foundation
import LifelineCore
import LifelineGateway
import LifelineWire
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Managed upstream processes, with real child processes (Python's own HTTP server stands in
/// for a model server): started, health-checked, avoided while not running, restarted after
/// they die, and stopped with the gateway.
final class ManagedProcessEndToEndTests: XCTestCase {
    var fixture: GatewayFixture!

    override func tearDown() async throws {
        await fixture?.stop()
    }

    /// `chat-openai` gets a third deployment, `managed`, run by the gateway from `process`.
    func start(priority: Int, _ process: ProcessConfig) async throws {
        fixture = try await GatewayFixture.start { config in
            var managed = DeploymentConfig(name: "managed", protocol: .openai, model: "sim-model")
            managed.priority = priority
            managed.process = process
            config.models[0].deployments.append(managed)
        }
    }

    static var python: String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/python3"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    func process(_ arguments: [String]) throws -> ProcessConfig {
        guard let python = Self.python else { throw XCTSkip("python3 is not installed") }
        var process = ProcessConfig(command: python)
        process.arguments = arguments
        process.picksPort = true
        process.healthPath = "/"
        process.healthIntervalMilliseconds = 50
        process.stopGraceSeconds = 2
        process.restart.backoffBase = 0.1
        process.restart.backoffMaximum = 0.2
        return process
    }

    func described() async throws -> JSONValue {
        let list = try await fixture.admin("GET", "/deployments")
        return try XCTUnwrap(list.json?["data"]?.arrayValue?.first { $0["name"]?.stringValue == "managed" })
    }

    /// Polls the admin API (at most `seconds`) until `condition` holds for the deployment.
    func waitFor(_ what: String, seconds: Double = 20, _ condition: (JSONValue) -> Bool) async throws -> JSONValue {
        let deadline = Date().addingTimeInterval(seconds)
        var last = try await described()
        while !condition(last) {
            guard Date() < deadline else { XCTFail("\(what) within \(seconds) s; last: \(JSONCoding.encodeString(last))"); return last }
            try await Task.sleep(for: .milliseconds(50))
            last = try await described()
        }
        return last
    }

    static func isAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno != ESRCH
    }

    func testAManagedProcessIsStartedRestartedAfterItDiesAndStoppedWithTheGateway() async throws {
        try await start(priority: 5, process(["-m", "http.server", "{port}", "--bind", "127.0.0.1"]))
        let running = try await waitFor("running") { $0["process"]?["state"] == "running" }
        XCTAssertEqual(running["state"], "healthy")
        XCTAssertEqual(running["process"]?["restarts"], 0)
        let pid = try XCTUnwrap(running["process"]?["pid"]?.intValue.map(Int32.init))
        let port = try XCTUnwrap(running["process"]?["port"]?.intValue)
        XCTAssertEqual(running["base_url"]?.stringValue, "http://127.0.0.1:\(port)/v1")

        XCTAssertEqual(kill(pid, SIGKILL), 0)
        let back = try await waitFor("running again after SIGKILL") {
            $0["process"]?["state"] == "running" && $0["process"]?["restarts"] == 1
        }
        let newPID = try XCTUnwrap(back["process"]?["pid"]?.intValue.map(Int32.init))
        XCTAssertNotEqual(newPID, pid)
        XCTAssertEqual(back["process"]?["last_exit"], "killed by signal 9")
        XCTAssertEqual(back["process"]?["port"]?.intValue, port, "a restarted process keeps its port")

        let metrics = String(decoding: try await fixture.get("/metrics").body, as: UTF8.self)
        XCTAssertTrue(metrics.contains(#"lifeline_process_state{deployment="managed",state="running"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"lifeline_process_state{deployment="managed",state="restarting"} 0"#), metrics)
        XCTAssertTrue(metrics.contains(#"lifeline_process_restarts_total{deployment="managed"} 1"#), metrics)

        // Stopping the gateway stops the process.
        await fixture.stop()
        fixture = nil
        XCTAssertFalse(Self.isAlive(newPID), "the managed process outlived the gateway")
    }

    func testAReloadKeepsTheRunningProcessAndRefusesToChangeOrRemoveIt() async throws {
        try await start(priority: 5, process(["-m", "http.server", "{port}", "--bind", "127.0.0.1"]))
        let running = try await waitFor("running") { $0["process"]?["state"] == "running" }
        // As a re-read file gives it: no base URL for the managed deployment, another one changed.
        var next = fixture.runtime.config
        next.models[0].deployments[2].baseURL = ""
        next.models[0].deployments[0].priority = 7
        try fixture.runtime.reload(next)
        let after = try await described()
        XCTAssertEqual(after["process"]?["pid"], running["process"]?["pid"])
        XCTAssertEqual(after["base_url"], running["base_url"])
        XCTAssertEqual(after["process"]?["state"], "running")
        let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "after reload"))
        XCTAssertEqual(reply.headers["x-lifeline-deployment"], "oa-2", "the reload took effect")

        var changed = next
        changed.models[0].deployments[2].process?.stopGraceSeconds = 3
        XCTAssertThrowsError(try fixture.runtime.reload(changed)) { error in
            XCTAssertEqual((error as? ConfigError)?.issues.map(\.path), ["models[0].deployments[2].process"])
        }
        var removed = next
        removed.models[0].deployments.removeLast()
        XCTAssertThrowsError(try fixture.runtime.reload(removed)) { error in
            XCTAssertEqual((error as? ConfigError)?.issues.map(\.description),
                           ["models: deployment 'managed' runs a managed process; removing it (or its process block) needs a restart"])
        }
    }

    func testAProcessThatIgnoresSIGTERMIsKilledAfterTheGracePeriod() async throws {
        var stubborn = try process(["-c", """
            import http.server, signal, sys
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
            """, "{port}"])
        stubborn.stopGraceSeconds = 0.5
        try await start(priority: 5, stubborn)
        let running = try await waitFor("running") { $0["process"]?["state"] == "running" }
        let pid = try XCTUnwrap(running["process"]?["pid"]?.intValue.map(Int32.init))
        let clock = ContinuousClock()
        let began = clock.now
        await fixture.stop()
        fixture = nil
        XCTAssertFalse(Self.isAlive(pid), "SIGKILL did not follow the ignored SIGTERM")
        XCTAssertGreaterThanOrEqual(clock.now - began, .milliseconds(500), "killed before the grace period was over")
    }

    func testTrafficAvoidsAProcessUntilItIsHealthyAndAStalledStartIsKilledAndRetried() async throws {
        // It never listens: it stays "starting" until the start timeout kills it.
        var stalled = try process(["-c", "import time; time.sleep(60)", "{port}"])
        stalled.restart.startTimeout = 0.5
        try await start(priority: 0, stalled)
        let starting = try await described()
        XCTAssertEqual(starting["state"], "starting")
        for stream in [false, true] {
            let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hello", stream: stream))
            XCTAssertEqual(reply.status, 200)
            XCTAssertEqual(reply.headers["x-lifeline-deployment"], "oa-1", "a starting process must take no traffic")
            XCTAssertEqual(reply.headers["x-lifeline-attempts"], "1")
        }
        let retried = try await waitFor("killed at the start timeout and launched again") {
            ($0["process"]?["restarts"]?.intValue ?? 0) >= 1
        }
        XCTAssertEqual(retried["process"]?["last_exit"], "killed by signal 9")
        XCTAssertNotEqual(retried["process"]?["state"], "running")
    }

    func testACommandThatCannotStartIsRetriedAndReported() async throws {
        var missing = ProcessConfig(command: "/nonexistent/model-server")
        missing.arguments = ["{port}"]
        missing.picksPort = true
        missing.restart.backoffBase = 0.05
        missing.restart.backoffMaximum = 0.1
        try await start(priority: 0, missing)
        let failing = try await waitFor("restarting after failed launches") { ($0["process"]?["restarts"]?.intValue ?? 0) >= 2 }
        XCTAssertEqual(failing["state"], "restarting")
        XCTAssertEqual(failing["process"]?["pid"], .null)
        XCTAssertEqual(failing["process"]?["last_exit"], "could not start: /nonexistent/model-server is not an executable file")
        let reply = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hello"))
        XCTAssertEqual(reply.headers["x-lifeline-deployment"], "oa-1")
    }
}
