import NIOCore
import Synchronization

/// What the gateway learns about the client's connection while it works on a request.
///
/// Hummingbird does not cancel a handler whose client hung up, so a request waiting for an
/// admission slot or an upstream's first token would carry on for nobody. `untilClosed` runs
/// the work in a task of its own and cancels it when the connection closes first: the wait
/// ends, the upstream attempt is cancelled, and nothing is counted as a failure.
enum ClientConnection {
    static func untilClosed<Value: Sendable>(_ channel: (any Channel)?, _ work: @escaping @Sendable () async -> Value) async -> Value {
        guard let channel else { return await work() }
        let watch = ConnectionWatch.of(channel)
        let task = Task { await work() }
        if watch.begin({ task.cancel() }) {
            defer { watch.end() }
            return await task.value
        }
        // Closed already: the work winds down at once.
        task.cancel()
        return await task.value
    }
}

/// One client connection's close, watched once for the connection's life (a keep-alive
/// connection serves many requests; each sets what its close must cancel, then clears it).
final class ConnectionWatch: Sendable {
    private static let open = Mutex<[ObjectIdentifier: ConnectionWatch]>([:])
    private let state = Mutex<(closed: Bool, onClose: (@Sendable () -> Void)?)>((false, nil))

    static func of(_ channel: any Channel) -> ConnectionWatch {
        let id = ObjectIdentifier(channel)
        let (watch, isNew) = open.withLock { open -> (ConnectionWatch, Bool) in
            if let existing = open[id] { return (existing, false) }
            let created = ConnectionWatch()
            open[id] = created
            return (created, true)
        }
        if isNew {
            // The channel lives until this runs, so its identifier cannot be reused before.
            channel.closeFuture.whenComplete { _ in
                _ = open.withLock { $0.removeValue(forKey: id) }
                watch.close()
            }
        }
        return watch
    }

    /// Sets what the close cancels; false if the connection is already closed.
    func begin(_ onClose: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { state in
            guard !state.closed else { return false }
            state.onClose = onClose
            return true
        }
    }

    func end() { state.withLock { $0.onClose = nil } }

    private func close() {
        let onClose = state.withLock { state -> (@Sendable () -> Void)? in
            state.closed = true
            defer { state.onClose = nil }
            return state.onClose
        }
        onClose?()
    }
}
