import LifelineCore
import LifelineStore
import Logging

/// SLI buckets kept in memory (a reload picks them up) and alert states written behind to the
/// store, so a restart, or a new leader, goes on with the alerts that were firing. The buckets
/// reach the store, and other instances, through `SharedCounters`. Writes go through one queue
/// in order, off the request path; saved alert states are loaded once at start.
final class StoredSLIBucketStore: SLIBucketStore {
    private let memory = InMemorySLIBucketStore()
    private let writes: AsyncStream<[String: SavedAlert]>.Continuation
    private let writer: Task<Void, Never>

    init(store: any LifelineStore, logger: Logger) async {
        if let alerts = try? await store.loadAlerts() { memory.saveAlerts(alerts) }
        let (stream, continuation) = AsyncStream<[String: SavedAlert]>.makeStream()
        writes = continuation
        writer = Task {
            for await alerts in stream {
                do {
                    try await store.saveAlerts(alerts)
                } catch {
                    logger.warning("alert states could not be saved", metadata: ["error": .string("\(error)")])
                }
            }
        }
    }

    func load(slo: String) -> SLIBucketSnapshot? { memory.load(slo: slo) }

    func save(slo: String, _ snapshot: SLIBucketSnapshot) { memory.save(slo: slo, snapshot) }

    func loadAlerts() -> [String: SavedAlert] { memory.loadAlerts() }

    func saveAlerts(_ alerts: [String: SavedAlert]) {
        memory.saveAlerts(alerts)
        writes.yield(alerts)
    }

    /// Waits until every queued write has reached the store.
    func finish() async {
        writes.finish()
        await writer.value
    }
}
