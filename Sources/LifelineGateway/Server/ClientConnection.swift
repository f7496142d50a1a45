import NIOCore
import Synchronization

/// What the gateway learns about the client's connection while it works on a request.
///
/// Hummingbird does not cancel a handler whose client hung up, so a request waiting for an
/// admission slot or an upstream's first token would carry on for nobody. `untilClosed` runs
/// the work in a child task and cancels it when the connection closes first: the wait ends,
/// the upstream attempt is cancelled, and nothing is counted as a failure.
enum ClientConnection {
    static func untilClosed<Value: Sendable>(_ channel: (any Channel)?, _ work: @escaping @Sendable () async -> Value) async -> Value {
        guard let channel else { return await work() }
        return await withTaskGroup(of: Value?.self) { group in
            group.addTask { await work() }
            group.addTask {
                await closed(channel)
                return nil
            }
            var answer: Value?
            while answer == nil, let next = await group.next() {
                // Either the work finished, or the client left and the cancelled work winds down.
                group.cancelAll()
                answer = next
            }
            return answer!
        }
    }

    /// Returns once the channel has closed, or at once when the task is cancelled.
    private static func closed(_ channel: any Channel) async {
        let waiter = OneShot()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                waiter.store(continuation)
                channel.closeFuture.whenComplete { _ in waiter.fire() }
                if Task.isCancelled { waiter.fire() }
            }
        } onCancel: {
            waiter.fire()
        }
    }
}

/// A continuation resumed exactly once, by whichever of several events comes first.
private final class OneShot: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<Void, Never>?, fired: Bool)>((nil, false))

    func store(_ continuation: CheckedContinuation<Void, Never>) {
        let fireNow = state.withLock { state -> Bool in
            if state.fired { return true }
            state.continuation = continuation
            return false
        }
        if fireNow { continuation.resume() }
    }

    func fire() {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.fired = true
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume()
    }
}
