import LifelineCore
import LifelineGateway
import XCTest

final class ProcessConfigTests: XCTestCase {
    func testAProcessBlockLoadsWithDefaultsAndSubstitution() throws {
        let config = try ConfigLoader.parse("""
        models:
          - name: chat-default
            deployments:
              - name: local
                protocol: openai
                model: smollm2
                process:
                  command: .venv-local-model/bin/python
                  arguments: [-m, llama_cpp.server, --model, "${MODEL_FILE}", --port, "{port}", --n_ctx, 2048]
                  environment: {OMP_NUM_THREADS: "2"}
        """, environment: ["MODEL_FILE": "/models/smol.gguf"])
        let deployment = try XCTUnwrap(config.models.first?.deployments.first)
        let process = try XCTUnwrap(deployment.process)
        XCTAssertEqual(process.command, ".venv-local-model/bin/python")
        XCTAssertEqual(process.arguments, ["-m", "llama_cpp.server", "--model", "/models/smol.gguf", "--port", "{port}", "--n_ctx", "2048"])
        XCTAssertEqual(process.environment, ["OMP_NUM_THREADS": "2"])
        XCTAssertTrue(process.picksPort, "no base_url: Lifeline picks the port")
        XCTAssertEqual(process.healthPath, "/v1/models")
        XCTAssertEqual(process.healthIntervalMilliseconds, 500)
        XCTAssertEqual(process.stopGraceSeconds, 10)
        XCTAssertNil(process.workingDirectory)
        XCTAssertNil(process.logFile)
        XCTAssertEqual(process.restart, ProcessRestartPolicy())
        XCTAssertEqual(process.restart.startTimeout, 120)
    }

    func testEveryProcessFieldIsRead() throws {
        let config = try ConfigLoader.parse("""
        models:
          - name: m
            deployments:
              - name: local
                protocol: anthropic
                base_url: http://127.0.0.1:9100
                model: x
                process:
                  command: model-server
                  working_directory: /srv/models
                  health_path: /health
                  health_interval_ms: 250
                  health_timeout_ms: 900
                  start_timeout_s: 30
                  stop_grace_s: 2.5
                  stable_after_s: 15
                  restart_backoff: {base_ms: 200, max_ms: 4000}
                  log_file: /var/log/model.log
        """, environment: [:])
        let process = try XCTUnwrap(config.models.first?.deployments.first?.process)
        XCTAssertFalse(process.picksPort)
        XCTAssertEqual(process.workingDirectory, "/srv/models")
        XCTAssertEqual(process.healthPath, "/health")
        XCTAssertEqual(process.healthIntervalMilliseconds, 250)
        XCTAssertEqual(process.healthTimeoutMilliseconds, 900)
        XCTAssertEqual(process.restart.startTimeout, 30)
        XCTAssertEqual(process.stopGraceSeconds, 2.5)
        XCTAssertEqual(process.restart.stableAfter, 15)
        XCTAssertEqual(process.restart.backoffBase, 0.2)
        XCTAssertEqual(process.restart.backoffMaximum, 4)
        XCTAssertEqual(process.logFile, "/var/log/model.log")
    }

    func testStreamUsageIsReadAndABadValueNamedWithItsPath() throws {
        try checkDeploymentChoice("stream_usage", set: "ask", bad: "guess", message: "must be reported or ask, got 'guess'",
                                  default: "reported", read: \.streamUsage.rawValue)
    }

    func testContinuationIsReadAndABadValueNamedWithItsPath() throws {
        try checkDeploymentChoice("continuation", set: "replay", bad: "rewind", message: "must be prefill or replay, got 'rewind'",
                                  default: "prefill", read: \.continuation.rawValue)
    }

    /// A deployment key with a few named values: left out it is `default`, set it is read, and a bad
    /// value is refused with its path.
    private func checkDeploymentChoice(_ key: String, set value: String, bad: String, message: String, default fallback: String,
                                       read: KeyPath<DeploymentConfig, String>) throws
    {
        let yaml = """
        models:
          - name: m
            deployments:
              - {name: a, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x}
              - {name: b, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x, \(key): \(value)}
              - {name: c, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x, \(key): \(bad)}
        """
        XCTAssertEqual(issues(yaml), ["models[0].deployments[2].\(key): \(message)"])
        let config = try ConfigLoader.parse(yaml.replacingOccurrences(of: bad, with: fallback), environment: [:])
        XCTAssertEqual(config.models[0].deployments.map { $0[keyPath: read] }, [fallback, value, fallback])
    }

    func testEveryBadProcessFieldIsNamedWithItsPath() {
        let found = issues("""
        models:
          - name: m
            deployments:
              - name: local
                protocol: openai
                model: x
                simulator: {}
                process:
                  arguments: [ok, [nested], "${NOPE}"]
                  environment: {A: [1]}
                  health_path: health
                  health_interval_ms: 0
                  start_timeout_s: -1
                  restart_backoff: {base_ms: 5000, max_ms: 100}
                  colour: blue
              - name: other
                protocol: openai
                model: x
                process: {command: server, arguments: [--port, "9000"]}
        """)
        XCTAssertEqual(found, [
            "models[0].deployments[0].process.colour: unknown key (known: arguments, command, environment, health_interval_ms, "
                + "health_path, health_timeout_ms, log_file, restart_backoff, stable_after_s, start_timeout_s, stop_grace_s, working_directory)",
            "models[0].deployments[0].process.command: required (the executable to run)",
            "models[0].deployments[0].process.arguments[1]: expected a string, got array",
            "models[0].deployments[0].process.arguments[2]: environment variable NOPE is not set",
            "models[0].deployments[0].process.environment.A: expected a string, got array",
            "models[0].deployments[0].process.health_path: must begin with /, got 'health'",
            "models[0].deployments[0].process.health_interval_ms: must be from 10 to 60000, got 0",
            "models[0].deployments[0].process.start_timeout_s: must be from 0.1 to 3600, got -1",
            "models[0].deployments[0].process.restart_backoff: base_ms must not exceed max_ms",
            "models[0].deployments[0].process: a deployment has a simulator or a process, not both",
            "models[0].deployments[1].base_url: required unless the process is told its port: put {port} in process.arguments or process.environment",
        ])
    }
}
