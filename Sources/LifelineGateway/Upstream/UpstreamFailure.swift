import LifelineWire

/// Why an attempt at an upstream deployment failed, and whether another deployment may help.
public struct UpstreamFailure: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case connect
        case timeout
        /// The upstream answered with an error status.
        case status(Int)
        /// The connection ended before the answer did.
        case disconnected
        /// The upstream sent something that is not its protocol.
        case malformed
    }

    public var kind: Kind
    /// The upstream's own words (or the transport's): for logs, which are redacted, never for clients.
    public var message: String
    /// From an upstream 429 or 503 `Retry-After`.
    public var retryAfterSeconds: Double?
    /// The upstream's own error body, for the `param` of an error the client caused.
    public var body: JSONValue?

    /// An upstream's content filter refused the prompt (Azure's 400 `content_filter`, Gemini's
    /// `promptFeedback.blockReason`): the request's fault, in one shape whatever the protocol.
    static func contentFilter(_ message: String) -> UpstreamFailure {
        UpstreamFailure(.status(400), message, body: ["error": ["code": "content_filter", "message": .string(message)]])
    }
    /// The deployment that failed, once the attempt is attributed.
    public var deployment: String?
    /// False when the request never left Lifeline: no connection could be had (refused, or not
    /// made within `connect_ms`). Trying the same deployment again then repeats nothing it saw.
    public var reachedUpstream = true

    public init(_ kind: Kind, _ message: String, retryAfterSeconds: Double? = nil, body: JSONValue? = nil) {
        self.kind = kind
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
        self.body = body
    }

    /// Another deployment may succeed: the fault is the deployment's, not the request's.
    /// 401/403 (credentials) and 404 (base URL or model) are the deployment's configuration.
    public var isRetryable: Bool {
        switch kind {
        case .connect, .timeout, .disconnected, .malformed: true
        case .status(let status):
            status == 408 || status == 409 || status == 429 || status >= 500 || DeploymentProblem.Kind(status: status) != nil
        }
    }

    public var description: String { "\(kind): \(message)" }

    /// What went wrong in Lifeline's own words, with no upstream text: safe to show a client.
    public var summary: String {
        let what = switch kind {
        case .connect: "could not be reached"
        case .timeout: "timed out"
        case .status(let status): "answered HTTP \(status)"
        case .disconnected: "closed the connection before the answer ended"
        case .malformed: "sent an answer Lifeline could not read"
        }
        return deployment.map { "deployment '\($0)' \(what)" } ?? "the upstream \(what)"
    }

    /// The failure for a request's log line: its kind, and for a transport failure the
    /// transport's own name for it (a connect timeout, a read timeout, a reset). An upstream's
    /// error body never appears here: for a status it is only the number.
    public var cause: String {
        switch kind {
        case .connect: "connect: \(message.prefix(120))"
        case .timeout: "timeout: \(message.prefix(120))"
        case .disconnected: "disconnected: \(message.prefix(120))"
        case .status(let status): "status \(status)"
        case .malformed: "malformed answer"
        }
    }

    /// The same failure, attributed to the deployment it happened at.
    func at(_ deployment: Deployment) -> UpstreamFailure {
        var attributed = self
        attributed.deployment = deployment.name
        return attributed
    }

    /// The attempt was cancelled by Lifeline itself (a hedge that lost, a client that left).
    public var isCancellation: Bool { kind == .disconnected && message == "cancelled" }
}
