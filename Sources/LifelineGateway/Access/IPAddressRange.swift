import Foundation

/// An IP address or CIDR block (`10.0.0.0/8`, `::1`, `fd00::/8`), for `auth.trusted_proxies`.
/// IPv4 addresses written as IPv4-mapped IPv6 (`::ffff:10.0.0.1`) match the IPv4 form.
public struct IPAddressRange: Sendable, Equatable, CustomStringConvertible {
    let network: [UInt8]
    let prefixLength: Int
    public let description: String

    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let parts = trimmed.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = Self.parse(String(parts[0])) else { return nil }
        let maximum = address.count * 8
        var length = maximum
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...maximum).contains(parsed) else { return nil }
            length = parsed
        }
        network = Self.masked(address, length)
        prefixLength = length
        description = trimmed
    }

    /// Whether `address` (written as text) lies in this range.
    public func contains(_ address: String) -> Bool {
        guard let bytes = Self.parse(address), bytes.count == network.count else { return false }
        return Self.masked(bytes, prefixLength) == network
    }

    /// The address's bytes (4 or 16), or nil when `text` is not an IP address. A bracketed IPv6
    /// literal and a zone (`fe80::1%eth0`) are accepted; IPv4-mapped IPv6 becomes IPv4.
    static func parse(_ text: String) -> [UInt8]? {
        var literal = text.trimmingCharacters(in: .whitespaces)
        if literal.hasPrefix("["), literal.hasSuffix("]") { literal = String(literal.dropFirst().dropLast()) }
        if let zone = literal.firstIndex(of: "%") { literal = String(literal[..<zone]) }
        guard !literal.isEmpty, literal.count <= 45 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, literal, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, literal, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF { return Array(bytes[12...]) }
        return bytes
    }

    private static func masked(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bits = min(8, max(0, length - index * 8))
            return bits == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
        }
    }
}

/// Where a request comes from: the TCP peer, or, when that peer is a trusted reverse proxy,
/// the address the proxies recorded in `X-Forwarded-For`.
enum ClientAddress {
    /// The right-most address in `X-Forwarded-For` that is not a trusted proxy: each proxy
    /// appends the address it received the request from, so everything left of the first
    /// untrusted hop was written by the client and proves nothing. Without a trusted peer the
    /// header is ignored. An entry that is not an IP address stops the walk at the hop after it.
    static func resolve(peer: String?, forwardedFor: [String], trusted: [IPAddressRange]) -> String? {
        guard let peer, !trusted.isEmpty, trusted.contains(where: { $0.contains(peer) }) else { return peer }
        var client = peer
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        // Bounded: a header of thousands of entries is read no further than this many hops.
        for hop in hops.reversed().prefix(32) {
            guard IPAddressRange.parse(hop) != nil else { break }
            client = hop
            if !trusted.contains(where: { $0.contains(hop) }) { break }
        }
        return client
    }
}
