import Hummingbird
import LifelineWire
import NIOCore

/// Everything the gateway refuses or fails with; rendered in each API's shape in one place.
public struct GatewayError: Error, Sendable {
    public var status: Int
    public var message: String
    public var param: String?
    public var code: String?
    public var retryAfterSeconds: Int?

    public init(status: Int, message: String, param: String? = nil, code: String? = nil, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.retryAfterSeconds = retryAfterSeconds
    }

    init(_ error: RequestError) {
        let status = switch error.kind {
        case .invalid: 400
        case .notFound: 404
        case .tooLarge: 413
        }
        self.init(status: status, message: error.message, param: error.param)
    }

    /// Names the models the caller may use (`usable`), and the closest one when the name looks mistyped.
    static func unknownModel(_ name: String, usable: [String]) -> GatewayError {
        let shown = name.count > 100 ? String(name.prefix(100)) + "…" : name
        var message = "The model '\(shown)' does not exist or you do not have access to it."
        if let closest = ClosestName.find(name, among: usable) { message += " Did you mean '\(closest)'?" }
        message += usable.isEmpty ? " No model is available to this key." : " Available models: \(listed(usable))."
        return GatewayError(status: 404, message: message, param: "model", code: "model_not_found")
    }

    /// Up to 20 names, then how many more.
    static func listed(_ names: [String]) -> String {
        let shown = names.prefix(20).joined(separator: ", ")
        return names.count > 20 ? shown + " and \(names.count - 20) more" : shown
    }

    /// The client closed the connection before its answer began; nobody reads this, but the
    /// request is recorded with it (499, as nginx logs it) and counts neither way in the SLOs.
    static let clientClosed = GatewayError(status: 499, message: "The client closed the request.", code: "client_closed_request")

    static func tooLarge(limit: Int) -> GatewayError {
        GatewayError(status: 413, message: "The request body is larger than the limit of \(limit) bytes.", code: "request_too_large")
    }

    static func malformedJSON(_ detail: String) -> GatewayError {
        GatewayError(status: 400, message: "We could not parse the JSON body of your request: \(detail).", code: "invalid_json")
    }

    /// The JSON error body in the shape of `api` (a client API: OpenAI's, else Anthropic's).
    func body(for api: WireProtocol) -> JSONValue {
        api == .anthropic
            ? ErrorBody.anthropic(message: message, type: ErrorBody.anthropicType(status: status))
            : ErrorBody.openAI(message: message, type: ErrorBody.openAIType(status: status), param: param, code: code)
    }

    func response(for api: WireProtocol, headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "application/json"
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        return Response(status: .init(code: status), headers: headers,
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONCoding.encode(body(for: api)))))
    }
}
