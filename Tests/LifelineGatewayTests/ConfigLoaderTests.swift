import LifelineCore
import LifelineGateway
import XCTest

/// The loader's errors for `yaml`, each with its path; empty when it loads.
func issues(_ yaml: String, environment: [String: String] = [:]) -> [String] {
    do {
        _ = try ConfigLoader.parse(yaml, environment: environment)
        return []
    } catch {
        return error.issues.map(\.description)
    }
}

final class ConfigLoaderTests: XCTestCase {
    func testTheDesignExampleLoadsWithEnvironmentSubstitution() throws {
        let config = try ConfigLoader.parse("""
        server: {host: 127.0.0.1, port: 8080}
        models:
          - name: chat-default
            deployments:
              - name: primary
                protocol: openai
                base_url: http://127.0.0.1:9001/v1
                api_key: ${PRIMARY_KEY}
                model: upstream-model-id
                priority: 1
                weight: 1
        """, environment: ["PRIMARY_KEY": "s3cret"])
        XCTAssertEqual(config.models.first?.name, "chat-default")
        let deployment = try XCTUnwrap(config.models.first?.deployments.first)
        XCTAssertEqual(deployment.apiKey, "s3cret")
        XCTAssertEqual(deployment.baseURL, "http://127.0.0.1:9001/v1")
        XCTAssertEqual(deployment.protocol, .openai)
        XCTAssertEqual(config.server.maxBodyBytes, 4 * 1024 * 1024)
    }

    func testEveryErrorIsReportedWithItsPath() {
        let found = issues("""
        server: {port: 70000, colour: blue}
        models:
          - name: m
            deployments:
              - {name: a, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x}
              - {name: b, protocol: grpc, base_url: "not a url", model: x, api_key: "${MISSING}"}
          - name: m
            deployments: []
        """)
        XCTAssertEqual(found, [
            "server.colour: unknown key (known: allowed_hosts, body_rate_grace_s, data_dir, drain_timeout_s, host, idle_timeout_s, max_body_bytes, "
                + "max_connections, max_connections_per_client, min_body_bytes_per_second, port, request_read_timeout_s)",
            "server.port: must be from 0 to 65535, got 70000",
            "models[0].deployments[1].protocol: must be one of openai, anthropic, gemini, azure_openai, bedrock, got 'grpc'",
            "models[0].deployments[1].api_key: environment variable MISSING is not set",
            "models[0].deployments[1].base_url: not a URL (expected http:// or https:// with a host), got 'not a url'",
            "models[1].name: duplicate model name 'm'",
            "models[1].deployments: at least one deployment is required",
        ])
    }

    func testTheCacheBlockIsOffUnlessPresentWithDefaultsAndItsErrorsNameTheirPaths() throws {
        let deployment = #"{name: a, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x}"#
        let config = try ConfigLoader.parse("""
        models:
          - name: plain
            deployments: [\(deployment)]
          - name: cached
            cache: {}
            deployments: [{name: b, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x}]
          - name: tuned
            cache: {ttl_s: 60, max_entries: 10, max_bytes: 65536, serve_stale_on_error_s: 0, cache_sampled: true, shared: true, store: true}
            deployments: [{name: c, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x}]
        """, environment: [:])
        XCTAssertNil(config.models[0].cache)
        XCTAssertEqual(config.models[1].cache, AnswerCachePolicy())
        let tuned = try XCTUnwrap(config.models[2].cache)
        XCTAssertEqual([tuned.ttlSeconds, tuned.serveStaleOnErrorSeconds], [60, 0])
        XCTAssertEqual([tuned.maxEntries, tuned.maxBytes], [10, 65536])
        XCTAssertTrue(tuned.cacheSampled && tuned.shared && tuned.store)
        XCTAssertFalse(AnswerCachePolicy().store, "store is off by default")
        XCTAssertEqual(issues("""
        models:
          - name: m
            cache: {ttl_s: 0, max_entries: 1.5, max_bytes: 10, serve_stale_on_error_s: -1, shared: "yes", store: 1, size: 3}
            deployments: [\(deployment)]
        """), [
            "models[0].cache.size: unknown key (known: cache_sampled, max_bytes, max_entries, serve_stale_on_error_s, shared, store, ttl_s)",
            "models[0].cache.ttl_s: must be from 1 to 31536000, got 0",
            "models[0].cache.max_entries: must be a whole number",
            "models[0].cache.max_bytes: must be from 1024 to 17179869184, got 10",
            "models[0].cache.serve_stale_on_error_s: must be from 0 to 31536000, got -1",
            "models[0].cache.shared: expected true or false, got string",
            "models[0].cache.store: expected true or false, got number",
        ])
    }

