import LifelineGateway
import LifelineWire
import XCTest

/// `protocol: bedrock` deployments: region and credentials, their defaults, and errors by path.
final class BedrockConfigTests: XCTestCase {
    func yaml(_ deployment: String) -> String {
        """
        models:
          - name: m
            deployments:
              - {name: openai, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x}
              - {name: bedrock, protocol: bedrock, model: "anthropic.claude-3-haiku-20240307-v1:0"\(deployment)}
        """
    }

    func testCredentialsComeFromTheEnvironmentAndTheEndpointFromTheRegion() throws {
        let environment = ["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI", "AWS_SESSION_TOKEN": "token-1"]
        let config = try ConfigLoader.parse(yaml(#", region: eu-west-1, access_key_id: "${AWS_ACCESS_KEY_ID}", secret_access_key: "${AWS_SECRET_ACCESS_KEY}", session_token: "${AWS_SESSION_TOKEN}""#),
                                            environment: environment)
        let deployment = config.models[0].deployments[1]
        XCTAssertEqual(deployment.protocol, .bedrock)
        XCTAssertEqual(deployment.region, "eu-west-1")
        XCTAssertEqual(deployment.baseURL, "https://bedrock-runtime.eu-west-1.amazonaws.com")
        XCTAssertEqual(deployment.awsCredentials, AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI", sessionToken: "token-1"))
        for secret in environment.values { XCTAssertTrue(config.secretValues.contains(secret), secret) }
    }

    func testAMissingRegionOrCredentialIsNamedByItsPath() {
        XCTAssertEqual(issues(yaml("")), [
            "models[0].deployments[1].region: required for protocol bedrock (the AWS region, such as us-east-1)",
            "models[0].deployments[1].access_key_id: required for protocol bedrock (with secret_access_key), unless api_key holds a Bedrock API key",
            "models[0].deployments[1].secret_access_key: required for protocol bedrock (with access_key_id), unless api_key holds a Bedrock API key",
        ])
        XCTAssertEqual(issues(yaml(#", region: us-east-1, access_key_id: "${AWS_ACCESS_KEY_ID}", secret_access_key: "${AWS_SECRET_ACCESS_KEY}""#),
                              environment: ["AWS_ACCESS_KEY_ID": "AKID"]),
                       ["models[0].deployments[1].secret_access_key: environment variable AWS_SECRET_ACCESS_KEY is not set"])
        XCTAssertEqual(issues(yaml(#", region: us-east-1, secret_access_key: "s""#)),
                       ["models[0].deployments[1].access_key_id: required with secret_access_key"])
        XCTAssertEqual(issues(yaml(#", region: "US East", access_key_id: a, secret_access_key: s"#)),
                       ["models[0].deployments[1].region: not an AWS region (such as us-east-1), got 'US East'"])
        XCTAssertEqual(issues(yaml(#", region: us-east-1, session_token: t"#)).first,
                       "models[0].deployments[1].session_token: needs access_key_id and secret_access_key")
    }

    func testBedrockFieldsBelongToBedrockOnly() {
        XCTAssertEqual(issues("""
        models:
          - name: m
            deployments:
              - {name: a, protocol: openai, base_url: "http://127.0.0.1:1/v1", model: x, region: us-east-1}
        """), ["models[0].deployments[0].region: only for protocol bedrock"])
    }

    func testABedrockAPIKeyStandsInForAnAccessKey() throws {
        let deployment = try ConfigLoader.parse(yaml(#", region: us-west-2, api_key: "${BEDROCK_KEY}""#), environment: ["BEDROCK_KEY": "bedrock-api-key"])
            .models[0].deployments[1]
        XCTAssertNil(deployment.awsCredentials)
        XCTAssertEqual(deployment.apiKey, "bedrock-api-key")
    }

    func testASimulatedDeploymentNeedsNoCredentials() throws {
        let deployment = try ConfigLoader.parse(yaml(", simulator: {}"), environment: [:]).models[0].deployments[1]
        XCTAssertEqual(deployment.region, DeploymentConfig.bedrockSimulatorRegion)
        XCTAssertEqual(deployment.awsCredentials, DeploymentConfig.bedrockSimulatorCredentials)
        XCTAssertEqual(deployment.baseURL, "", "the simulator's port, known at start")
    }
}
