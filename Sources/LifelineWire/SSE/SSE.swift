/// Server-sent events framing.
public enum SSE {
    public static func data(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = Array("data: ".utf8)
        out.reserveCapacity(payload.count + 8)
        out += payload
        out += [0x0A, 0x0A]
        return out
    }

    public static func event(_ name: String, _ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = Array("event: \(name)\n".utf8)
        out += data(payload)
        return out
    }

    /// A comment line, which every SSE client ignores.
    public static func comment(_ text: String) -> [UInt8] {
        Array(": \(text)\n\n".utf8)
    }
}

/// One event read from an SSE stream.
public struct SSEEvent: Sendable, Equatable {
    public var event: String?
    public var data: [UInt8]

    public init(event: String?, data: [UInt8]) {
        self.event = event
        self.data = data
    }
}

/// Reads SSE events from bytes that arrive in arbitrary pieces.
public struct SSEParser: Sendable {
    private var buffer: [UInt8] = []
    private var scanned = 0
    private var eventName: String?
    private var dataLines: [[UInt8]] = []
    /// Guards against an upstream that never ends a line.
    public static let maximumLineLength = 8 * 1024 * 1024

    public init() {}

    public struct LineTooLong: Error {}

    /// Lines end with LF or CR LF; a lone CR is not a line end here (no upstream in use sends one).
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws -> [SSEEvent] {
        buffer.append(contentsOf: bytes)
        var events: [SSEEvent] = []
        var lineStart = 0
        var index = scanned
        while index < buffer.count {
            if buffer[index] == 0x0A {
                var lineEnd = index
                if lineEnd > lineStart, buffer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                if let event = takeLine(buffer[lineStart..<lineEnd]) { events.append(event) }
                lineStart = index + 1
            }
            index += 1
        }
        if lineStart > 0 { buffer.removeFirst(lineStart) }
        scanned = buffer.count
        if buffer.count > Self.maximumLineLength { throw LineTooLong() }
        return events
    }

    private mutating func takeLine(_ line: ArraySlice<UInt8>) -> SSEEvent? {
        if line.isEmpty {
            defer { eventName = nil; dataLines = [] }
            guard !dataLines.isEmpty else { return nil }
            var data: [UInt8] = []
            for (offset, piece) in dataLines.enumerated() {
                if offset > 0 { data.append(0x0A) }
                data += piece
            }
            return SSEEvent(event: eventName, data: data)
        }
        if line.first == UInt8(ascii: ":") { return nil }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        let field = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
        var value = colon < line.endIndex ? line[(colon + 1)...] : []
        if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        switch field {
        case "event": eventName = String(decoding: value, as: UTF8.self)
        case "data": dataLines.append(Array(value))
        default: break
        }
        return nil
    }
}