    func testMissingModelsAndBrokenYAMLAreExplained() {
        XCTAssertEqual(issues("server: {port: 1}"), ["models: at least one model is required"])
        XCTAssertEqual(issues("models: [").first?.hasPrefix("not valid YAML"), true)
    }

    func testZeroConfigServesOnePublicModelFromTwoSimulatedUpstreams() {
        let config = LifelineConfig.zeroConfig
        XCTAssertEqual(config.server.host, "127.0.0.1")
        XCTAssertEqual(config.server.port, 8080)
        XCTAssertEqual(config.models.map(\.name), ["chat-default"])
        XCTAssertEqual(config.models[0].deployments.map(\.name), ["sim-a", "sim-b"])
        XCTAssertTrue(config.models[0].deployments.allSatisfy { $0.simulator != nil })
    }

    static let oneModel = """
    models:
      - name: chat
        deployments:
          - {name: a, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x}
      - name: code
        deployments:
          - {name: b, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x}

    """

    func testEveryModelGetsTheDefaultSLOsWithoutAnSLOBlock() throws {
        let config = try ConfigLoader.parse(Self.oneModel, environment: [:])
        XCTAssertNil(config.slos)
        XCTAssertEqual(config.objectives, [
            ServiceLevelObjective(model: "chat", kind: .availability, target: 0.999, periodDays: 30),
            ServiceLevelObjective(model: "chat", kind: .latency(thresholdSeconds: 2), target: 0.99, periodDays: 30),
            ServiceLevelObjective(model: "code", kind: .availability, target: 0.999, periodDays: 30),
            ServiceLevelObjective(model: "code", kind: .latency(thresholdSeconds: 2), target: 0.99, periodDays: 30),
        ])
        XCTAssertEqual(config.alerting.windowScale, 1)
        XCTAssertEqual(config.notifications.webhooks, [])
    }

    func testConfiguredSLOsAndAlertingAreRead() throws {
        let config = try ConfigLoader.parse(Self.oneModel + """
        slos:
          - model: chat
            availability: {target: 0.995, period_days: 7}
            latency: {target: 0.9, threshold_ms: 500}
        alerting: {window_scale: 0.001, evaluation_interval_s: 0.5, external_url: "https://lifeline.example/"}
        """, environment: [:])
        XCTAssertEqual(config.objectives, [
            ServiceLevelObjective(model: "chat", kind: .availability, target: 0.995, periodDays: 7),
            ServiceLevelObjective(model: "chat", kind: .latency(thresholdSeconds: 0.5), target: 0.9, periodDays: 30),
        ])
        XCTAssertEqual(config.alerting.windowScale, 0.001)
        XCTAssertEqual(config.alerting.evaluationIntervalSeconds, 0.5)
        XCTAssertEqual(config.alerting.externalURL, "https://lifeline.example")
        // An empty list turns SLO tracking off.
        XCTAssertEqual(try ConfigLoader.parse(Self.oneModel + "slos: []", environment: [:]).objectives, [])
    }

