/// AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), the envelope of
/// Bedrock's streamed answers: each message is a 12-byte prelude (total length, headers length,
/// CRC32 of those 8 bytes), typed headers, a payload, and a CRC32 of all that came before.
///
/// Written here because no AWS SDK is in the package mirror.
public struct AWSEventStreamMessage: Sendable, Equatable {
    public var headers: [(name: String, value: HeaderValue)]
    public var payload: [UInt8]

    public enum HeaderValue: Sendable, Equatable {
        case bool(Bool)
        case byte(Int8)
        case short(Int16)
        case int(Int32)
        case long(Int64)
        case bytes([UInt8])
        case string(String)
        /// Milliseconds since 1970.
        case timestamp(Int64)
        case uuid([UInt8])
    }

    public init(headers: [(name: String, value: HeaderValue)], payload: [UInt8]) {
        self.headers = headers
        self.payload = payload
    }

    /// The first string header of that name.
    public func string(_ name: String) -> String? {
        for header in headers where header.name == name { if case .string(let value) = header.value { return value } }
        return nil
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.payload == rhs.payload && lhs.headers.count == rhs.headers.count
            && zip(lhs.headers, rhs.headers).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    /// The message as framed bytes.
    public func encoded() -> [UInt8] {
        var headerBytes: [UInt8] = []
        for (name, value) in headers {
            let nameBytes = Array(name.utf8.prefix(255))
            headerBytes.append(UInt8(nameBytes.count))
            headerBytes += nameBytes
            switch value {
            case .bool(let flag): headerBytes.append(flag ? 0 : 1)
            case .byte(let number): headerBytes += [2, UInt8(bitPattern: number)]
            case .short(let number): headerBytes.append(3); headerBytes += Self.bigEndian(UInt64(UInt16(bitPattern: number)), 2)
            case .int(let number): headerBytes.append(4); headerBytes += Self.bigEndian(UInt64(UInt32(bitPattern: number)), 4)
            case .long(let number): headerBytes.append(5); headerBytes += Self.bigEndian(UInt64(bitPattern: number), 8)
            case .bytes(let bytes):
                let bytes = bytes.prefix(Int(UInt16.max))
                headerBytes.append(6); headerBytes += Self.bigEndian(UInt64(bytes.count), 2); headerBytes += bytes
            case .string(let text):
                let bytes = Array(text.utf8.prefix(Int(UInt16.max)))
                headerBytes.append(7); headerBytes += Self.bigEndian(UInt64(bytes.count), 2); headerBytes += bytes
            case .timestamp(let milliseconds): headerBytes.append(8); headerBytes += Self.bigEndian(UInt64(bitPattern: milliseconds), 8)
            case .uuid(let bytes): headerBytes.append(9); headerBytes += (bytes + [UInt8](repeating: 0, count: 16)).prefix(16)
            }
        }
        let total = 12 + headerBytes.count + payload.count + 4
        var out = Self.bigEndian(UInt64(total), 4) + Self.bigEndian(UInt64(headerBytes.count), 4)
        out += Self.bigEndian(UInt64(CRC32.checksum(out)), 4)
        out += headerBytes
        out += payload
        out += Self.bigEndian(UInt64(CRC32.checksum(out)), 4)
        return out
    }

    static func bigEndian(_ value: UInt64, _ width: Int) -> [UInt8] {
        (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64(width - 1 - $0))) }
    }
}

/// Reads event-stream messages from bytes that arrive in chunks of any size.
///
/// Hostile input is refused, never trusted: a prelude is checked against its CRC before its
/// lengths are believed, a message longer than `maximumMessageBytes` is refused before any of it
/// is kept, and every header is bounds-checked. Once it has thrown, the decoder stays failed.
public struct AWSEventStreamDecoder: Sendable {
    public struct DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// AWS's own limits: 16 MiB a message, 128 KiB of headers.
    public static let defaultMaximumMessageBytes = 16 * 1024 * 1024
    public static let maximumHeaderBytes = 128 * 1024

    public let maximumMessageBytes: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var failure: DecodeError?

    public init(maximumMessageBytes: Int = defaultMaximumMessageBytes) {
        self.maximumMessageBytes = maximumMessageBytes
    }

