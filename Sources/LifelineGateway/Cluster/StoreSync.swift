import Foundation
import LifelineStore
import Logging
import ServiceLifecycle
import Synchronization

/// Everything an instance exchanges with the store, every `storage.key_refresh_s`:
///
/// - keys created or revoked elsewhere, and the usage other instances recorded (so per-key
///   limits and budgets hold across instances);
/// - SLI counts: this instance's changed buckets out, the others' in;
/// - the leader's lock: taken, kept, or lost; on taking it, the previous leader's state is read first;
/// - with a shared store, incidents and maintenances the leader and operators saved.
///
/// Polling rather than LISTEN/NOTIFY: one round of small queries a second per instance, nothing
/// missed across a dropped connection, and it works through connection poolers and on SQLite
/// alike. A round that fails or takes longer than `timeout` counts as the store being away:
/// the instance serves from memory, gives up the lock, and says so in `/readyz`.
struct StoreSync: Service {
    let runtime: GatewayRuntime
    let interval: Double

    /// A pool waiting for a connection that cannot be made does not fail by itself for a long time.
    var timeout: Double { max(2, 2 * interval) }

    struct TimedOut: Error {}

    func run() async throws {
        var failing = false
        let logger = runtime.logger
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let outcome = await Self.within(timeout) { try await round() }
            switch outcome {
            case .success(let leading):
                runtime.storeHealth.succeeded()
                if failing { logger.notice("the store answers again") }
                failing = false
                // The role changes only here, on a round that finished in time: a round given up
                // as timed out may still finish later, and must not make this instance lead.
                let instance: Logger.Metadata = ["instance": .string(runtime.counters.instance)]
                let wasLeading = runtime.role.set(leader: leading)
                if leading, !wasLeading, runtime.store.isShared {
                    logger.notice("this instance leads: incidents, alerts, notifications and maintenance run here", metadata: instance)
                } else if !leading, wasLeading {
                    logger.notice("another instance leads now", metadata: instance)
                }
            case .failure(let error):
                // Cached keys keep working while the store is away; a shared store's lock is given
                // up, since this instance can no longer show that it holds it. (One process owns an
                // SQLite file: it goes on leading.)
                runtime.storeHealth.failed(error)
                if runtime.store.isShared, runtime.role.set(leader: false) { logger.warning("no longer the leader: the store does not answer") }
                await runtime.store.resign()
                if !failing { logger.warning("the store does not answer", metadata: ["error": .string("\(type(of: error))")]) }
                failing = true
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int64(interval * 1000))) }
        }
        // Draining takes a while: another instance leads meanwhile.
        if runtime.store.isShared, runtime.role.set(leader: false) {
            logger.notice("no longer the leader: shutting down", metadata: ["instance": .string(runtime.counters.instance)])
        }
        await runtime.store.resign()
    }

    /// One round; returns whether this instance leads after it. Taking over (reading the previous
    /// leader's state) happens inside the round, before the caller changes the role.
    private func round() async throws -> Bool {
        try await runtime.keys.refresh()
        try await runtime.keys.reconcile(with: runtime.usage)
        try await runtime.shareCounters()
        let store = runtime.store
        let leading = try await store.lead()
        guard store.isShared else { return leading }
        if leading, !runtime.role.isLeader {
            try await runtime.takeOver()
        } else {
            try await runtime.readSharedState(leading: leading)
        }
        return leading
    }

    /// The body's outcome, or `TimedOut` after `seconds` without waiting for the body further
    /// (a call into a store that does not answer may not end when cancelled).
    static func within<Value: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> Value) async -> Result<Value, any Error> {
        let done = Mutex(false)
        return await withCheckedContinuation { (continuation: CheckedContinuation<Result<Value, any Error>, Never>) in
            let finish: @Sendable (Result<Value, any Error>) -> Void = { result in
                if done.withLock({ state in defer { state = true }; return !state }) { continuation.resume(returning: result) }
            }
            let work = Task {
                do {
                    finish(.success(try await body()))
                } catch {
                    finish(.failure(error))
                }
            }
            Task {
                try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                work.cancel()
                finish(.failure(TimedOut()))
            }
        }
    }
}