    func testSLOAndAlertingErrorsNameTheirPaths() {
        XCTAssertEqual(issues(Self.oneModel + """
        slos:
          - model: chat
            availability: {target: 1.0, period_days: 0}
          - model: nope
            latency: {threshold_ms: -5, speed: fast}
          - model: chat
          - {}
        alerting: {window_scale: 2, external_url: "ftp://x"}
        """), [
            "alerting.window_scale: must be from 0.0001 to 1, got 2",
            "alerting.external_url: not a URL (expected http:// or https:// with a host), got 'ftp://x'",
            "slos[0].availability.target: must be from 0.5 to 0.99999, got 1",
            "slos[0].availability.period_days: must be from 1 to 365, got 0",
            "slos[1].model: no model is named 'nope' (known: chat, code)",
            "slos[1].latency.speed: unknown key (known: period_days, target, threshold_ms)",
            "slos[1].latency.threshold_ms: must be from 1 to 3600000, got -5",
            "slos[2].model: duplicate SLO entry for model 'chat'",
            "slos[2]: needs availability, latency or both",
            "slos[3].model: required (a public model name)",
            "slos[3]: needs availability, latency or both",
        ])
    }

    func testTheStatusBlockIsReadAndItsErrorsNameTheirPaths() throws {
        let config = try ConfigLoader.parse(Self.oneModel + """
        status: {page_name: Acme, page_url: "https://status.acme.example/", window_s: 30, open_after_s: 1, resolve_after_s: 2,
                 latency_threshold_ms: 1500, require_approval: true}
        """, environment: [:])
        XCTAssertEqual(config.status.pageName, "Acme")
        XCTAssertEqual(config.status.pageURL, "https://status.acme.example")
        XCTAssertEqual(config.status.thresholds.windowSeconds, 30)
        XCTAssertEqual(config.status.thresholds.latencyThresholdSeconds, 1.5)
        XCTAssertEqual(config.status.policy.openAfterSeconds, 1)
        XCTAssertEqual(config.status.policy.resolveAfterSeconds, 2)
        XCTAssertTrue(config.status.policy.requireApproval)
        XCTAssertEqual(issues(Self.oneModel + """
        status: {open_after_s: -1, require_approval: maybe, degraded_error_share: 0.5, partial_outage_error_share: 0.2, colour: red}
        """), [
            "status.colour: unknown key (known: degraded_error_share, evaluation_interval_s, latency_quantile, latency_threshold_ms, "
                + "major_outage_error_share, minimum_requests, monitor_after_s, open_after_major_outage_s, open_after_partial_outage_s, "
                + "open_after_s, page_name, page_url, partial_outage_error_share, require_approval, resolve_after_s, time_scale, "
                + "update_interval_s, window_s)",
            "status.open_after_s: must be from 0 to 86400, got -1",
            "status.require_approval: expected true or false",
            "status: error shares must rise: degraded_error_share ≤ partial_outage_error_share ≤ major_outage_error_share",
        ])
    }

    func testTheStatusTimeScaleShrinksEveryStatusDurationAndNothingElse() throws {
        let defaults = try ConfigLoader.parse(Self.oneModel, environment: [:]).status
        let scaled = try ConfigLoader.parse(Self.oneModel + "status: {time_scale: 0.05, open_after_major_outage_s: 10}\n", environment: [:]).status
        XCTAssertEqual(scaled.evaluationIntervalSeconds, defaults.evaluationIntervalSeconds * 0.05, accuracy: 1e-9)
        XCTAssertEqual(scaled.thresholds.windowSeconds, defaults.thresholds.windowSeconds * 0.05, accuracy: 1e-9)
        XCTAssertEqual(scaled.policy.openAfterSeconds, defaults.policy.openAfterSeconds * 0.05, accuracy: 1e-9)
        XCTAssertEqual(scaled.policy.openAfterPartialOutageSeconds, defaults.policy.openAfterPartialOutageSeconds * 0.05, accuracy: 1e-9)
        XCTAssertEqual(scaled.policy.openAfterMajorOutageSeconds, 0.5, accuracy: 1e-9, "a given value is scaled too")
        XCTAssertEqual(scaled.policy.monitorAfterSeconds, defaults.policy.monitorAfterSeconds * 0.05, accuracy: 1e-9)
        XCTAssertEqual(scaled.policy.resolveAfterSeconds, defaults.policy.resolveAfterSeconds * 0.05, accuracy: 1e-9)
        XCTAssertEqual(scaled.policy.updateIntervalSeconds, defaults.policy.updateIntervalSeconds * 0.05, accuracy: 1e-9)
        XCTAssertEqual(scaled.thresholds.latencyThresholdSeconds, defaults.thresholds.latencyThresholdSeconds, "a request's latency is not a delay")
        XCTAssertEqual(issues(Self.oneModel + "status: {time_scale: 2}\n"), ["status.time_scale: must be from 0.0001 to 1, got 2"])
    }

