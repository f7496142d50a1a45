#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Synchronization

/// Counts open client connections, overall and per client address, and refuses one beyond
/// either cap. Shared by every connection's `ConnectionLimitHandler`.
final class ConnectionLimits: Sendable {
    enum Refusal: String, Sendable {
        case maxConnections = "max_connections"
        case maxConnectionsPerClient = "max_connections_per_client"
    }

    let maximum: Int
    let maximumPerClient: Int
    private let metrics: GatewayMetrics
    private let open = Mutex<(total: Int, perClient: [String: Int])>((0, [:]))

    init(maximum: Int, maximumPerClient: Int, metrics: GatewayMetrics) {
        self.maximum = maximum
        self.maximumPerClient = maximumPerClient
        self.metrics = metrics
        metrics.openConnections(0)
    }

    /// The caps a `server` block asks for; unset ones are derived from the open-file limit.
    convenience init(_ server: ServerConfig, metrics: GatewayMetrics) {
        let maximum = server.maxConnections ?? Self.defaultMaximum(openFileLimit: Self.openFileLimit())
        self.init(maximum: maximum, maximumPerClient: server.maxConnectionsPerClient ?? maximum, metrics: metrics)
    }

    /// Counts a new connection from `client`, or says which cap it is beyond (then nothing is counted).
    func admit(client: String) -> Refusal? {
        let (refusal, total) = open.withLock { open -> (Refusal?, Int) in
            if open.total >= maximum { return (.maxConnections, open.total) }
            if open.perClient[client, default: 0] >= maximumPerClient { return (.maxConnectionsPerClient, open.total) }
            open.total += 1
            open.perClient[client, default: 0] += 1
            return (nil, open.total)
        }
        if let refusal { metrics.connectionRefused(reason: refusal.rawValue) } else { metrics.openConnections(total) }
        return refusal
    }

    /// Forgets a connection `admit` counted.
    func release(client: String) {
        let total = open.withLock { open -> Int in
            open.total -= 1
            let remaining = open.perClient[client, default: 1] - 1
            open.perClient[client] = remaining > 0 ? remaining : nil
            return open.total
        }
        metrics.openConnections(total)
    }

    var openConnections: Int { open.withLock { $0.total } }

    /// Each proxied request holds two descriptors (the client's connection and the upstream's),
    /// and the process needs some for its store, logs, listeners and health probes: half of what
    /// the open-file limit leaves after that reserve. Past it, `accept` would fail anyway, for
    /// every client alike; refusing first keeps the descriptors for connections already open.
    static func defaultMaximum(openFileLimit: Int) -> Int {
        let reserve = min(1_024, max(64, openFileLimit / 20))
        return max(16, (openFileLimit - reserve) / 2)
    }

    /// The soft `RLIMIT_NOFILE` of this process (capped: "unlimited" is not a useful number here).
    static func openFileLimit() -> Int {
        var limit = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0 else { return 1_024 }
        // RLIM_INFINITY is the largest value, so the cap covers it too.
        return Int(min(limit.rlim_cur, 1_048_576))
    }
}
