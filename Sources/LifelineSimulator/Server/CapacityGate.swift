import Synchronization

/// A first-come, first-served gate with a changeable number of slots, modelling a provider that
/// serves so many requests at once and queues the rest.
final class CapacityGate: Sendable {
    private struct State {
        var inUse = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Waits for a slot when `capacity` (0: unlimited) are in use.
    func enter(capacity: Int) async {
        await withCheckedContinuation { continuation in
            let admitted = state.withLock { state -> Bool in
                if capacity == 0 || state.inUse < capacity {
                    state.inUse += 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if admitted { continuation.resume() }
        }
    }

    /// Frees a slot, handing it straight to the longest waiter.
    func leave() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.inUse = max(0, state.inUse - 1)
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