    func testTheStorageBlockSelectsPostgresAndItsURLIsASecret() throws {
        let config = try ConfigLoader.parse(Self.oneModel + """
        storage: {postgres: {url: "${DATABASE_URL}"}, key_refresh_s: 0.5}
        """, environment: ["DATABASE_URL": "postgres://lifeline:pw-secret@127.0.0.1:5432/lifeline"])
        XCTAssertEqual(config.storage.postgresURL, "postgres://lifeline:pw-secret@127.0.0.1:5432/lifeline")
        XCTAssertEqual(config.storage.keyRefreshSeconds, 0.5)
        XCTAssertTrue(config.secretValues.contains("postgres://lifeline:pw-secret@127.0.0.1:5432/lifeline"))
        XCTAssertNil(try ConfigLoader.parse(Self.oneModel, environment: [:]).storage.postgresURL, "SQLite by default")
        XCTAssertEqual(issues(Self.oneModel + """
        storage: {postgres: {url: "mysql://x@y/z"}, key_refresh_s: 0, disk: 1}
        """), [
            "storage.disk: unknown key (known: key_refresh_s, postgres, responses)",
            "storage.key_refresh_s: must be from 0.05 to 3600, got 0",
            "storage.postgres.url: must be a postgres://user:password@host:port/database URL",
        ])
        XCTAssertEqual(issues(Self.oneModel + "storage: {postgres: {}}\n"), ["storage.postgres.url: required"])
    }

    func testTheLimitersMinimumQueueDelayIsReadInMillisecondsAndChecked() throws {
        let defaults = try ConfigLoader.parse(Self.oneModel, environment: [:]).admission
        XCTAssertEqual(defaults.concurrency.minimumQueueDelay, 0.25)
        XCTAssertEqual(defaults.deploymentConcurrency.minimumQueueDelay, 0.25)
        let config = try ConfigLoader.parse(Self.oneModel + "admission: {concurrency: {min_queue_delay_ms: 0}, deployment_concurrency: {min_queue_delay_ms: 1500}}\n",
                                            environment: [:]).admission
        XCTAssertEqual(config.concurrency.minimumQueueDelay, 0)
        XCTAssertEqual(config.deploymentConcurrency.minimumQueueDelay, 1.5)
        XCTAssertEqual(issues(Self.oneModel + "admission: {deployment_concurrency: {min_queue_delay_ms: -5}}\n"), [
            "admission.deployment_concurrency.min_queue_delay_ms: must be from 0 to 600000, got -5",
        ])
    }

    func testTheQueuesStandingWaitIsReadInMillisecondsAndChecked() throws {
        XCTAssertEqual(try ConfigLoader.parse(Self.oneModel, environment: [:]).admission.queue.standingWait, 0.25)
        let config = try ConfigLoader.parse(Self.oneModel + "admission: {queue: {standing_wait_ms: 800}}\n", environment: [:])
        XCTAssertEqual(config.admission.queue.standingWait, 0.8)
        XCTAssertEqual(issues(Self.oneModel + "admission: {queue: {standing_wait_ms: 0}}\n"), [
            "admission.queue.standing_wait_ms: must be from 1 to 600000, got 0",
        ])
    }

