import LifelineGateway
import XCTest

/// `tracing:`: off by default, on with a collector URL, every bad field named by its path.
final class TracingConfigTests: XCTestCase {
    func testTracingIsOffWithoutATracingBlock() throws {
        let config = try ConfigLoader.parse(ConfigLoaderTests.oneModel, environment: [:])
        XCTAssertFalse(config.tracing.enabled)
        XCTAssertNil(config.tracing.otlpEndpoint)
        XCTAssertNil(config.tracing.tracesURL)
        XCTAssertEqual(config.tracing.sampleRatio, 1.0)
        XCTAssertEqual(config.tracing.serviceName, "lifeline")
    }

    func testACollectorURLTurnsTracingOnWithItsFields() throws {
        let config = try ConfigLoader.parse(ConfigLoaderTests.oneModel + """
        tracing: {otlp_endpoint: "${COLLECTOR}", sample_ratio: 0.25, service_name: gateway-eu}
        """, environment: ["COLLECTOR": "https://collector.example:4318"])
        XCTAssertTrue(config.tracing.enabled)
        XCTAssertEqual(config.tracing.otlpEndpoint, "https://collector.example:4318")
        XCTAssertEqual(config.tracing.sampleRatio, 0.25)
        XCTAssertEqual(config.tracing.serviceName, "gateway-eu")
    }

    func testAnEndpointWithoutAPathGetsTheTracesPathAndOneWithAPathIsKept() {
        var tracing = TracingConfig()
        tracing.otlpEndpoint = "http://127.0.0.1:4318"
        XCTAssertEqual(tracing.tracesURL, "http://127.0.0.1:4318/v1/traces")
        tracing.otlpEndpoint = "http://127.0.0.1:4318/"
        XCTAssertEqual(tracing.tracesURL, "http://127.0.0.1:4318/v1/traces")
        tracing.otlpEndpoint = "https://otel.example/custom/traces"
        XCTAssertEqual(tracing.tracesURL, "https://otel.example/custom/traces")
    }

    func testRatioBoundsAreInclusive() throws {
        for ratio in ["0", "1", "0.001"] {
            let config = try ConfigLoader.parse(ConfigLoaderTests.oneModel + "tracing: {otlp_endpoint: \"http://127.0.0.1:4318\", sample_ratio: \(ratio)}",
                                                environment: [:])
            XCTAssertEqual(config.tracing.sampleRatio, Double(ratio))
        }
    }

    func testBadTracingFieldsAreNamedByTheirPaths() {
        XCTAssertEqual(issues(ConfigLoaderTests.oneModel + """
        tracing: {otlp_endpoint: "grpc://127.0.0.1:4317", sample_ratio: 1.5, service_name: "", colour: red}
        """), [
            "tracing.colour: unknown key (known: otlp_endpoint, sample_ratio, service_name)",
            "tracing.sample_ratio: must be from 0 to 1, got 1.5",
            "tracing.service_name: must be a non-empty name of at most 255 characters on one line",
            "tracing.otlp_endpoint: not an OTLP/HTTP URL (expected http:// or https:// with a host, no query), got 'grpc://127.0.0.1:4317'",
        ])
        XCTAssertEqual(issues(ConfigLoaderTests.oneModel + "tracing: {sample_ratio: -0.1}"), [
            "tracing.sample_ratio: must be from 0 to 1, got -0.1",
            "tracing.otlp_endpoint: required to turn tracing on (an OTLP/HTTP collector URL, e.g. http://127.0.0.1:4318)",
        ])
        XCTAssertEqual(issues(ConfigLoaderTests.oneModel + "tracing: {otlp_endpoint: \"http://collector:4318/v1/traces?x=1\"}"), [
            "tracing.otlp_endpoint: not an OTLP/HTTP URL (expected http:// or https:// with a host, no query), got 'http://collector:4318/v1/traces?x=1'",
        ])
        XCTAssertEqual(issues(ConfigLoaderTests.oneModel + "tracing: [1]"), ["tracing: expected a mapping, got array"])
        XCTAssertEqual(issues(ConfigLoaderTests.oneModel + "tracing: {otlp_endpoint: \"${NOT_SET}\"}"), [
            "tracing.otlp_endpoint: environment variable NOT_SET is not set",
            "tracing.otlp_endpoint: not an OTLP/HTTP URL (expected http:// or https:// with a host, no query), got ''",
        ])
    }

    func testAReloadThatChangesTracingIsRefusedWithItsPath() async throws {
        let fixture = try await GatewayFixture.start()
        var next = fixture.runtime.config
        next.tracing.otlpEndpoint = "http://127.0.0.1:4318"
        do {
            try fixture.runtime.reload(next)
            XCTFail("a reload turned tracing on without a restart")
        } catch {
            XCTAssertEqual(error.issues.map(\.description), ["tracing: tracing settings change only on restart"])
        }
        XCTAssertFalse(fixture.runtime.config.tracing.enabled)
        await fixture.stop()
    }
}
