import Foundation
import Logging

/// The human-readable log (`--log-format text`): swift-log's `StreamLogHandler` layout,
/// `TIME LEVEL LABEL: key=value … [SOURCE] MESSAGE`, with every value escaped so that one
/// event is always one line and its fields cannot be forged.
///
/// Written here rather than taken from swift-log because `StreamLogHandler` prints metadata as it
/// is: a client's model name holding a newline would start a second, fake log line. Control
/// characters (newlines, carriage returns, tabs, escape sequences, Unicode line separators) are
/// written as `\n`, `\r`, `\t`, `\u{…}`, and backslashes doubled; a metadata value or key with
/// a space, `=`, `"` or nothing in it is quoted, so `model="x status=200"` stays one field.
public struct TextLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    private let label: String
    private let output: LogOutput

    public init(label: String, output: LogOutput = .standardError, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.output = output
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        if let error = event.error { merged["error.message"] = .string("\(error)") }
        let fields = merged.sorted { $0.key < $1.key }.map { "\(Self.field($0.key))=\(Self.field($0.value))" }
        var line = Self.timestamp() + " \(event.level)" + (label.isEmpty ? "" : " ") + Self.escaped(label) + ":"
        if !fields.isEmpty { line += " " + fields.joined(separator: " ") }
        line += " [\(Self.escaped(event.source))] \(Self.escaped(event.message.description))\n"
        output.write(Array(line.utf8))
    }

    /// A metadata value as one token: escaped, and quoted when it could read as more than one field.
    static func field(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): field(text)
        case .stringConvertible(let convertible): field(convertible.description)
        case .array(let array): "[" + array.map(field).joined(separator: ", ") + "]"
        case .dictionary(let dictionary): "[" + dictionary.sorted { $0.key < $1.key }.map { "\(field($0.key)): \(field($0.value))" }
            .joined(separator: ", ") + "]"
        }
    }

    static func field(_ text: String) -> String {
        let needsQuotes = text.isEmpty || text.unicodeScalars.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "," || $0 == "[" || $0 == "]" }
        let body = escaped(text)
        return needsQuotes ? "\"" + body.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : body
    }

    /// Backslashes doubled; control characters and line separators written as escapes.
    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0 == "\\" || isControl($0) }) else { return text }
        var result = ""
        result.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where isControl(scalar): result += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }

    /// Local time as `2025-01-31T12:34:56+0000`, as swift-log's stream handler writes it.
    static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [Int8](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