    func testStoredResponsesAreBoundedByConfig() throws {
        let defaults = try ConfigLoader.parse(Self.oneModel, environment: [:]).storage
        XCTAssertEqual(defaults.responsesTTLSeconds, 30 * 86_400)
        XCTAssertEqual(defaults.maxStoredResponses, 100_000)
        let config = try ConfigLoader.parse(Self.oneModel + "storage: {responses: {ttl_s: 3600, max_stored: 50}}\n", environment: [:])
        XCTAssertEqual(config.storage.responsesTTLSeconds, 3600)
        XCTAssertEqual(config.storage.maxStoredResponses, 50)
        XCTAssertEqual(issues(Self.oneModel + "storage: {responses: {ttl_s: 1, max_stored: 2.5, keep: true}}\n"), [
            "storage.responses.keep: unknown key (known: max_stored, ttl_s)",
            "storage.responses.ttl_s: must be from 60 to 34560000, got 1",
            "storage.responses.max_stored: must be a whole number",
        ])
    }

    func testWebhooksAreReadAndTheirURLsAndHeadersAreSecrets() throws {
        let config = try ConfigLoader.parse(Self.oneModel + """
        notifications:
          max_attempts: 3
          backoff: {base_ms: 100, max_ms: 2000}
          allow_private_targets: true   # Alertmanager on this host
          webhooks:
            - {name: ops, format: slack, url: "${SLACK_URL}", severities: [page]}
            - {name: am, format: alertmanager, url: "http://127.0.0.1:9093", headers: {authorization: "Bearer ${AM_TOKEN}"}}
        """, environment: ["SLACK_URL": "https://hooks.example/T0/B0/secret", "AM_TOKEN": "am-secret-token"])
        XCTAssertEqual(config.notifications.maxAttempts, 3)
        XCTAssertEqual(config.notifications.backoff, Backoff(base: 0.1, maximum: 2))
        XCTAssertTrue(config.notifications.allowPrivateTargets)
        XCTAssertEqual(config.notifications.webhooks.map(\.name), ["ops", "am"])
        XCTAssertEqual(config.notifications.webhooks.map(\.format), [.slack, .alertmanager])
        XCTAssertEqual(config.notifications.webhooks[0].severities, [.page])
        XCTAssertEqual(config.notifications.webhooks[1].severities, [.page, .ticket])
        XCTAssertEqual(config.notifications.webhooks[1].headers, ["authorization": "Bearer am-secret-token"])
        XCTAssertTrue(config.secretValues.contains("https://hooks.example/T0/B0/secret"))
        XCTAssertTrue(config.secretValues.contains("Bearer am-secret-token"))
    }

    func testNotificationErrorsNameTheirPathsAndNeverQuoteAURL() {
        XCTAssertEqual(issues(Self.oneModel + """
        notifications:
          max_attempts: 0
          webhooks:
            - {name: a, format: teams, url: "https://example.com/secret-path"}
            - {name: a, format: json, url: "not a url with secret"}
            - {format: json}
        """), [
            "notifications.max_attempts: must be from 1 to 20, got 0",
            "notifications.webhooks[0].format: must be slack, json or alertmanager, got 'teams'",
            "notifications.webhooks[1].name: duplicate webhook name 'a'",
            "notifications.webhooks[1].url: not a URL (expected http:// or https:// with a host)",
            "notifications.webhooks[2].name: required",
            "notifications.webhooks[2].url: required",
        ])
    }
}

