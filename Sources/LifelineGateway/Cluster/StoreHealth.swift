import Foundation
import LifelineWire
import Synchronization

/// Whether the store answers, as the key refresher finds it every `storage.key_refresh_s`.
/// While it does not, the gateway keeps serving (cached keys, local limits, usage held in memory
/// for later) and says so in `/readyz`, which stays 200: taking every instance out of a load
/// balancer because a shared database is away would turn its outage into a full one.
public final class StoreHealth: Sendable {
    private let state = Mutex<(failingSince: Double?, error: String?)>((nil, nil))
    private let wallClock: @Sendable () -> Double
    private let metrics: GatewayMetrics

    init(metrics: GatewayMetrics, wallClock: @escaping @Sendable () -> Double) {
        self.metrics = metrics
        self.wallClock = wallClock
        metrics.storeReachable(true)
    }

    func succeeded() {
        state.withLock { $0 = (nil, nil) }
        metrics.storeReachable(true)
    }

    func failed(_ error: any Error) {
        let now = wallClock()
        // The error's kind only: a driver's message can quote connection details.
        let kind = String(describing: type(of: error))
        state.withLock { $0 = ($0.failingSince ?? now, kind) }
        metrics.storeReachable(false)
    }

    var isReachable: Bool { state.withLock { $0.failingSince == nil } }

    var json: JSONValue {
        let (since, error) = state.withLock { ($0.failingSince, $0.error) }
        guard let since else { return ["status": "ok"] }
        return ["status": "unreachable", "since": .string(Timestamp.iso8601(since)), "error": error.map(JSONValue.string) ?? .null,
                "serving": "cached keys and local limits; usage is kept in memory until the store is back"]
    }
}
