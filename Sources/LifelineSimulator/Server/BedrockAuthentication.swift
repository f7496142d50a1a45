import Foundation
import HTTPTypes
import Hummingbird
import LifelineWire
import NIOCore

/// How the simulator checks a Bedrock request's credentials: an `Authorization` header of
/// SigV4's shape (credential scope for service `bedrock`, signed `host` and `x-amz-date`, a
/// 64-digit signature) or a bearer API key. With credentials it also recomputes the signature,
/// so a gateway that signs the wrong path, host or body is refused as AWS would refuse it.
struct BedrockAuthentication: Sendable {
    let credentials: AWSCredentials?

    func refusal(for request: Request, body: ByteBufferView) -> Response? {
        guard let authorization = request.headers[.authorization] else {
            return Self.errorResponse(403, type: "MissingAuthenticationTokenException", "Missing Authentication Token")
        }
        if authorization.hasPrefix("Bearer ") {
            return authorization.count > 7 ? nil : Self.errorResponse(403, type: "UnrecognizedClientException", "The bearer token is empty.")
        }
        guard let parsed = Self.parse(authorization),
              let amzDate = request.headers[HTTPField.Name("x-amz-date")!], amzDate.count == 16, amzDate.hasPrefix(parsed.date)
        else {
            return Self.errorResponse(403, type: "IncompleteSignatureException",
                                      "Authorization header requires AWS4-HMAC-SHA256 with Credential, SignedHeaders and Signature, and an x-amz-date header.")
        }
        guard let credentials else { return nil }
        guard parsed.accessKeyID == credentials.accessKeyID else {
            return Self.errorResponse(403, type: "UnrecognizedClientException", "The security token included in the request is invalid.")
        }
        var signed: [(String, String)] = []
        for name in parsed.signedHeaders {
            let value = name == "host" ? request.head.authority : HTTPField.Name(name).flatMap { request.headers[values: $0].joined(separator: ",") }
            guard let value else {
                return Self.errorResponse(403, type: "IncompleteSignatureException", "Signed header '\(name)' is missing from the request.")
            }
            signed.append((name, value))
        }
        let signer = AWSSignatureV4(credentials: credentials, region: parsed.region, service: "bedrock")
        let expected = signer.signature(method: request.method.rawValue, path: request.uri.path, query: [], signedHeaders: signed,
                                        body: body, dateTime: amzDate)
        guard expected.signature == parsed.signature else {
            return Self.errorResponse(403, type: "InvalidSignatureException",
                                      "The request signature we calculated does not match the signature you provided.")
        }
        return nil
    }

    struct ParsedAuthorization {
        var accessKeyID: String
        var date: String
        var region: String
        var signedHeaders: [String]
        var signature: String
    }

    /// `AWS4-HMAC-SHA256 Credential=ID/DATE/REGION/bedrock/aws4_request, SignedHeaders=a;b, Signature=HEX`.
    static func parse(_ header: String) -> ParsedAuthorization? {
        let prefix = AWSSignatureV4.algorithm + " "
        guard header.hasPrefix(prefix) else { return nil }
        var fields: [String: String] = [:]
        for part in header.dropFirst(prefix.count).split(separator: ",") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1).map(String.init)
            if pair.count == 2 { fields[pair[0]] = pair[1] }
        }
        guard let credential = fields["Credential"]?.split(separator: "/").map(String.init), credential.count == 5,
              credential[1].count == 8, credential[1].allSatisfy(\.isNumber), !credential[2].isEmpty,
              credential[3] == "bedrock", credential[4] == "aws4_request",
              let signedHeaders = fields["SignedHeaders"]?.split(separator: ";").map(String.init),
              signedHeaders.contains("host"), signedHeaders.contains("x-amz-date"),
              let signature = fields["Signature"], signature.count == 64, signature.allSatisfy(\.isHexDigit)
        else { return nil }
        return ParsedAuthorization(accessKeyID: credential[0], date: credential[1], region: credential[2], signedHeaders: signedHeaders,
                                   signature: signature)
    }

    /// Bedrock's error shape: `{"message"}` with the type in `x-amzn-ErrorType`.
    static func errorResponse(_ status: Int, type: String, _ message: String) -> Response {
        var response = jsonResponse(HTTPResponse.Status(code: status), BedrockError.body(message: message))
        response.headers[HTTPField.Name("x-amzn-ErrorType")!] = "\(type):http://internal.amazon.com/coral/com.amazon.bedrock/"
        return response
    }
}
