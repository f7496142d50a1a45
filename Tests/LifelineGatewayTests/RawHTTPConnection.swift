#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// A plain TCP connection for tests that must misbehave as a client (hang up mid-stream,
/// send partial requests). Blocking calls, with a receive timeout so a test cannot hang.
final class RawHTTPConnection: @unchecked Sendable {
    // Safe: used by one test task at a time; the descriptor is only closed once.
    private let descriptor: Int32

    struct SocketError: Error { var operation: String }

    init(port: Int) async throws {
        #if canImport(Glibc)
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw SocketError(operation: "socket") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw SocketError(operation: "connect") }
    }

    func send(_ text: String) async throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            // MSG_NOSIGNAL: a send to a connection the server closed fails instead of raising SIGPIPE.
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw SocketError(operation: "send") }
            sent += count
        }
    }

    /// Whatever arrives next (up to 64 KiB), or "" at end of stream or timeout.
    func receive() async throws -> String {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : ""
    }

    /// Whatever arrives within `milliseconds`: nil if nothing did, "" at end of stream (or a reset).
    func receive(within milliseconds: Int32) async throws -> String? {
        var descriptorSet = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptorSet, 1, milliseconds) > 0 else { return nil }
        return try await receive()
    }

    func close() async throws {
        _ = Glibc.close(descriptor)
    }
}
