import Foundation
@testable import LifelineWire
import XCTest

/// The signer against AWS's published SigV4 test suite (Fixtures/aws-sig-v4-test-suite).
final class AWSSignatureV4Tests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/aws-sig-v4-test-suite")
    static let signer = AWSSignatureV4(
        credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1", service: "service")
    /// 2015-08-30T12:36:00Z, the suite's time.
    static let date = Date(timeIntervalSince1970: 1_440_938_160)

    struct SuiteRequest {
        var method: String
        var path: String
        var query: [(String, String)]
        var headers: [(String, String)]
        var body: [UInt8]
        var sessionToken: String?
    }

    /// A `.req` file: request line, `Name:value` headers, a blank line, the body. The date and
    /// the session token are left for the signer to add.
    static func request(_ name: String) throws -> SuiteRequest {
        let text = try String(contentsOf: fixtures.appendingPathComponent("\(name).req"), encoding: .utf8)
        let parts = text.components(separatedBy: "\n\n")
        var lines = parts[0].components(separatedBy: "\n")
        let requestLine = lines.removeFirst().components(separatedBy: " ")
        let target = requestLine[1]
        let pathAndQuery = target.split(separator: "?", maxSplits: 1).map(String.init)
        let query = pathAndQuery.count > 1 ? pathAndQuery[1].split(separator: "&").map { pair -> (String, String) in
            let halves = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            return (halves[0].removingPercentEncoding ?? halves[0], halves.count > 1 ? (halves[1].removingPercentEncoding ?? halves[1]) : "")
        } : []
        var headers: [(String, String)] = []
        var token: String?
        for line in lines {
            let colon = line.firstIndex(of: ":")!
            let name = String(line[..<colon]), value = String(line[line.index(after: colon)...])
            switch name.lowercased() {
            case "x-amz-date": XCTAssertEqual(value, "20150830T123600Z")
            case "x-amz-security-token": token = value
            default: headers.append((name, value))
            }
        }
        return SuiteRequest(method: requestLine[0], path: pathAndQuery[0], query: query, headers: headers,
                            body: Array((parts.count > 1 ? parts[1] : "").utf8), sessionToken: token)
    }

    func testEveryVectorOfTheSuiteSignsToItsPublishedAuthorization() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.path)
            .filter { $0.hasSuffix(".req") }.map { String($0.dropLast(4)) }.sorted()
        XCTAssertGreaterThanOrEqual(names.count, 8)
        for name in names {
            let request = try Self.request(name)
            var signer = Self.signer
            signer.credentials.sessionToken = request.sessionToken
            let added = signer.sign(method: request.method, path: request.path, query: request.query, headers: request.headers,
                                    body: request.body, date: Self.date)
            let expected = try String(contentsOf: Self.fixtures.appendingPathComponent("\(name).authz"), encoding: .utf8)
            XCTAssertEqual(added.first { $0.0 == "authorization" }?.1, expected, name)
            XCTAssertEqual(added.first { $0.0 == "x-amz-date" }?.1, "20150830T123600Z", name)
            XCTAssertEqual(added.first { $0.0 == "x-amz-security-token" }?.1, request.sessionToken, name)
        }
    }

    func testCanonicalRequestMatchesThePublishedOne() throws {
        let request = try Self.request("post-x-www-form-urlencoded")
        let canonical = AWSSignatureV4.canonicalRequest(
            method: request.method, path: request.path, query: request.query,
            headers: request.headers + [("x-amz-date", "20150830T123600Z")],
            payloadHash: AWSSignatureV4.sha256Hex(request.body))
        let expected = try String(contentsOf: Self.fixtures.appendingPathComponent("post-x-www-form-urlencoded.creq"), encoding: .utf8)
        XCTAssertEqual(canonical.text, expected)
    }

    func testAnotherSecretOrDayGivesAnotherSignature() throws {
        let request = try Self.request("post-vanilla")
        func authorization(_ signer: AWSSignatureV4, _ date: Date) -> String? {
            signer.sign(method: "POST", path: "/", headers: request.headers, body: [UInt8](), date: date).first { $0.0 == "authorization" }?.1
        }
        let reference = authorization(Self.signer, Self.date)
        var otherSecret = Self.signer
        otherSecret.credentials.secretAccessKey += "x"
        XCTAssertNotEqual(authorization(otherSecret, Self.date), reference)
        XCTAssertNotEqual(authorization(Self.signer, Self.date.addingTimeInterval(86_400)), reference)
    }

    func testTimestampsAreUTCWithoutALocale() {
        XCTAssertEqual(AWSSignatureV4.timestamp(Date(timeIntervalSince1970: 0)).dateTime, "19700101T000000Z")
        XCTAssertEqual(AWSSignatureV4.timestamp(Date(timeIntervalSince1970: 951_782_400)).date, "20000229")
        XCTAssertEqual(AWSSignatureV4.timestamp(Date(timeIntervalSince1970: 4_102_444_799)).dateTime, "20991231T235959Z")
        XCTAssertEqual(AWSSignatureV4.timestamp(Self.date).dateTime, "20150830T123600Z")
    }

    /// Bedrock model ids carry `:` (and ARNs `/`): sent encoded once, signed encoded twice.
    func testAModelIdPathIsSignedEncodedTwice() {
        let path = "/model/" + AWSSignatureV4.uriEncode("anthropic.claude-3-haiku-20240307-v1:0", keepSlash: false) + "/converse"
        XCTAssertEqual(path, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse")
        let canonical = AWSSignatureV4.canonicalRequest(method: "POST", path: path, query: [], headers: [("host", "h")], payloadHash: "")
        XCTAssertTrue(canonical.text.hasPrefix("POST\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n"), canonical.text)
    }
}
