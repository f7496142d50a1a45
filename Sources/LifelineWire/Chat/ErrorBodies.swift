/// Error bodies in each API's own shape.
public enum ErrorBody {
    /// `{"error":{"message","type","param","code"}}`
    public static func openAI(message: String, type: String, param: String? = nil, code: String? = nil) -> JSONValue {
        ["error": ["message": .string(message), "type": .string(type),
                   "param": param.map(JSONValue.string) ?? .null, "code": code.map(JSONValue.string) ?? .null]]
    }

    /// `{"type":"error","error":{"type","message"}}`
    public static func anthropic(message: String, type: String) -> JSONValue {
        ["type": "error", "error": ["type": .string(type), "message": .string(message)]]
    }

    /// OpenAI's error type for an HTTP status.
    public static func openAIType(status: Int) -> String {
        switch status {
        case 400, 404, 413, 422: "invalid_request_error"
        case 401: "authentication_error"
        case 403: "permission_error"
        case 429: "rate_limit_error"
        case 503: "service_unavailable"
        default: "api_error"
        }
    }

    /// Anthropic's error type for an HTTP status.
    public static func anthropicType(status: Int) -> String {
        switch status {
        case 400, 413, 422: status == 413 ? "request_too_large" : "invalid_request_error"
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 429: "rate_limit_error"
        case 503, 529: "overloaded_error"
        default: "api_error"
        }
    }
}
