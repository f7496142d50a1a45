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
    public var message: String
    /// From an upstream 429 or 503 `Retry-After`.
    public var retryAfterSeconds: Double?
    /// The upstream's own error body, forwarded when the client caused the error.
    public var body: JSONValue?

    public init(_ kind: Kind, _ message: String, retryAfterSeconds: Double? = nil, body: JSONValue? = nil) {
        self.kind = kind
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
        self.body = body
    }

    /// Another deployment may succeed: the fault is the upstream's, not the request's.
    public var isRetryable: Bool {
        switch kind {
        case .connect, .timeout, .disconnected, .malformed: true
        case .status(let status): status == 408 || status == 409 || status == 429 || status >= 500
        }
    }

    public var description: String { "\(kind): \(message)" }

    /// The attempt was cancelled by Lifeline itself (a hedge that lost, a client that left).
    public var isCancellation: Bool { kind == .disconnected && message == "cancelled" }
}
