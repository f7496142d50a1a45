import Crypto
import Foundation

/// The chat page, the operator console and their scripts and styles, as bytes inside the binary.
///
/// The files live as plain HTML, CSS and JavaScript under `WebUI/Assets/` and SwiftPM embeds them
/// (`.embedInCode` in Package.swift). Embedding rather than `.copy` + `Bundle.module` because the
/// bundle is a directory beside the executable that must travel with it: a binary copied elsewhere
/// (an install, a container image) would lose its UI, and the generated `Bundle.module` accessor
/// stops the process when the bundle is missing. Embedded bytes work the same under `swift run`,
/// `swift test` and a copied binary, on Linux and macOS, with no lookup at run time.
struct WebAsset: Sendable {
    let bytes: [UInt8]
    let contentType: String
    /// A strong validator for `If-None-Match`; the assets change only with the binary.
    let etag: String

    init(_ bytes: [UInt8], contentType: String) {
        self.bytes = bytes
        self.contentType = contentType
        etag = "\"" + SHA256.hash(data: Data(bytes)).prefix(12).map { String(format: "%02x", $0) }.joined() + "\""
    }
}

enum WebAssets {
    static let chatPage = WebAsset(PackageResources.index_html, contentType: "text/html; charset=utf-8")
    static let consolePage = WebAsset(PackageResources.console_html, contentType: "text/html; charset=utf-8")

    /// Everything served under `/assets/`, by file name. Only names listed here are ever served.
    static let files: [String: WebAsset] = [
        "app.css": WebAsset(PackageResources.app_css, contentType: "text/css; charset=utf-8"),
        "status.css": WebAsset(PackageResources.status_css, contentType: "text/css; charset=utf-8"),
        "icon.svg": WebAsset(PackageResources.icon_svg, contentType: "image/svg+xml"),
        "dom.js": javaScript(PackageResources.dom_js),
        "api.js": javaScript(PackageResources.api_js),
        "markdown.js": javaScript(PackageResources.markdown_js),
        "banner.js": javaScript(PackageResources.banner_js),
        "store.js": javaScript(PackageResources.store_js),
        "chat.js": javaScript(PackageResources.chat_js),
        "metrics.js": javaScript(PackageResources.metrics_js),
        "console.js": javaScript(PackageResources.console_js),
    ]

    private static func javaScript(_ bytes: [UInt8]) -> WebAsset {
        WebAsset(bytes, contentType: "text/javascript; charset=utf-8")
    }
}
