#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Which IP addresses an outbound webhook must not reach unless the operator allows private
/// targets: loopback, link-local, private and unique-local ranges, unspecified, multicast and
/// reserved addresses, and the IPv4-mapped/-compatible IPv6 forms of the IPv4 ones. A webhook
/// that reaches them lets whoever names the URL make Lifeline POST into its own network (SSRF).
enum PrivateAddress {
    /// Whether `host` is an IP literal (brackets allowed around IPv6) or a name that is loopback by
    /// definition (`localhost`, `*.localhost`) in one of the refused ranges; nil when it is an
    /// ordinary host name, known only after resolution.
    static func literalIsPrivate(_ host: String) -> Bool? {
        var text = host.lowercased()
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if text.hasSuffix(".") { text = String(text.dropLast()) }
        if text == "localhost" || text.hasSuffix(".localhost") { return true }
        guard let bytes = parse(text) else { return nil }
        return isPrivate(bytes)
    }

    /// Whether an IP address in text form (as a resolver gives it) is refused; text that is no IP
    /// address is refused too, since nothing can be said about it.
    static func isPrivate(address text: String) -> Bool {
        guard let bytes = parse(text) else { return true }
        return isPrivate(bytes)
    }

    /// 4 bytes for IPv4, 16 for IPv6; nil when `text` is not an IP literal.
    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        // A zone index (fe80::1%eth0) is link-local anyway; the address before it decides.
        let bare = text.split(separator: "%", maxSplits: 1).first.map(String.init) ?? text
        if inet_pton(AF_INET6, bare, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    static func isPrivate(_ bytes: [UInt8]) -> Bool {
        if bytes.count == 4 { return isPrivateV4(bytes) }
        guard bytes.count == 16 else { return true }
        let first10Zero = bytes[0..<10].allSatisfy { $0 == 0 }
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated) carry an IPv4 address;
        // :: and ::1 fall in the second form and are judged below as 0.0.0.0/8.
        if first10Zero, bytes[10] == 0xff, bytes[11] == 0xff { return isPrivateV4(Array(bytes[12..<16])) }
        if first10Zero, bytes[10] == 0, bytes[11] == 0 {
            if bytes[12..<15].allSatisfy({ $0 == 0 }) { return true } // :: and ::1
            return isPrivateV4(Array(bytes[12..<16]))
        }
        // 64:ff9b::/96, NAT64: the IPv4 address it translates to decides.
        if bytes[0..<12] == [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0] { return isPrivateV4(Array(bytes[12..<16])) }
        if bytes[0] & 0xfe == 0xfc { return true } // fc00::/7 unique local
        if bytes[0] == 0xfe, bytes[1] & 0xc0 == 0x80 { return true } // fe80::/10 link-local
        if bytes[0] == 0xfe, bytes[1] & 0xc0 == 0xc0 { return true } // fec0::/10 site-local (deprecated)
        if bytes[0] == 0xff { return true } // ff00::/8 multicast
        return false
    }

    static func isPrivateV4(_ bytes: [UInt8]) -> Bool {
        let (a, b) = (bytes[0], bytes[1])
        switch a {
        case 0: return true // 0.0.0.0/8 "this network", unspecified
        case 10: return true // 10/8
        case 127: return true // loopback
        case 169 where b == 254: return true // link-local (cloud metadata lives here)
        case 172 where (16...31).contains(b): return true // 172.16/12
        case 192 where b == 168: return true // 192.168/16
        case 100 where (64...127).contains(b): return true // 100.64/10 carrier-grade NAT, shared space
        case 192 where b == 0 && bytes[2] == 0: return true // 192.0.0/24 protocol assignments
        case 198 where b == 18 || b == 19: return true // 198.18/15 benchmarking
        case 224...255: return true // multicast, reserved, broadcast
        default: return false
        }
    }
}
