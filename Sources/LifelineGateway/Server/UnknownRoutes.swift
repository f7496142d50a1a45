import HTTPTypes
import Hummingbird
import LifelineWire
import NIOCore

/// The closest of some names to a mistyped one, by edit distance; nil when none is close.
enum ClosestName {
    static func find(_ wanted: String, among names: [String]) -> String? {
        let target = Array(wanted.lowercased())
        let limit = max(2, target.count / 3)
        var best: (name: String, distance: Int)?
        for name in names {
            let distance = editDistance(target, Array(name.lowercased()))
            if distance <= limit, distance < (best?.distance ?? .max) { best = (name, distance) }
        }
        return best?.name
    }

    /// Levenshtein distance: insertions, deletions and substitutions of one character each.
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

/// The gateway's routes as path patterns, to answer a request that matches none of them: a
/// known path with the wrong method gets 405 with `Allow`, an unknown path 404 naming the
/// closest known route. Both in the error shape of the API the path belongs to.
struct RouteCatalog: Sendable {
    struct Route: Sendable {
        var method: String
        var pattern: String
        var segments: [String]
    }

    let routes: [Route]

    init(_ routes: [(method: String, path: String)]) {
        self.routes = routes.map { Route(method: $0.method, pattern: $0.path, segments: Self.segments($0.path)) }
    }

    static func segments(_ path: String) -> [String] { path.split(separator: "/").map(String.init) }

    static func isParameter(_ segment: String) -> Bool { segment.contains("{") || segment == "*" }

    static func matches(_ route: Route, _ segments: [String]) -> Bool {
        for (index, part) in route.segments.enumerated() {
            if part == "**" { return true }
            guard index < segments.count else { return false }
            if !isParameter(part), part != segments[index] { return false }
        }
        return route.segments.count == segments.count
    }

    /// The methods served at `path`, sorted; empty when no route has that path.
    func methods(at path: String) -> [String] {
        let segments = Self.segments(path)
        return Set(routes.filter { Self.matches($0, segments) }.map(\.method)).sorted()
    }

    /// The known route closest to `path` (a parameter takes the request's segment at its place).
    func closest(to path: String) -> String? {
        let segments = Self.segments(path)
        var candidates: [String: String] = [:]
        for route in routes where !route.segments.contains("**") && !route.segments.isEmpty {
            let filled = route.segments.enumerated().map { index, part in
                Self.isParameter(part) && index < segments.count ? segments[index] : part
            }
            candidates["/" + filled.joined(separator: "/")] = route.pattern
        }
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        return ClosestName.find(trimmed, among: candidates.keys.sorted()).flatMap { candidates[$0] }
    }

    /// Anthropic's shape for the `/v1/messages` family (asked for, or the closest route to a
    /// mistyped path) and for Anthropic's clients (they send `anthropic-version`); OpenAI's for
    /// the rest of `/v1` and everything else.
    static func api(of path: String, closest: String?, headers: HTTPFields) -> WireProtocol {
        let messages = { (path: String) in path == "/v1/messages" || path.hasPrefix("/v1/messages/") }
        if messages(path) || closest.map(messages) == true { return .anthropic }
        if let name = HTTPField.Name("anthropic-version"), headers[name] != nil { return .anthropic }
        return .openai
    }

    /// 404 or 405 for a request no route took.
    func response(to request: Request) -> Response {
        let path = request.uri.path
        // The path is the caller's: quoted only in part, and only inside the JSON body.
        let shown = path.count > 120 ? String(path.prefix(120)) + "…" : path
        let method = request.method.rawValue
        let allowed = methods(at: path)
        let suggestion = allowed.isEmpty ? closest(to: path) : nil
        let api = Self.api(of: path, closest: suggestion, headers: request.headers)
        let status: Int
        let message: String
        let code: String
        var headers: HTTPFields = [.contentType: "application/json"]
        if !allowed.isEmpty {
            status = 405
            code = "method_not_allowed"
            message = "\(method) is not allowed on \(shown); use \(allowed.joined(separator: " or "))."
            headers[.allow] = allowed.joined(separator: ", ")
        } else {
            status = 404
            code = "unknown_url"
            let hint = suggestion.map { " Did you mean \($0)?" } ?? ""
            message = "Unknown path \(method) \(shown).\(hint)"
        }
        let body: JSONValue = api == .anthropic
            ? ErrorBody.anthropic(message: message, type: status == 404 ? "not_found_error" : "invalid_request_error")
            : ErrorBody.openAI(message: message, type: "invalid_request_error", code: code)
        return Response(status: .init(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONCoding.encode(body))))
    }
}

/// Turns the router's bare 404 into `RouteCatalog`'s answer. Added after every route, it wraps
/// only the router's not-found responder, so a handler's own 404 is never rewritten.
struct UnknownRouteMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let catalog: RouteCatalog

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            return catalog.response(to: request)
        }
    }
}