/// The configuration the README and `docs/` show, and the files in `examples/`, load as written.
extension ConfigLoaderTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// A ```yaml block of a Markdown file, with the line it starts on.
    struct YAMLBlock {
        var file: String
        var line: Int
        var text: String
        var isFragment: Bool
    }

    /// Every ```yaml block of `markdown`. The rule for what a block is:
    /// - a block with a top-level `models:` key is a whole config file and loads on its own;
    /// - any other block is a sub-tree of the top level (`storage:` …) and loads after a base of
    ///   one simulated model, so its keys and values are checked too;
    /// - a block right after a `<!-- fragment -->` line (blank lines between allowed) is a
    ///   deliberately partial excerpt (a deployment entry alone, say) and is not loaded.
    static func yamlBlocks(in markdown: String, file: String) -> [YAMLBlock] {
        var blocks: [YAMLBlock] = []
        let lines = markdown.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var index = 0
        while index < lines.count {
            let fence = lines[index].trimmingCharacters(in: .whitespaces)
            guard fence == "```yaml" || fence == "```yml" else { index += 1; continue }
            let indent = lines[index].prefix { $0 == " " }.count
            let previous = lines[..<index].last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            let start = index + 1
            var end = start
            while end < lines.count, lines[end].trimmingCharacters(in: .whitespaces) != "```" { end += 1 }
            let text = lines[start..<min(end, lines.count)].map { String($0.dropFirst(min(indent, $0.prefix { $0 == " " }.count))) }
                .joined(separator: "\n")
            blocks.append(YAMLBlock(file: file, line: start, text: text,
                                    isFragment: previous?.trimmingCharacters(in: .whitespaces) == "<!-- fragment -->"))
            index = end + 1
        }
        return blocks
    }

    /// A stand-in for every `${NAME}` in `yaml` that fits where such variables go: a PostgreSQL
    /// URL for database variables, an https URL for other `…URL` ones, a plain word otherwise.
    static func dummyEnvironment(for yaml: String) -> [String: String] {
        var environment: [String: String] = [:]
        var rest = Substring(yaml)
        while let start = rest.range(of: "${"), let end = rest[start.upperBound...].firstIndex(of: "}") {
            let name = String(rest[start.upperBound..<end])
            environment[name] = if name.contains("DATABASE") || name.contains("POSTGRES") {
                "postgres://lifeline:dummy@127.0.0.1:5432/lifeline"
            } else if name.hasSuffix("URL") {
                "https://hooks.example.com/dummy"
            } else {
                "dummy-\(name.lowercased())"
            }
            rest = rest[rest.index(after: end)...]
        }
        return environment
    }

    static let baseForSubTrees = """
    models:
      - name: base-model
        deployments:
          - {name: base-sim, protocol: openai, model: lifeline-sim, simulator: {}}

    """

    func testEveryYAMLExampleInTheDocsLoads() throws {
        let root = Self.repositoryRoot
        var markdownFiles = ["README.md"]
        let docs = root.appendingPathComponent("docs")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: docs.path)) ?? [] where name.hasSuffix(".md") {
            markdownFiles.append("docs/" + name)
        }
        var checked = 0
        for file in markdownFiles {
            let markdown = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            for block in Self.yamlBlocks(in: markdown, file: file) where !block.isFragment {
                let isWhole = block.text.split(separator: "\n").contains { $0.hasPrefix("models:") }
                let yaml = isWhole ? block.text : Self.baseForSubTrees + block.text
                do {
                    let (_, warnings) = try ConfigLoader.parseChecked(yaml, environment: Self.dummyEnvironment(for: yaml))
                    XCTAssertEqual(warnings.map(\.description), [], "\(file):\(block.line)")
                } catch {
                    XCTFail("\(file):\(block.line): the yaml block does not load:\n\(error.description)")
                }
                checked += 1
            }
        }
        XCTAssertGreaterThanOrEqual(checked, 2, "the configuration reference in docs/configuration.md and the PostgreSQL example in docs/several-instances.md at least")

        let examples = root.appendingPathComponent("examples")
        let files = try FileManager.default.contentsOfDirectory(atPath: examples.path).filter { $0.hasSuffix(".yaml") }.sorted()
        for required in ["openai-anthropic.yaml", "openai-anthropic-local.yaml", "local-model.yaml"] {
            XCTAssertTrue(files.contains(required), required)
        }
        for name in files {
            let yaml = try String(contentsOf: examples.appendingPathComponent(name), encoding: .utf8)
            do {
                let (config, warnings) = try ConfigLoader.parseChecked(yaml, environment: Self.dummyEnvironment(for: yaml))
                XCTAssertEqual(warnings.map(\.description), [], name)
                XCTAssertFalse(config.models.isEmpty, name)
            } catch {
                XCTFail("examples/\(name) does not load:\n\(error.description)")
            }
        }
    }

    func testTheExtractionFindsBlocksAndHonoursTheFragmentMark() {
        let markdown = """
        text
        ```yaml
        storage:
          key_refresh_s: 1
        ```
        <!-- fragment -->

        ```yaml
        - name: alone
        ```
          ```yaml
          models: []
          ```
        """
        let blocks = Self.yamlBlocks(in: markdown, file: "x.md")
        XCTAssertEqual(blocks.map(\.isFragment), [false, true, false])
        XCTAssertEqual(blocks.map(\.text), ["storage:\n  key_refresh_s: 1", "- name: alone", "models: []"])
        // The docs' old PostgreSQL line is what this test exists to catch.
        XCTAssertThrowsError(try ConfigLoader.parse(Self.baseForSubTrees + "storage:\n  postgres: {url: ${DATABASE_URL}}\n",
                                                    environment: ["DATABASE_URL": "postgres://u:p@h/d"]))
    }

    func testASecretThatLooksLikeAnUnexpandedVariableIsAWarningWithItsPath() throws {
        let yaml = """
        admin: {token: "%ADMIN_TOKEN%"}
        storage:
          postgres:
            url: postgres://lifeline:${DB_PASSWORD@127.0.0.1/lifeline
        models:
          - name: chat
            deployments:
              - {name: openai, protocol: openai, base_url: "https://api.openai.com/v1", api_key: $OPENAI_API_KEY, model: gpt-4o-mini}
              - {name: good, protocol: openai, base_url: "https://api.openai.com/v1", api_key: "${GOOD_KEY}", model: gpt-4o-mini}
              - {name: literal, protocol: openai, base_url: "https://api.openai.com/v1", api_key: "sk-plain-123", model: gpt-4o-mini}
        notifications:
          webhooks:
            - {name: hook, format: json, url: "https://hooks.example.com/x", headers: {authorization: "Bearer $HOOK_TOKEN"}}
        """
        let (config, warnings) = try ConfigLoader.parseChecked(yaml, environment: ["GOOD_KEY": "sk-real"])
        XCTAssertEqual(warnings.map(\.description), [
            "admin.token: looks like an unexpanded environment variable (%ADMIN_TOKEN%); write ${ADMIN_TOKEN}",
            "storage.postgres.url: looks like an unexpanded environment variable (${DB_PASSWORD has no closing brace); write ${DB_PASSWORD}",
            "notifications.webhooks[0].headers.authorization: looks like an unexpanded environment variable ($HOOK_TOKEN); only ${HOOK_TOKEN} is substituted",
            "models[0].deployments[0].api_key: looks like an unexpanded environment variable ($OPENAI_API_KEY); only ${OPENAI_API_KEY} is substituted",
        ])
        // It still loads as written: a warning, not an error.
        XCTAssertEqual(config.models[0].deployments[0].apiKey, "$OPENAI_API_KEY")
        XCTAssertEqual(config.models[0].deployments[1].apiKey, "sk-real")
        // A substituted value may hold anything; only the file's own text is looked at.
        let (_, none) = try ConfigLoader.parseChecked(Self.baseForSubTrees + "admin: {token: \"${TOKEN}\"}\n", environment: ["TOKEN": "a$b%c%"])
        XCTAssertEqual(none.map(\.description), [])
    }
}
