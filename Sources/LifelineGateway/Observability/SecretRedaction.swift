import Logging
import Synchronization

/// The secret values of the running configuration (upstream API keys, the admin token, webhook
/// URLs and headers), so that no log line can carry one even by accident — an upstream error
/// message that quotes the key it was sent, say.
public final class SecretRedactor: Sendable {
    /// The process's redactor: logging is process-wide, and so is the set of secrets.
    public static let shared = SecretRedactor()
    /// Shorter values would turn ordinary words into `[redacted]`; no real key is this short.
    static let minimumLength = 6
    public static let replacement = "[redacted]"

    private let secrets = Mutex<[String]>([])

    public init() {}

    /// Adds secrets; values already known or too short to be a credential are skipped.
    public func register(_ values: some Sequence<String>) {
        secrets.withLock { known in
            for value in values where value.count >= Self.minimumLength && !known.contains(value) {
                known.append(value)
            }
            // Longest first, so a secret that contains another is removed whole.
            known.sort { $0.count > $1.count }
        }
    }

    public func redact(_ text: String) -> String {
        let current = secrets.withLock { $0 }
        var result = text
        for secret in current where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: Self.replacement)
        }
        return result
    }

    func redact(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): return .string(redact(text))
        case .stringConvertible(let convertible):
            if convertible is Bool || convertible is Int || convertible is Double { return value }
            let text = convertible.description
            let clean = redact(text)
            return clean == text ? value : .string(clean)
        case .dictionary(let dictionary): return .dictionary(dictionary.mapValues(redact))
        case .array(let array): return .array(array.map(redact))
        }
    }
}

/// Removes registered secrets from the message and metadata before another handler writes them.
public struct RedactingLogHandler<Wrapped: LogHandler>: LogHandler {
    private var wrapped: Wrapped
    private let redactor: SecretRedactor

    public init(_ wrapped: Wrapped, redactor: SecretRedactor = .shared) {
        self.wrapped = wrapped
        self.redactor = redactor
    }

    public var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    public var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        event.message = Logger.Message(stringLiteral: redactor.redact(event.message.description))
        // Handler-level metadata is included too: it is merged by the wrapped handler.
        var all = wrapped.metadata
        if let own = event.metadata { all.merge(own) { _, new in new } }
        event.metadata = all.isEmpty ? nil : all.mapValues(redactor.redact)
        var clean = wrapped
        clean.metadata = [:]
        clean.log(event: event)
    }
}

/// Builds the loggers `lifeline serve` uses: the chosen format, behind secret redaction.
public enum LogSetup {
    public static func handler(label: String, format: LogFormat, output: LogOutput = .standardError,
                               redactor: SecretRedactor = .shared) -> any LogHandler
    {
        switch format {
        case .text:
            RedactingLogHandler(TextLogHandler(label: label, output: output), redactor: redactor)
        case .json:
            RedactingLogHandler(JSONLogHandler(label: label, output: output), redactor: redactor)
        }
    }
}
