import LifelineGateway
import XCTest

final class ConfigLoaderTests: XCTestCase {
    func issues(_ yaml: String, environment: [String: String] = [:]) -> [String] {
        do {
            _ = try ConfigLoader.parse(yaml, environment: environment)
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

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
            "server.colour: unknown key (known: data_dir, drain_timeout_s, host, max_body_bytes, port)",
            "server.port: must be from 0 to 65535, got 70000",
            "models[0].deployments[1].protocol: must be openai or anthropic, got 'grpc'",
            "models[0].deployments[1].api_key: environment variable MISSING is not set",
            "models[0].deployments[1].base_url: not a URL (expected http:// or https:// with a host), got 'not a url'",
            "models[1].name: duplicate model name 'm'",
            "models[1].deployments: at least one deployment is required",
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
}
