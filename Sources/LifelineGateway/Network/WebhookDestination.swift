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

    /// Turns a host name and port into the one address to connect to.
    typealias Resolver = @Sendable (_ host: String, _ port: Int) async throws -> String

    /// The system's resolver (getaddrinfo), run on NIO's thread pool because it blocks: never on
    /// an event loop or the cooperative pool.
    static let systemResolver: Resolver = { host, port in
        let resolved = try await NIOThreadPool.singleton.runIfActive { try SocketAddress.makeAddressResolvingHost(host, port: port) }
        guard let text = resolved.ipAddress else { throw Refusal.unresolved }
        return text
    }

    /// Resolves (through `resolver`) and checks the URL's host; refuses internal addresses unless `allowPrivate`.
    static func resolve(url: String, allowPrivate: Bool, resolver: Resolver = systemResolver) async throws(Refusal) -> WebhookDestination {
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
        let address: String
        do {
            address = try await resolver(host, port)
        } catch {
            throw .unresolved
        }
        if !allowPrivate, PrivateAddress.isPrivate(address: address) { throw .privateAddress }
        return WebhookDestination(host: host, pinnedAddress: address)
    }

    /// A client for one attempt: connects to the pinned address, never follows redirects.
    /// The caller shuts it down after the attempt.
    func makeClient() -> HTTPClient {
        HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: clientConfiguration())
    }

    /// What `makeClient` builds its client with: redirects off, the host pinned to the checked address.
    func clientConfiguration() -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        if let pinnedAddress { configuration.dnsOverride = [host: pinnedAddress] }
        return configuration
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
