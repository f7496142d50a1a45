import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix

/// Where one webhook attempt connects: the URL's host resolved once, checked, and pinned.
///
/// The address is resolved at send time (not only when the URL was registered), so a name that
/// later resolves to an internal address (DNS rebinding) is refused too. The attempt then
/// connects to exactly the checked address through AsyncHTTPClient's `dnsOverride`, which keeps
/// the URL's host name for the `Host` header, for TLS SNI and for certificate verification: a
/// second lookup between the check and the connection cannot swap the address. Redirects are
/// never followed: a 3xx is a failed delivery, never a POST to wherever it points.
struct WebhookDestination: Sendable {
    enum Refusal: Error, Equatable {
        /// The URL cannot be parsed or has no host.
        case invalidURL
        /// The host did not resolve.
        case unresolved
        /// The host is, or resolves to, a loopback, link-local, private or otherwise internal address.
        case privateAddress
    }

    /// The URL's host as written (without brackets).
    let host: String
    /// The address connected to, when the host is a name (nil for an IP literal).
    let pinnedAddress: String?

    /// Resolves and checks the URL's host; refuses internal addresses unless `allowPrivate`.
    static func resolve(url: String, allowPrivate: Bool) async throws(Refusal) -> WebhookDestination {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), ["http", "https"].contains(scheme),
              var host = parsed.host, !host.isEmpty
        else { throw .invalidURL }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if let literal = PrivateAddress.literalIsPrivate(host) {
            if literal, !allowPrivate { throw .privateAddress }
            // An IP literal: nothing to resolve (`localhost`, when allowed, resolves below).
            if PrivateAddress.parse(host) != nil { return WebhookDestination(host: host, pinnedAddress: nil) }
        }
        let port = parsed.port ?? (scheme == "https" ? 443 : 80)
        let name = host
        let address: String
        do {
            // getaddrinfo blocks: it runs on NIO's thread pool, not on an event loop or the cooperative pool.
            let resolved = try await NIOThreadPool.singleton.runIfActive { try SocketAddress.makeAddressResolvingHost(name, port: port) }
            guard let text = resolved.ipAddress else { throw Refusal.unresolved }
            address = text
        } catch {
            throw .unresolved
        }
        if !allowPrivate, PrivateAddress.isPrivate(address: address) { throw .privateAddress }
        return WebhookDestination(host: host, pinnedAddress: address)
    }

    /// A client for one attempt: connects to the pinned address, never follows redirects.
    /// The caller shuts it down after the attempt.
    func makeClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        if let pinnedAddress { configuration.dnsOverride = [host: pinnedAddress] }
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// Why a target was refused, for the delivery log: no part of the URL (it may be a credential).
    static func describe(_ refusal: Refusal) -> String {
        switch refusal {
        case .invalidURL: "refused: not an http(s) URL with a host"
        case .unresolved: "refused: the host did not resolve"
        case .privateAddress:
            "refused: the target is a loopback, link-local or private address (set notifications.allow_private_targets to allow it)"
        }
    }
}
