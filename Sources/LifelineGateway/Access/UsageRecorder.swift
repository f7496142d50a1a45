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
        do {
            try await store.record(rows)
        } catch {
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

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            await flush()
        }
        await flush()
    }
}
