/// How Lifeline keeps a managed upstream process alive.
public struct ProcessRestartPolicy: Sendable, Equatable {
    /// A start that has not answered its health check after this long is killed and retried.
    public var startTimeout = 120.0
    /// Wait before the first relaunch after a failure; doubles with each failure in a row…
    public var backoffBase = 1.0
    /// …up to this.
    public var backoffMaximum = 30.0
    /// A process that ran (healthy) this long before it died starts the backoff over.
    public var stableAfter = 60.0

    public init() {}

    /// The wait before relaunching after `failures` failed runs in a row (1 for the first).
    public func backoff(afterFailures failures: Int) -> Double {
        min(backoffMaximum, backoffBase * Double(1 << min(max(failures - 1, 0), 20)))
    }
}

/// The life of one managed process as a pure state machine: the adapter reports what happened
/// (launched, healthy, exited) and asks what to do next; time is always passed in.
///
/// starting → running → (exit) → restarting → (backoff over) → starting …; `stop` ends it in
/// stopped from any state. Traffic may go to the process only while it is running.
public struct ProcessSupervisor: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// Launched (or about to be), waiting for the first healthy answer.
        case starting(since: Double)
        case running(since: Double)
        /// Not running; relaunched at `until`.
        case restarting(until: Double)
        case stopped

        public var name: String {
            switch self {
            case .starting: "starting"
            case .running: "running"
            case .restarting: "restarting"
            case .stopped: "stopped"
            }
        }
    }

    /// What the adapter should do now.
    public enum Action: Sendable, Equatable {
        /// Start the process (it is not running).
        case launch
        /// Ask the process's health endpoint; report `healthy` when it answers.
        case checkHealth
        /// It did not become healthy within the start timeout: kill it (its exit is reported as usual).
        case killStalledStart
        /// Nothing until `until` (a backoff), or until an exit is reported.
        case wait(until: Double?)
    }

    /// Why the process last left the running or starting state.
    public enum Failure: Sendable, Equatable {
        case exited(status: Int32)
        case launchFailed(String)
        case startTimedOut
    }

    public let policy: ProcessRestartPolicy
    public private(set) var state: State
    /// Launches after the first one.
    public private(set) var restarts = 0
    /// Failed runs in a row; sets the backoff.
    public private(set) var consecutiveFailures = 0
    public private(set) var lastFailure: Failure?
    /// Whether a process is alive right now (launched and not yet reported exited).
    public private(set) var isAlive = false
    private var launches = 0
    private var startTimedOut = false

    /// A supervisor that launches at once.
    public init(policy: ProcessRestartPolicy, at now: Double) {
        self.policy = policy
        state = .starting(since: now)
    }

    /// Whether routing may send requests to the process.
    public var acceptsTraffic: Bool {
        if case .running = state { return true }
        return false
    }

    public func action(at now: Double) -> Action {
        switch state {
        case .restarting(let until):
            if isAlive { return .wait(until: nil) }
            return now >= until ? .launch : .wait(until: until)
        case .starting(let since):
            // Only the very first launch happens from here; later ones come after a backoff.
            guard isAlive else { return launches == 0 ? .launch : .wait(until: nil) }
            if startTimedOut { return .wait(until: nil) }
            return now - since >= policy.startTimeout ? .killStalledStart : .checkHealth
        case .running, .stopped:
            return .wait(until: nil)
        }
    }

    /// The process was started.
    public mutating func launched(at now: Double) {
        guard state != .stopped else { return }
        launches += 1
        if launches > 1 { restarts += 1 }
        isAlive = true
        startTimedOut = false
        state = .starting(since: now)
    }

    /// The process could not be started at all (missing executable, …): retried after a backoff.
    public mutating func launchFailed(_ reason: String, at now: Double) {
        guard state != .stopped else { return }
        launches += 1
        if launches > 1 { restarts += 1 }
        fail(.launchFailed(reason), at: now)
    }

    /// The start timed out and the adapter killed the process; its exit follows.
    public mutating func killedStalledStart() {
        startTimedOut = true
    }

    /// The health endpoint answered.
    public mutating func healthy(at now: Double) {
        guard case .starting = state, isAlive, !startTimedOut else { return }
        state = .running(since: now)
    }

    /// The process exited (on its own, killed by someone, or stopped by Lifeline).
    public mutating func exited(status: Int32, at now: Double) {
        guard isAlive else { return }
        isAlive = false
        switch state {
        case .stopped:
            return
        case .running(let since) where now - since >= policy.stableAfter:
            consecutiveFailures = 0
        default:
            break
        }
        fail(startTimedOut ? .startTimedOut : .exited(status: status), at: now)
    }

    /// Lifeline is shutting down: no relaunch; the adapter stops a live process.
    public mutating func stop() {
        state = .stopped
    }

    private mutating func fail(_ failure: Failure, at now: Double) {
        lastFailure = failure
        consecutiveFailures += 1
        state = .restarting(until: now + policy.backoff(afterFailures: consecutiveFailures))
    }
}
