import Foundation
@testable import LifelineGateway
import LifelineWire
import XCTest

/// What the gateway sends a Bedrock deployment: URLs, the signed host, and a signature a server
/// holding the same secret recomputes from the request as sent.
final class BedrockSigningTests: XCTestCase {
    func deployment(_ baseURL: String) -> DeploymentConfig {
        var deployment = DeploymentConfig(name: "b", protocol: .bedrock, model: "anthropic.claude-3-haiku-20240307-v1:0")
        deployment.baseURL = baseURL
        deployment.region = "us-west-2"
        deployment.awsCredentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: "session")
        return deployment
    }

    func testAProxyPathAndPortAreKeptAndSigned() throws {
        let signing = BedrockSigning(deployment: deployment("http://127.0.0.1:9003/bedrock"))
        XCTAssertEqual(signing.url(stream: true), "http://127.0.0.1:9003/bedrock/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream")
        let date = Date(timeIntervalSince1970: 1_440_938_160)
        let body = Array(#"{"messages":[]}"#.utf8)
        let headers = Dictionary(uniqueKeysWithValues: signing.headers(stream: true, body: body, date: date))
        XCTAssertEqual(headers["host"], "127.0.0.1:9003")
        XCTAssertEqual(headers["x-amz-date"], "20150830T123600Z")
        XCTAssertEqual(headers["x-amz-security-token"], "session")
        let authorization = try XCTUnwrap(headers["authorization"])
        XCTAssertTrue(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-west-2/bedrock/aws4_request, "
                                              + "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="), authorization)
        // What a server recomputes from the path it receives.
        let server = AWSSignatureV4(credentials: deployment("").awsCredentials!, region: "us-west-2", service: "bedrock")
        let expected = server.signature(
            method: "POST", path: "/bedrock/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream", query: [],
            signedHeaders: [("content-type", "application/json"), ("host", "127.0.0.1:9003"), ("x-amz-date", "20150830T123600Z"),
                            ("x-amz-security-token", "session")],
            body: body, dateTime: "20150830T123600Z")
        XCTAssertTrue(authorization.hasSuffix("Signature=" + expected.signature), authorization)
    }

    func testTheDefaultPortIsLeftOutOfHostAndAnAPIKeyIsABearerToken() {
        XCTAssertEqual(BedrockSigning(deployment: deployment("https://bedrock-runtime.us-west-2.amazonaws.com")).host,
                       "bedrock-runtime.us-west-2.amazonaws.com")
        var keyed = deployment("https://bedrock-runtime.us-west-2.amazonaws.com")
        keyed.awsCredentials = nil
        keyed.apiKey = "bedrock-api-key"
        let headers = BedrockSigning(deployment: keyed).headers(stream: false, body: [], date: Date(timeIntervalSince1970: 0))
        XCTAssertEqual(headers.map(\.0), ["authorization"])
        XCTAssertEqual(headers.first?.1, "Bearer bedrock-api-key")
    }
}
