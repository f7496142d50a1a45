import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /` (chat), `GET /console` (operator console) and `GET /assets/{file}`.
///
/// Every answer carries a strict Content-Security-Policy: scripts and styles only from this
/// origin, never inline, so text that a model or the server produced cannot run even if a bug
/// ever put it into the page as markup.
enum WebUIRoutes {
    static let contentSecurityPolicy = [
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
        "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
    ].joined(separator: "; ")

    static func add(to router: Router<GatewayRequestContext>) {
        router.get("/") { request, _ in serve(WebAssets.chatPage, request) }
        router.get("/console") { request, _ in serve(WebAssets.consolePage, request) }
        router.get("/assets/**") { request, context in
            let segments = context.parameters.getCatchAll()
            // Names are looked up in a fixed table, so nothing outside it can be read; a path that
            // tries to climb or nest is refused outright rather than looked up.
            guard segments.count == 1, let name = segments.first,
                  !name.contains(".."), !name.contains("%"), !name.contains("\\")
            else { return plain(.badRequest, "Asset paths are single file names.") }
            guard let asset = WebAssets.files[String(name)] else { return plain(.notFound, "No such asset.") }
            return serve(asset, request)
        }
    }

    /// The asset with its type, security headers and a validator; `304` when the browser's copy is current.
    /// `no-cache` means "revalidate before use": the file names carry no version, and a revalidation
    /// costs one round trip with an empty answer.
    static func serve(_ asset: WebAsset, _ request: Request) -> Response {
        var headers = securityHeaders
        headers[.eTag] = asset.etag
        headers[.cacheControl] = "no-cache"
        if let presented = request.headers[.ifNoneMatch], presented.split(separator: ",").contains(where: {
            $0.trimmingCharacters(in: .whitespaces) == asset.etag || $0.trimmingCharacters(in: .whitespaces) == "*"
        }) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = asset.contentType
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: asset.bytes)))
    }

    static var securityHeaders: HTTPFields {
        var headers = HTTPFields()
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[referrerPolicy] = "no-referrer"
        headers[.crossOriginResourcePolicy] = "same-origin"
        return headers
    }

    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!

    static func plain(_ status: HTTPResponse.Status, _ message: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = "text/plain; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: message + "\n")))
    }
}
