import Foundation
import LifelineCore
import LifelineStore
import Synchronization

/// This instance's SLI counts and the others': every store sync publishes the buckets this
/// instance changed (SLO rings, status components' windows) and reads what the others wrote,
/// so SLOs, alerts and the status page judge the whole service. Each instance writes only its
/// own rows, with absolute counts: a write repeated after an outage replaces instead of adding.
final class SharedCounters: Sendable {
    /// This process's name in the store: new on every start, so a restarted process reads its
    /// predecessor's rows as another instance's and nothing is counted twice.
    let instance: String
    /// Rows read again on the next sync: a write stamped before a read may commit after it.
    static let readMargin = 10.0

    private struct State {
        var peers = PeerCounts()
        /// Up to when this instance's buckets are in the store (only advanced by a write that succeeded).
        var publishedAt: Double?
        /// The store's clock at the last read.
        var readAt: Double?
    }

    private let state = Mutex(State())

    init(instance: String = "lfi_" + String(UInt64.random(in: 0...UInt64.max), radix: 36)) {
        self.instance = instance
    }

    /// The other instances' counts, as last read.
    var peers: PeerCounts { state.withLock { $0.peers } }

    /// Publishes what changed here since the last publish that reached the store, then reads the
    /// others' rows written since the last read.
    func sync(store: any LifelineStore, changed: (Double) -> [SeriesBucket], now: Double) async throws {
        let (since, readAt) = state.withLock { ($0.publishedAt, $0.readAt) }
        let rows = changed(since ?? 0).map {
            SharedBucket(instance: instance, series: $0.series, width: $0.width, index: $0.bucket.index, good: $0.bucket.good,
                         total: $0.bucket.total, keepUntil: $0.keepUntil)
        }
        try await store.publish(rows, now: now)
        state.withLock { $0.publishedAt = now }
        let (buckets, storeNow) = try await store.sharedBuckets(changedSince: readAt.map { $0 - Self.readMargin })
        state.withLock { state in
            for row in buckets where row.instance != instance {
                state.peers.take(instance: row.instance, series: row.series, width: row.width, index: row.index, good: row.good,
                                 total: row.total, keepUntil: row.keepUntil)
            }
            state.peers.forget(before: now)
            state.readAt = storeNow
        }
    }
}

/// Whether this instance runs the singleton duties now: incident automation, alert evaluation
/// and notifications, subscriber updates, maintenance starts and ends. The store's lock decides
/// (a PostgreSQL advisory lock; SQLite has one process, which always leads).
final class InstanceRole: Sendable {
    private let leading: Mutex<Bool>
    private let metrics: GatewayMetrics

    init(leading: Bool, metrics: GatewayMetrics) {
        self.leading = Mutex(leading)
        self.metrics = metrics
        metrics.leader(leading)
    }

    var isLeader: Bool { leading.withLock { $0 } }

    /// Records the role; returns the previous one.
    @discardableResult
    func set(leader: Bool) -> Bool {
        let previous = leading.withLock { state in
            defer { state = leader }
            return state
        }
        if previous != leader { metrics.leader(leader) }
        return previous
    }
}
