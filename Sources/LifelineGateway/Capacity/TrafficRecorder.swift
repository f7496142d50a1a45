import Foundation
import LifelineCore
import LifelineStore
import Logging
import ServiceLifecycle
import Synchronization

/// Counts traffic per minute for each public model and deployment (requests, tokens, time busy,
/// sampled peak concurrency, upstream 429s) and writes it to the store every 10 seconds, off the
/// request path: the history capacity planning forecasts from. A failed write keeps its rows for
/// the next try.
final class TrafficRecorder: Service, Sendable {
    static let flushSeconds = 10.0

    private let store: any LifelineStore
    private let pending = Mutex<[String: TrafficMinute]>([:])
    private let logger: Logger
    private let wallClock: @Sendable () -> Double

    init(store: any LifelineStore, logger: Logger, wallClock: @escaping @Sendable () -> Double) {
        self.store = store
        self.logger = logger
        self.wallClock = wallClock
    }

    private func add(_ row: TrafficMinute) {
        pending.withLock { pending in
            let key = "\(row.scope)@\(row.minute)"
            if pending[key] == nil { pending[key] = row } else { pending[key]!.merge(row) }
        }
    }

    private var minute: Int { Int(wallClock() / 60) * 60 }

    /// One finished request: it counts for its model and for the deployment that answered.
    func request(model: String, deployment: String?, tokens: Int, seconds: Double) {
        let minute = minute
        add(TrafficMinute(scope: "model:\(model)", minute: minute, requests: 1, tokens: tokens, busySeconds: seconds))
        if let deployment {
            add(TrafficMinute(scope: "deployment:\(deployment)", minute: minute, requests: 1, tokens: tokens, busySeconds: seconds))
        }
    }

    func rateLimited(deployment: String) {
        add(TrafficMinute(scope: "deployment:\(deployment)", minute: minute, rateLimited: 1))
    }

    /// Requests in flight now, per scope; the minute keeps the largest sample.
    func concurrency(_ samples: [String: Int]) {
        let minute = minute
        for (scope, value) in samples { add(TrafficMinute(scope: scope, minute: minute, peakConcurrency: value)) }
    }

    /// What is counted but not yet written (capacity reports read it with the stored history).
    var unwritten: [TrafficMinute] { pending.withLock { Array($0.values) } }

    func flush() async {
        let rows = pending.withLock { pending -> [TrafficMinute] in
            defer { pending.removeAll() }
            return Array(pending.values)
        }
        guard !rows.isEmpty else { return }
        do {
            try await store.record(traffic: rows)
        } catch {
            logger.warning("traffic history could not be written; will retry", metadata: ["error": .string("\(error)")])
            for row in rows { add(row) }
        }
    }

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            // The wait ends at once when shutdown begins; the last flush below still runs.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(Self.flushSeconds)) }
            await flush()
        }
        await flush()
    }
}
