import Foundation
import LifelineStore
import Logging
import ServiceLifecycle
import Synchronization

/// Collects usage per caller per minute in memory and writes it to the store every second, so a
/// request never waits on a database write. Flushes once more at shutdown.
final class UsageRecorder: Service, Sendable {
    private let store: any LifelineStore
    private let pending = Mutex<[String: UsageRecord]>([:])
    /// What this instance has written, per caller and minute (the last few minutes only), so
    /// the store's totals can be split into this instance's and the others'.
    private let written = Mutex<[String: UsageRecord]>([:])
    private let logger: Logger
    private let wallClock: @Sendable () -> Date

    init(store: any LifelineStore, logger: Logger, wallClock: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.logger = logger
        self.wallClock = wallClock
    }

    func record(callerID: String, promptTokens: Int, completionTokens: Int) {
        let minute = Int(wallClock().timeIntervalSince1970) / 60 * 60
        pending.withLock { pending in
            let key = "\(callerID)@\(minute)"
            var row = pending[key] ?? UsageRecord(keyID: callerID, minute: minute, requests: 0, promptTokens: 0, completionTokens: 0)
            row.requests += 1
            row.promptTokens += promptTokens
            row.completionTokens += completionTokens
            pending[key] = row
        }
    }

    /// Writes what is pending; on failure the rows are kept for the next try, so no usage is lost.
    func flush() async {
        let rows = pending.withLock { pending -> [UsageRecord] in
            defer { pending.removeAll() }
            return Array(pending.values)
        }
        guard !rows.isEmpty else { return }
        // Counted as written before the write: a reconciliation reading the store meanwhile then
        // sees less of the others' usage, never this instance's own twice.
        countWritten(rows, sign: 1)
        do {
            try await store.record(rows)
        } catch {
            countWritten(rows, sign: -1)
            logger.error("usage could not be written; will retry", metadata: ["error": .string("\(error)"), "rows": .stringConvertible(rows.count)])
            pending.withLock { pending in
                for row in rows {
                    let key = "\(row.keyID)@\(row.minute)"
                    if var existing = pending[key] {
                        existing.requests += row.requests
                        existing.promptTokens += row.promptTokens
                        existing.completionTokens += row.completionTokens
                        pending[key] = existing
                    } else {
                        pending[key] = row
                    }
                }
            }
        }
    }

    private func countWritten(_ rows: [UsageRecord], sign: Int) {
        let oldest = Int(wallClock().timeIntervalSince1970) / 60 * 60 - 180
        written.withLock { written in
            for row in rows {
                let key = "\(row.keyID)@\(row.minute)"
                var total = written[key] ?? UsageRecord(keyID: row.keyID, minute: row.minute, requests: 0, promptTokens: 0, completionTokens: 0)
                total.requests += sign * row.requests
                total.promptTokens += sign * row.promptTokens
                total.completionTokens += sign * row.completionTokens
                written[key] = total
            }
            written = written.filter { $0.value.minute >= oldest }
        }
    }

    /// What this instance has written for `minute`, per caller.
    func written(minute: Int) -> [String: UsageTotals] {
        written.withLock { written in
            var totals: [String: UsageTotals] = [:]
            for row in written.values where row.minute == minute {
                totals[row.keyID, default: UsageTotals()].requests += row.requests
                totals[row.keyID, default: UsageTotals()].promptTokens += row.promptTokens
                totals[row.keyID, default: UsageTotals()].completionTokens += row.completionTokens
            }
            return totals
        }
    }

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            await flush()
        }
        await flush()
    }
}
