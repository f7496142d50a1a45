import Foundation
import HTTPTypes
import Hummingbird
import LifelineWire

/// Routes that spend upstream quota or store state take only `Content-Type: application/json`.
/// A web page on another site can send a cross-site POST without asking first only as
/// `text/plain`, a form or multipart; asking for JSON makes the browser ask this server first
/// (a CORS preflight, which Lifeline never grants), so such a page cannot use a local gateway.
enum JSONContentType {
    /// A body that must come as JSON: refused unless its `Content-Type` says so, then read within
    /// `limit` bytes.
    static func readBody(_ request: Request, limit: Int, metrics: GatewayMetrics) async throws(GatewayError) -> JSONValue {
        if let refusal = refusal(request, metrics: metrics) { throw refusal }
        return try await readJSON(request, limit: limit)
    }

    /// Nil when the request says its body is JSON; else the error to answer with: 400 when
    /// `Content-Type` is missing, 415 when it names another type.
    private static func refusal(_ request: Request, metrics: GatewayMetrics) -> GatewayError? {
        let error = check(request)
        if error != nil { metrics.requestRefused(reason: .unsupportedContentType) }
        return error
    }

    private static func check(_ request: Request) -> GatewayError? {
        guard let header = request.headers[.contentType] else {
            return GatewayError(status: 400, message: "The request needs 'Content-Type: application/json'; it sent no content-type.",
                                param: "content-type", code: "unsupported_content_type")
        }
        // The usual header, compared as it comes before it is parsed.
        if header == "application/json" { return nil }
        let mediaType = header.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard mediaType != "application/json" else { return nil }
        return GatewayError(status: 415, message: "The request body must be sent as 'Content-Type: application/json', not '\(header.prefix(100))'.",
                            param: "content-type", code: "unsupported_content_type")
    }
}
