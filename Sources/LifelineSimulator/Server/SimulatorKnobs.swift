import LifelineWire

/// How the simulator misbehaves; set by flags at start and changed live at `/sim/control`.
public struct SimulatorKnobs: Sendable, Equatable {
    /// Delay before the first token.
    public var ttftMilliseconds = 0
    /// Token pace; 0 sends as fast as possible.
    public var tokensPerSecond = 0.0
    /// Share of requests answered with `errorStatus`.
    public var errorRate = 0.0
    public var errorStatus = 500
    /// The message of injected errors; nil: a fixed sentence naming the status. A drill may make
    /// it quote a key, as real providers do on a 401.
    public var errorMessage: String?
    /// Share of requests answered 429 with `Retry-After: retryAfterSeconds`.
    public var rateLimitRate = 0.0
    public var retryAfterSeconds = 1
    /// Cut the connection after this many tokens; 0 never does.
    public var disconnectAfterTokens = 0
    /// End a stream after this many tokens with the protocol's in-band error for `errorStatus`
    /// (OpenAI's error chunk, Anthropic's `error` event, Bedrock's exception message); 0 never does.
    public var streamErrorAfterTokens = 0
    /// Accept requests and never answer.
    public var hang = false
    /// Requests served at once; more wait their turn (so time to first token grows with load,
    /// as it does at a real provider). 0 is unlimited.
    public var capacity = 0
    /// The content filter: `prompt` refuses every prompt, `completion` cuts every answer halfway
    /// with `content_filter`; each in its protocol's own way.
    public var contentFilter = ContentFilter.off
    /// Answer a trailing assistant message (a prefill) from the start, as a chat server that takes
    /// it for an earlier turn does (llama.cpp's Python server among them): the answer is the one
    /// the request gets without it.
    public var restartOnPrefill = false

    public enum ContentFilter: String, Sendable, CaseIterable { case off, prompt, completion }

    public init() {}

    static let fields = ["ttft_ms", "tokens_per_second", "error_rate", "error_status", "error_message", "rate_limit_rate", "retry_after_s",
                         "disconnect_after_tokens", "stream_error_after_tokens", "hang", "capacity", "content_filter",
                         "restart_on_prefill"]

    public var json: JSONValue {
        ["ttft_ms": .number(Double(ttftMilliseconds)), "tokens_per_second": .number(tokensPerSecond),
         "error_rate": .number(errorRate), "error_status": .number(Double(errorStatus)), "error_message": errorMessage.map(JSONValue.string) ?? .null,
         "rate_limit_rate": .number(rateLimitRate), "retry_after_s": .number(Double(retryAfterSeconds)),
         "disconnect_after_tokens": .number(Double(disconnectAfterTokens)),
         "stream_error_after_tokens": .number(Double(streamErrorAfterTokens)), "hang": .bool(hang), "capacity": .number(Double(capacity)),
         "content_filter": .string(contentFilter.rawValue), "restart_on_prefill": .bool(restartOnPrefill)]
    }

    /// Applies the fields present in `json`; names the first bad field.
    public mutating func update(from json: JSONValue) throws(RequestError) {
        guard let object = json.objectValue else { throw RequestError("expected a JSON object", param: nil) }
        if let unknown = object.keys.first(where: { !Self.fields.contains($0) }) {
            throw RequestError("unknown knob '\(unknown)'; known: \(Self.fields.joined(separator: ", "))", param: unknown)
        }
        func number(_ key: String, _ range: ClosedRange<Double>) throws(RequestError) -> Double? {
            guard let value = object[key] else { return nil }
            guard let number = value.doubleValue, range.contains(number) else {
                throw RequestError("'\(key)' must be a number from \(range.lowerBound) to \(range.upperBound)", param: key)
            }
            return number
        }
        if let v = try number("ttft_ms", 0...3_600_000) { ttftMilliseconds = Int(v) }
        if let v = try number("tokens_per_second", 0...1_000_000) { tokensPerSecond = v }
        if let v = try number("error_rate", 0...1) { errorRate = v }
        if let v = try number("error_status", 400...599) { errorStatus = Int(v) }
        if let v = try number("rate_limit_rate", 0...1) { rateLimitRate = v }
        if let v = try number("retry_after_s", 0...86_400) { retryAfterSeconds = Int(v) }
        if let v = try number("disconnect_after_tokens", 0...1_000_000) { disconnectAfterTokens = Int(v) }
        if let v = try number("stream_error_after_tokens", 0...1_000_000) { streamErrorAfterTokens = Int(v) }
        if let v = try number("capacity", 0...1_000_000) { capacity = Int(v) }
        if let value = object["error_message"] {
            guard value.isNull || value.stringValue != nil else {
                throw RequestError("'error_message' must be a string or null", param: "error_message")
            }
            errorMessage = value.stringValue
        }
        if let value = object["content_filter"] {
            guard let filter = value.stringValue.flatMap(ContentFilter.init(rawValue:)) else {
                throw RequestError("'content_filter' must be off, prompt or completion", param: "content_filter")
            }
            contentFilter = filter
        }
        if let value = object["hang"] {
            guard let hang = value.boolValue else { throw RequestError("'hang' must be a boolean", param: "hang") }
            self.hang = hang
        }
        if let value = object["restart_on_prefill"] {
            guard let restart = value.boolValue else {
                throw RequestError("'restart_on_prefill' must be a boolean", param: "restart_on_prefill")
            }
            restartOnPrefill = restart
        }
    }
}
