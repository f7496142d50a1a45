import Foundation
import HTTPTypes
import Hummingbird
import LifelineWire

/// `server.allowed_hosts`: the `Host` values this server answers to. A web page on another site
/// that gets a browser to send requests here (DNS rebinding makes its own name point at
/// 127.0.0.1) still names its own host in `Host`, so checking it keeps such pages out.
struct HostAllowlist: Sendable, Equatable {
    /// One accepted host: without a port it matches that host on any port.
    struct Entry: Sendable, Equatable, CustomStringConvertible {
        var host: String
        var port: Int?

        /// `example.com`, `example.com:8080`, `127.0.0.1`, `[::1]:8080` or `::1`; nil when malformed.
        init?(_ text: String) {
            var rest = Substring(text.trimmingCharacters(in: .whitespaces).lowercased())
            var port: Int?
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else { return nil }
                let after = rest[rest.index(after: close)...]
                if !after.isEmpty {
                    guard after.hasPrefix(":"), let parsed = Int(after.dropFirst()), (1...65535).contains(parsed) else { return nil }
                    port = parsed
                }
                rest = rest[rest.index(after: rest.startIndex)..<close]
                guard IPAddressRange.parse(String(rest)) != nil else { return nil }
            } else if rest.filter({ $0 == ":" }).count == 1, let colon = rest.firstIndex(of: ":") {
                guard let parsed = Int(rest[rest.index(after: colon)...]), (1...65535).contains(parsed) else { return nil }
                port = parsed
                rest = rest[..<colon]
            } else if rest.contains(":") {
                guard IPAddressRange.parse(String(rest)) != nil else { return nil }
            }
            if rest.hasSuffix(".") { rest = rest.dropLast() }
            guard !rest.isEmpty, rest.count <= 253,
                  rest.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" || $0 == ":") })
            else { return nil }
            host = String(rest)
            self.port = port
        }

        init(host: String, port: Int? = nil) {
            self.host = host.lowercased()
            self.port = port
        }

        var description: String {
            let name = host.contains(":") ? "[\(host)]" : host
            return port.map { "\(name):\($0)" } ?? name
        }

        func matches(_ other: Entry) -> Bool { host == other.host && (port == nil || port == other.port) }
    }

    /// Nil: any host (an explicit `"*"`).
    let entries: [Entry]?

    init(_ config: LifelineConfig) {
        guard let configured = config.server.allowedHosts else {
            entries = Self.defaults(config)
            return
        }
        entries = configured.contains("*") ? nil : configured.compactMap(Entry.init)
    }

    /// The bind address, `localhost`, `127.0.0.1` and `[::1]` when bound to loopback, and the
    /// status page's host (with its port when its URL has one).
    static func defaults(_ config: LifelineConfig) -> [Entry] {
        var entries: [Entry] = []
        func add(_ entry: Entry?) { if let entry, !entries.contains(entry) { entries.append(entry) } }
        add(Entry(config.server.host) ?? Entry(host: config.server.host))
        add(Entry(host: "localhost"))
        if AuthConfig.isLoopback(config.server.host) {
            add(Entry(host: "127.0.0.1"))
            add(Entry(host: "::1"))
        }
        if let page = config.status.pageURL.flatMap(URL.init(string:)), let host = page.host {
            add(Entry(host: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))))
            if let port = page.port { add(Entry(host: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: port)) }
        }
        return entries
    }

    /// Whether a request naming `host` is answered. A request without `Host` (HTTP/1.0 tools) is:
    /// browsers always send one, so it cannot come from a web page.
    func allows(_ host: String?) -> Bool {
        guard let entries else { return true }
        guard let host, !host.isEmpty else { return true }
        if let (name, port) = Self.plainHostAndPort(host) {
            return entries.contains { $0.host.utf8.elementsEqual(name) && ($0.port == nil || $0.port == port) }
        }
        return allowsParsed(host)
    }

    /// `allows` through the full parser.
    func allowsParsed(_ host: String) -> Bool {
        guard let entries else { return true }
        guard let presented = Entry(host) else { return false }
        return entries.contains { $0.matches(presented) }
    }

    /// The usual `Host` — lowercase letters, digits, dots and dashes, not ending in a dot, with an
    /// optional port — split without the full parser (which would read it the same way); nil for
    /// anything else.
    static func plainHostAndPort(_ text: String) -> (name: Substring.UTF8View, port: Int?)? {
        let bytes = text.utf8
        guard bytes.count <= 259 else { return nil }
        var port: Int?
        var nameEnd = bytes.endIndex
        if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
            let digits = bytes[bytes.index(after: colon)...]
            guard (1...5).contains(digits.count), digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
            let value = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            guard (1...65535).contains(value) else { return nil }
            port = value
            nameEnd = colon
        }
        let name = text[..<nameEnd].utf8
        guard !name.isEmpty, name.count <= 253, name.last != UInt8(ascii: "."),
              name.allSatisfy({ (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                  || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") })
        else { return nil }
        return (name, port)
    }

    var description: String { entries.map { $0.map(\.description).joined(separator: ", ") } ?? "*" }
}

/// Refuses, with 421 and a JSON error, any request whose `Host` is not in `server.allowed_hosts`.
struct HostAllowlistMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let allowlist: HostAllowlist
    let metrics: GatewayMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let host = request.head.authority ?? request.headers[.host]
        guard allowlist.allows(host) else {
            metrics.requestRefused(reason: .hostNotAllowed)
            let shown = String((host ?? "").prefix(100))
            let error = GatewayError(status: 421, message: "This server does not answer to host '\(shown)'; add it to server.allowed_hosts if it is yours.",
                                     param: "host", code: "host_not_allowed")
            return error.response(for: request.uri.path.hasPrefix("/v1/messages") ? .anthropic : .openai)
        }
        return try await next(request, context)
    }
}

extension HTTPField.Name {
    static let host = Self("host")!
}
