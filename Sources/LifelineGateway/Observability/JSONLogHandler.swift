import Foundation
import LifelineWire
import Logging
import Synchronization

/// How `lifeline serve` writes its log: swift-log's human-readable lines, or one JSON object per line.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
}

/// Writes each log event as one JSON object on one line, for log shippers.
///
/// The object has `ts` (UTC, milliseconds), `level`, `logger` (the label), `message`, and every
/// metadata key at the top level. Metadata made from numbers and booleans stays a JSON number or
/// boolean, so `latency_ms` can be summed without parsing. A metadata key that collides with one
/// of the four fixed keys is written with a `meta_` prefix instead of replacing it.
public struct JSONLogHandler: LogHandler {
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
        var fields: [String: JSONValue] = [:]
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        for (key, value) in merged {
            let name = Self.reservedKeys.contains(key) ? "meta_" + key : key
            fields[name] = Self.json(value)
        }
        fields["ts"] = .string(Self.timestamp(Date()))
        fields["level"] = .string(event.level.rawValue)
        fields["logger"] = .string(label)
        fields["message"] = .string(event.message.description)
        var line = JSONCoding.encode(.object(fields))
        line.append(UInt8(ascii: "\n"))
        output.write(line)
    }

    static let reservedKeys: Set<String> = ["ts", "level", "logger", "message"]

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): return .string(text)
        case .stringConvertible(let convertible):
            switch convertible {
            case let bool as Bool: return .bool(bool)
            case let int as Int: return .number(Double(int))
            case let int as Int64: return .number(Double(int))
            case let double as Double: return double.isFinite ? .number(double) : .string(double.description)
            default: return .string(convertible.description)
            }
        case .dictionary(let dictionary): return .object(dictionary.mapValues(json))
        case .array(let array): return .array(array.map(json))
        }
    }

    /// `2025-01-31T12:34:56.789Z`, written by hand: a formatter per line is slow and not thread-safe.
    static func timestamp(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        let milliseconds = Int((interval - interval.rounded(.down)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds), 3))Z"
    }
}

/// Where log lines go. Each line is written whole under a lock, so lines from concurrent
/// requests never interleave.
public final class LogOutput: Sendable {
    private let sink: @Sendable ([UInt8]) -> Void
    private let lock = Mutex(())

    public init(_ sink: @escaping @Sendable ([UInt8]) -> Void) { self.sink = sink }

    public static let standardError = LogOutput { bytes in
        bytes.withUnsafeBufferPointer { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }

    func write(_ line: [UInt8]) {
        lock.withLock { _ in sink(line) }
    }
}
