import Crypto
import Foundation

/// An AWS access key: the id, its secret and, for temporary credentials, the session token.
public struct AWSCredentials: Sendable, Equatable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

/// AWS Signature Version 4 for one service in one region (header signing, not presigned URLs).
///
/// Written here because no AWS SDK is in the package mirror; it is pure (the time is an
/// argument) and checked against AWS's published SigV4 test suite. HMAC and SHA-256 are
/// swift-crypto's.
public struct AWSSignatureV4: Sendable {
    public var credentials: AWSCredentials
    public var region: String
    public var service: String

    public static let algorithm = "AWS4-HMAC-SHA256"

    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The headers to add to a request so AWS accepts it: `x-amz-date`, `x-amz-security-token`
    /// (with temporary credentials) and `authorization`. `path` is the path as sent on the wire
    /// (already percent-encoded); `query` holds decoded names and values; `headers` are those to
    /// sign, `host` among them.
    public func sign(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)],
                     body: some Collection<UInt8>, date: Date) -> [(String, String)]
    {
        let stamp = Self.timestamp(date)
        var signed = headers
        signed.append(("x-amz-date", stamp.dateTime))
        if let token = credentials.sessionToken { signed.append(("x-amz-security-token", token)) }
        let (signature, signedHeaders) = self.signature(method: method, path: path, query: query, signedHeaders: signed, body: body,
                                                        dateTime: stamp.dateTime)
        let authorization = "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(scope(date: stamp.date)), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        var added = [("x-amz-date", stamp.dateTime)]
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        added.append(("authorization", authorization))
        return added
    }

    /// `yyyyMMdd/region/service/aws4_request`.
    public func scope(date: String) -> String { "\(date)/\(region)/\(service)/aws4_request" }

    /// The signature (hex) and signed-header list of a request whose signed headers are all given,
    /// `x-amz-date` among them; for signing, and for a server that checks a signature.
    public func signature(method: String, path: String, query: [(String, String)], signedHeaders: [(String, String)],
                          body: some Collection<UInt8>, dateTime: String) -> (signature: String, signedHeaders: String)
    {
        let canonical = Self.canonicalRequest(method: method, path: path, query: query, headers: signedHeaders, payloadHash: Self.sha256Hex(body))
        let date = String(dateTime.prefix(8))
        let toSign = Self.stringToSign(dateTime: dateTime, scope: scope(date: date), canonicalRequest: canonical.text)
        return (Self.hex(HMAC<SHA256>.authenticationCode(for: Array(toSign.utf8), using: signingKey(date: date))), canonical.signedHeaders)
    }

    /// The key derived from the secret for one day, region and service.
    func signingKey(date: String) -> SymmetricKey {
        func hmac(_ key: SymmetricKey, _ text: String) -> SymmetricKey {
            SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key)))
        }
        let secret = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        let dateKey = hmac(secret, date)
        let regionKey = hmac(dateKey, region)
        let serviceKey = hmac(regionKey, service)
        return hmac(serviceKey, "aws4_request")
    }

    /// The canonical request and its signed-header list, as the SigV4 specification defines them.
    static func canonicalRequest(method: String, path: String, query: [(String, String)], headers: [(String, String)],
                                 payloadHash: String) -> (text: String, signedHeaders: String)
    {
        // Services other than S3 sign the path encoded once more than it is sent.
        let canonicalPath = path.isEmpty ? "/" : uriEncode(path, keepSlash: true)
        let encodedQuery: [(name: String, value: String)] = query.map { pair in
            (uriEncode(pair.0, keepSlash: false), uriEncode(pair.1, keepSlash: false))
        }
        let sortedQuery = encodedQuery.sorted { left, right in left.name == right.name ? left.value < right.value : left.name < right.name }
        let canonicalQuery = sortedQuery.map { pair in pair.name + "=" + pair.value }.joined(separator: "&")
        var byName: [String: [String]] = [:]
        for (name, value) in headers { byName[name.lowercased(), default: []].append(trimmed(value)) }
        let names = byName.keys.sorted()
        let canonicalHeaders = names.map { name in name + ":" + (byName[name] ?? []).joined(separator: ",") + "\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let text = [method, canonicalPath, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].joined(separator: "\n")
        return (text, signedHeaders)
    }

    static func stringToSign(dateTime: String, scope: String, canonicalRequest: String) -> String {
        [algorithm, dateTime, scope, hex(SHA256.hash(data: Array(canonicalRequest.utf8)))].joined(separator: "\n")
    }

    /// A header value with its ends trimmed and each run of spaces made one.
    static func trimmed(_ value: String) -> String {
        var result = ""
        var lastWasSpace = false
        for character in value.trimmingCharacters(in: .whitespaces) {
            let isSpace = character == " " || character == "\t"
            if isSpace, lastWasSpace { continue }
            result.append(isSpace ? " " : character)
            lastWasSpace = isSpace
        }
        return result
    }

    /// RFC 3986 encoding: every byte but the unreserved characters (and `/` when kept) as %XX.
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                result.append("/")
            default:
                result += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0x0F, radix: 16, uppercase: true)
            }
        }
        return result
    }

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes { out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 0x0F)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func hex(_ digest: SHA256.Digest) -> String { hex(Array(digest)) }
    static func sha256Hex(_ bytes: some Collection<UInt8>) -> String { hex(SHA256.hash(data: Array(bytes))) }
    static func hex(_ code: HMAC<SHA256>.MAC) -> String { hex(Array(code)) }

    /// `yyyyMMdd` and `yyyyMMdd'T'HHmmss'Z'` in UTC, computed without a formatter or a locale.
    static func timestamp(_ date: Date) -> (date: String, dateTime: String) {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (the proleptic Gregorian calendar, in 400-year eras).
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let day8 = pad(year, 4) + pad(month, 2) + pad(day, 2)
        let time = pad(secondOfDay / 3600, 2) + pad(secondOfDay % 3600 / 60, 2) + pad(secondOfDay % 60, 2)
        return (day8, "\(day8)T\(time)Z")
    }
}
