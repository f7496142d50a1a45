@testable import LifelineGateway
import LifelineWire
import XCTest

/// Gemini and Azure OpenAI deployments: their config fields, defaults and checks, and the URLs
/// and key headers they are called with.
final class ProviderConfigTests: XCTestCase {
    func deployment(_ yaml: String, environment: [String: String] = ["KEY": "k-123"]) throws -> DeploymentConfig {
        let config = try ConfigLoader.parse("models:\n  - name: m\n    deployments:\n      - \(yaml)\n", environment: environment)
        return try XCTUnwrap(config.models.first?.deployments.first)
    }

    func testGeminiDefaultsToGooglesEndpointWithTheKeyInItsHeader() throws {
        let gemini = try deployment(#"{name: g, protocol: gemini, api_key: "${KEY}", model: gemini-2.5-flash}"#)
        XCTAssertEqual(gemini.baseURL, "https://generativelanguage.googleapis.com/v1beta")
        let endpoint = UpstreamEndpoint(gemini)
        XCTAssertEqual(endpoint.completionURL, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent")
        XCTAssertEqual(endpoint.streamURL, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        XCTAssertEqual(endpoint.headers.first(name: "x-goog-api-key"), "k-123")
        XCTAssertNil(endpoint.headers.first(name: "authorization"))
        XCTAssertEqual(UpstreamEndpoint.modelIDs(in: ["models": [["name": "models/gemini-2.5-flash"]]], protocol: .gemini), ["gemini-2.5-flash"])
    }

    func testAzureDeploymentsFormUsesTheDeploymentNameAndAPIVersion() throws {
        let azure = try deployment(#"{name: a, protocol: azure_openai, base_url: "https://res.openai.azure.com/", api_key: "${KEY}", model: gpt-4o, deployment: prod-4o}"#)
        let endpoint = UpstreamEndpoint(azure)
        XCTAssertEqual(endpoint.completionURL,
                       "https://res.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=\(UpstreamEndpoint.defaultAzureAPIVersion)")
        XCTAssertEqual(endpoint.streamURL, endpoint.completionURL)
        XCTAssertEqual(endpoint.headers.first(name: "api-key"), "k-123")
        XCTAssertNil(endpoint.headers.first(name: "authorization"))
        XCTAssertEqual(azure.upstreamDeployment, "prod-4o")
        let dated = try deployment(#"{name: a, protocol: azure_openai, base_url: "https://res.openai.azure.com", api_key: "${KEY}", model: gpt-4o, api_version: 2025-01-01-preview}"#)
        XCTAssertEqual(UpstreamEndpoint(dated).completionURL,
                       "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2025-01-01-preview")
    }

    func testAzureV1FormNeedsNoVersionParameter() throws {
        let azure = try deployment(#"{name: a, protocol: azure_openai, base_url: "https://res.openai.azure.com", api_key: "${KEY}", model: gpt-4o, api_version: v1}"#)
        XCTAssertEqual(UpstreamEndpoint(azure).completionURL, "https://res.openai.azure.com/openai/v1/chat/completions")
    }

    func testMissingOrMisplacedProviderFieldsAreNamedByPath() {
        XCTAssertEqual(issues("""
        models:
          - name: m
            deployments:
              - {name: g, protocol: gemini, model: gemini-2.5-flash}
              - {name: a, protocol: azure_openai, base_url: "https://res.openai.azure.com", model: gpt-4o, api_key: "${AZURE_KEY}"}
              - {name: o, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x, api_version: v1, deployment: d}
              - {name: b, protocol: azure_openai, base_url: "https://res.openai.azure.com", api_key: k, model: "gpt 4o", api_version: "2024/10"}
              - {name: s, protocol: gemini, model: "../escape", simulator: {}}
        """), [
            "models[0].deployments[0].api_key: required for protocol gemini (write it as ${ENV_VAR})",
            "models[0].deployments[1].api_key: environment variable AZURE_KEY is not set",
            "models[0].deployments[2].api_version: only for protocol azure_openai",
            "models[0].deployments[2].deployment: only for protocol azure_openai",
            "models[0].deployments[3].api_version: expected an Azure API version such as 2024-10-21, or v1, got '2024/10'",
            "models[0].deployments[3].deployment: required when model 'gpt 4o' is not a valid Azure deployment name",
            "models[0].deployments[4].model: a Gemini model id holds only letters, digits, '-', '_' and '.', got '../escape'",
        ])
    }

    func testSimulatedDeploymentsOfEachProtocolNeedNoKey() throws {
        let gemini = try deployment("{name: g, protocol: gemini, model: sim, simulator: {}}")
        XCTAssertEqual(gemini.baseURL, "", "the simulator's port is filled in at start")
        XCTAssertEqual(gemini.loopbackBaseURL(port: 9), "http://127.0.0.1:9/v1beta")
        let azure = try deployment("{name: a, protocol: azure_openai, model: sim, simulator: {}}")
        XCTAssertEqual(azure.loopbackBaseURL(port: 9), "http://127.0.0.1:9")
    }

    func testContentFilterRefusalsReachTheClientAsTheirOwn400() {
        let refusal = UpstreamErrorReport.clientFault(UpstreamFailure(.status(400), "filtered: quoting sk-secret", body: AzureOpenAIError.contentFilterBody()))
        XCTAssertEqual(refusal.status, 400)
        XCTAssertEqual(refusal.code, "content_filter")
        XCTAssertFalse(refusal.message.contains("sk-secret"))
        XCTAssertEqual(UpstreamErrorReport.clientFault(.contentFilter("the prompt was blocked (SAFETY)")).code, "content_filter")
        XCTAssertFalse(UpstreamFailure(.status(400), "x", body: AzureOpenAIError.contentFilterBody()).isRetryable)
    }
}
