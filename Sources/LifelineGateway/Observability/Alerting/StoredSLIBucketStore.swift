import LifelineCore
import LifelineStore
import Logging

/// SLI buckets and alert states kept in memory for the evaluator and written behind to the
/// store, so a restart resumes with the error budget already spent and with firing alerts still
/// firing. Writes go through one queue in order, off the request path; the store's contents are
/// loaded once at start.
final class StoredSLIBucketStore: SLIBucketStore {
    private enum Write: Sendable {
        case buckets(String, SLIBucketSnapshot)
        case alerts([String: SavedAlert])
    }

    private let memory = InMemorySLIBucketStore()
    private let writes: AsyncStream<Write>.Continuation
    private let writer: Task<Void, Never>

    init(store: any LifelineStore, logger: Logger) async {
        if let saved = try? await store.loadSLIBuckets() {
            for (slo, snapshot) in saved { memory.save(slo: slo, snapshot) }
        }
        if let alerts = try? await store.loadAlerts() { memory.saveAlerts(alerts) }
        let (stream, continuation) = AsyncStream<Write>.makeStream()
        writes = continuation
        writer = Task {
            for await write in stream {
                do {
                    switch write {
                    case .buckets(let slo, let snapshot): try await store.saveSLIBuckets(slo: slo, snapshot)
                    case .alerts(let alerts): try await store.saveAlerts(alerts)
                    }
                } catch {
                    logger.warning("SLO state could not be saved", metadata: ["error": .string("\(error)")])
                }
            }
        }
    }

    func load(slo: String) -> SLIBucketSnapshot? { memory.load(slo: slo) }

    func save(slo: String, _ snapshot: SLIBucketSnapshot) {
        memory.save(slo: slo, snapshot)
        writes.yield(.buckets(slo, snapshot))
    }

    func loadAlerts() -> [String: SavedAlert] { memory.loadAlerts() }

    func saveAlerts(_ alerts: [String: SavedAlert]) {
        memory.saveAlerts(alerts)
        writes.yield(.alerts(alerts))
    }

    /// Waits until every queued write has reached the store.
    func finish() async {
        writes.finish()
        await writer.value
    }
}
