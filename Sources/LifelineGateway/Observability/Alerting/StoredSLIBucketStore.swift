import LifelineCore
import LifelineStore
import Logging

/// SLI buckets kept in memory for the evaluator and written behind to the store, so a restart
/// resumes with the error budget already spent. Writes go through one queue in order, off the
/// request path; the store's contents are loaded once at start.
final class StoredSLIBucketStore: SLIBucketStore {
    private let memory = InMemorySLIBucketStore()
    private let writes: AsyncStream<(String, SLIBucketSnapshot)>.Continuation
    private let writer: Task<Void, Never>

    init(store: any LifelineStore, logger: Logger) async {
        if let saved = try? await store.loadSLIBuckets() {
            for (slo, snapshot) in saved { memory.save(slo: slo, snapshot) }
        }
        let (stream, continuation) = AsyncStream<(String, SLIBucketSnapshot)>.makeStream()
        writes = continuation
        writer = Task {
            for await (slo, snapshot) in stream {
                do {
                    try await store.saveSLIBuckets(slo: slo, snapshot)
                } catch {
                    logger.warning("SLI buckets could not be saved", metadata: ["slo": .string(slo), "error": .string("\(error)")])
                }
            }
        }
    }

    func load(slo: String) -> SLIBucketSnapshot? { memory.load(slo: slo) }

    func save(slo: String, _ snapshot: SLIBucketSnapshot) {
        memory.save(slo: slo, snapshot)
        writes.yield((slo, snapshot))
    }

    /// Waits until every queued write has reached the store.
    func finish() async {
        writes.finish()
        await writer.value
    }
}