    /// Bytes received but not yet part of a whole message.
    public var bufferedByteCount: Int { buffer.count - start }

    /// Adds bytes and returns the messages they complete.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(DecodeError) -> [AWSEventStreamMessage] {
        if let failure { throw failure }
        buffer.append(contentsOf: bytes)
        var messages: [AWSEventStreamMessage] = []
        do {
            while let message = try next() { messages.append(message) }
        } catch {
            failure = error
            buffer = []
            start = 0
            throw error
        }
        if start > 0, start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        return messages
    }

    private mutating func next() throws(DecodeError) -> AWSEventStreamMessage? {
        let available = buffer.count - start
        guard available >= 12 else { return nil }
        let total = Int(readUInt32(start))
        let headersLength = Int(readUInt32(start + 4))
        let preludeCRC = readUInt32(start + 8)
        guard CRC32.checksum(buffer[start..<start + 8]) == preludeCRC else {
            throw DecodeError(message: "event-stream prelude checksum mismatch")
        }
        guard total >= 16, total <= maximumMessageBytes else {
            throw DecodeError(message: "event-stream message length \(total) outside 16...\(maximumMessageBytes)")
        }
        guard headersLength <= Self.maximumHeaderBytes, headersLength <= total - 16 else {
            throw DecodeError(message: "event-stream headers length \(headersLength) does not fit its message of \(total) bytes")
        }
        guard available >= total else { return nil }
        let end = start + total
        let messageCRC = readUInt32(end - 4)
        guard CRC32.checksum(buffer[start..<end - 4]) == messageCRC else {
            throw DecodeError(message: "event-stream message checksum mismatch")
        }
        let headers = try Self.headers(buffer[start + 12..<start + 12 + headersLength])
        let payload = Array(buffer[start + 12 + headersLength..<end - 4])
        start = end
        return AWSEventStreamMessage(headers: headers, payload: payload)
    }

    private func readUInt32(_ offset: Int) -> UInt32 {
        buffer[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func headers(_ bytes: ArraySlice<UInt8>) throws(DecodeError) -> [(name: String, value: AWSEventStreamMessage.HeaderValue)] {
        var headers: [(name: String, value: AWSEventStreamMessage.HeaderValue)] = []
        var index = bytes.startIndex
        func take(_ count: Int) throws(DecodeError) -> ArraySlice<UInt8> {
            guard count >= 0, bytes.endIndex - index >= count else { throw DecodeError(message: "event-stream header runs past its section") }
            defer { index += count }
            return bytes[index..<index + count]
        }
        func integer(_ width: Int) throws(DecodeError) -> UInt64 {
            try take(width).reduce(0) { $0 << 8 | UInt64($1) }
        }
        while index < bytes.endIndex {
            let nameLength = Int(try take(1).first!)
            guard nameLength > 0 else { throw DecodeError(message: "event-stream header with an empty name") }
            guard let name = String(validating: try take(nameLength), as: UTF8.self) else {
                throw DecodeError(message: "event-stream header name is not UTF-8")
            }
            let type = try take(1).first!
            let value: AWSEventStreamMessage.HeaderValue
            switch type {
            case 0: value = .bool(true)
            case 1: value = .bool(false)
            case 2: value = .byte(Int8(bitPattern: UInt8(try integer(1))))
            case 3: value = .short(Int16(bitPattern: UInt16(try integer(2))))
            case 4: value = .int(Int32(bitPattern: UInt32(try integer(4))))
            case 5: value = .long(Int64(bitPattern: try integer(8)))
            case 6: value = .bytes(Array(try take(Int(try integer(2)))))
            case 7:
                guard let text = String(validating: try take(Int(try integer(2))), as: UTF8.self) else {
                    throw DecodeError(message: "event-stream header '\(name)' is not UTF-8")
                }
                value = .string(text)
            case 8: value = .timestamp(Int64(bitPattern: try integer(8)))
            case 9: value = .uuid(Array(try take(16)))
            default: throw DecodeError(message: "event-stream header '\(name)' has unknown type \(type)")
            }
            headers.append((name, value))
        }
        return headers
    }
}

/// CRC-32 (IEEE 802.3, the zlib one) that event-stream frames carry; a table-driven byte loop.
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
