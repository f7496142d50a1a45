import LifelineWire
import Synchronization

extension Failover {
    /// Starts a stream on the first deployment and, if it has not produced a first token after
    /// `delay`, a second attempt on the next deployment; the first to answer wins and the other
    /// is cancelled. The hedge spends the model's retry budget like any retry.
    ///
    /// Returns nil when neither attempt opened a stream (or the first failed before the hedge
    /// was due): the caller then fails over through the rest of `order` as usual.
    func hedgedOpen(_ chat: ChatRequest, order: [Deployment], delay: Double, record: inout RequestRecord)
        async -> (value: StreamRelay.OpenedStream, deployment: Deployment)?
    {
        guard order.count >= 2, await group.admit(order[0]) == .granted else { return nil }
        let candidates = [order[0], order[1]]
        candidates[0].spendAllowance(estimatedTokens: record.estimatedTokens ?? 0)
        record.attempts += 1
        enum Outcome: Sendable {
            case opened(StreamRelay.OpenedStream, Int)
            case failed(UpstreamFailure, Int)
            case hedgeNotSent
        }
        let hedgeStarted = SharedFlag()
        let group = self.group, metrics = self.metrics, estimate = record.estimatedTokens ?? 0
        let (winner, failures) = await withTaskGroup(of: Outcome.self) { tasks -> (Outcome?, [(UpstreamFailure, Int)]) in
            tasks.addTask {
                do throws(UpstreamFailure) {
                    return .opened(try await StreamRelay.open(chat.upstreamRequest(for: candidates[0]), on: candidates[0]), 0)
                } catch { return .failed(error, 0) }
            }
            tasks.addTask {
                try? await Task.sleep(for: .seconds(delay))
                guard !Task.isCancelled, group.tryRetry(), await group.admit(candidates[1]) == .granted else { return .hedgeNotSent }
                hedgeStarted.set()
                candidates[1].spendAllowance(estimatedTokens: estimate)
                metrics.hedge(model: group.name)
                do throws(UpstreamFailure) {
                    return .opened(try await StreamRelay.open(chat.upstreamRequest(for: candidates[1]), on: candidates[1]), 1)
                } catch { return .failed(error, 1) }
            }
            var failures: [(UpstreamFailure, Int)] = []
            for await outcome in tasks {
                switch outcome {
                case .opened(_, let index):
                    tasks.cancelAll()
                    // The other attempt, if it was sent, is cancelled: free its breaker slot.
                    if index == 0, hedgeStarted.isSet { group.release(candidates[1]) }
                    if index == 1 { group.release(candidates[0]) }
                    return (outcome, failures)
                case .failed(let failure, let index):
                    failures.append((failure, index))
                    // The first failed before the hedge was sent: stop waiting, fail over normally.
                    if index == 0, !hedgeStarted.isSet { tasks.cancelAll() }
                case .hedgeNotSent:
                    break
                }
            }
            return (nil, failures)
        }
        for (failure, index) in failures where !failure.isCancellation {
            group.report(candidates[index], failure: failure)
            record.deployment = candidates[index].name
        }
        if hedgeStarted.isSet { record.attempts += 1 }
        guard case .opened(let stream, let index)? = winner else { return nil }
        return (stream, candidates[index])
    }
}

/// A flag set once by one task and read by others.
final class SharedFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}
