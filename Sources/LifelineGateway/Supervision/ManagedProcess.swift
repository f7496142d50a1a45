import Foundation
import LifelineCore
import LifelineWire
import Logging
import Synchronization

/// One upstream server that Lifeline runs itself, as routing and operators see it: whether it
/// may take traffic, its pid, state and restarts. `ManagedProcessService` drives it; every
/// decision comes from the pure `ProcessSupervisor` inside.
public final class ManagedProcess: Sendable {
    public let deployment: String
    public let config: ProcessConfig
    /// The deployment's base URL, with the port Lifeline picked when the config left it out.
    public let baseURL: String
    public let port: Int
    /// Where the process's stdout and stderr are appended.
    public let logFile: String
    /// Where the running process is recorded (`ProcessRecord`), for the next start to clean up after a hard kill.
    public let pidFile: String
    let clock: @Sendable () -> Double
    private let metrics: GatewayMetrics
    private let logger: Logger

    private struct State {
        var supervisor: ProcessSupervisor
        var pid: Int32?
        /// A launch is under way: an exit reported before it is recorded is kept for it.
        var launching = false
        var exitDuringLaunch: (status: Int32, description: String)?
        var lastExit: String?
        var stateSince: Double
    }

    private let state: Mutex<State>

    init(deployment: String, config: ProcessConfig, baseURL: String, port: Int, logFile: String, pidFile: String,
         clock: @escaping @Sendable () -> Double, metrics: GatewayMetrics, logger: Logger)
    {
        self.deployment = deployment
        self.config = config
        self.baseURL = baseURL
        self.port = port
        self.logFile = logFile
        self.pidFile = pidFile
        self.clock = clock
        self.metrics = metrics
        var logger = logger
        logger[metadataKey: "deployment"] = .string(deployment)
        self.logger = logger
        let now = clock()
        state = Mutex(State(supervisor: ProcessSupervisor(policy: config.restart, at: now), stateSince: now))
        metrics.processState(deployment: deployment, state: "starting")
        metrics.processRestarted(deployment: deployment, count: 0)
    }

    /// Whether routing may send requests to the process now: only while it runs and answers.
    public var acceptsTraffic: Bool { state.withLock { $0.supervisor.acceptsTraffic } }

    var stateName: String { state.withLock { $0.supervisor.state.name } }
    var pid: Int32? { state.withLock { $0.pid } }
    var restarts: Int { state.withLock { $0.supervisor.restarts } }
    var isAlive: Bool { state.withLock { $0.supervisor.isAlive } }

    func action() -> ProcessSupervisor.Action {
        let now = clock()
        return state.withLock { $0.supervisor.action(at: now) }
    }

    /// `arguments` and `environment` with `{port}` replaced.
    var resolvedArguments: [String] { config.arguments.map(substitutePort) }
    var resolvedEnvironment: [String: String] { config.environment.mapValues(substitutePort) }

    private func substitutePort(_ text: String) -> String {
        text.replacingOccurrences(of: ProcessConfig.portPlaceholder, with: String(port))
    }

    /// The health endpoint: `health_path` on the base URL's origin.
    var healthURL: String {
        guard let url = URL(string: baseURL), let scheme = url.scheme, let host = url.host else { return baseURL + config.healthPath }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(hostPart)\(url.port.map { ":\($0)" } ?? "")\(config.healthPath)"
    }

    func willLaunch() {
        state.withLock { $0.launching = true }
    }

    /// Logged once per process when it runs without a parent-death signal.
    func warnUnguarded() {
        logger.warning("managed process started without a parent-death signal (util-linux's setpriv not found); if Lifeline is killed with SIGKILL it keeps running until the next start stops it",
                       metadata: ["pid_file": .string(pidFile)])
    }

    func launched(pid: Int32) {
        let now = clock()
        let (exitedAlready, restarts) = state.withLock { state -> ((Int32, String)?, Int) in
            let before = state.supervisor.restarts
            state.supervisor.launched(at: now)
            state.pid = pid
            state.launching = false
            state.stateSince = now
            let early = state.exitDuringLaunch
            state.exitDuringLaunch = nil
            return (early, state.supervisor.restarts - before)
        }
        if restarts > 0 { metrics.processRestarted(deployment: deployment) }
        metrics.processState(deployment: deployment, state: "starting")
        logger.notice("managed process launched", metadata: ["pid": .stringConvertible(pid), "restarts": .stringConvertible(self.restarts)])
        if let (status, description) = exitedAlready { exited(status: status, description: description) }
    }

    func launchFailed(_ reason: String) {
        let now = clock()
        let (retryIn, restarted) = state.withLock { state -> (Double, Bool) in
            let before = state.supervisor.restarts
            state.supervisor.launchFailed(reason, at: now)
            state.launching = false
            state.lastExit = "could not start: \(reason)"
            state.stateSince = now
            return (Self.retryDelay(state.supervisor, now: now), state.supervisor.restarts > before)
        }
        if restarted { metrics.processRestarted(deployment: deployment) }
        metrics.processState(deployment: deployment, state: stateName)
        logger.error("managed process could not start", metadata: ["error": .string(reason), "retry_in_s": .stringConvertible(retryIn)])
    }

    func healthy() {
        let now = clock()
        let (changed, startup) = state.withLock { state -> (Bool, Double) in
            let wasRunning = state.supervisor.acceptsTraffic
            state.supervisor.healthy(at: now)
            let changed = !wasRunning && state.supervisor.acceptsTraffic
            let startup = now - state.stateSince
            if changed { state.stateSince = now }
            return (changed, startup)
        }
        guard changed else { return }
        metrics.processState(deployment: deployment, state: "running")
        logger.notice("managed process is running", metadata: [
            "pid": .stringConvertible(pid ?? -1), "startup_s": .stringConvertible((startup * 1000).rounded() / 1000)])
    }

    func killedStalledStart() {
        state.withLock { $0.supervisor.killedStalledStart() }
        logger.error("managed process did not become healthy in time; killing it",
                     metadata: ["start_timeout_s": .stringConvertible(config.restart.startTimeout), "health_url": .string(healthURL)])
    }

    /// Reported from the process's termination handler, on any thread.
    func exited(status: Int32, description: String) {
        let now = clock()
        let outcome = state.withLock { state -> (stopped: Bool, retryIn: Double, pid: Int32?)? in
            guard state.supervisor.isAlive else {
                if state.launching { state.exitDuringLaunch = (status, description) }
                return nil
            }
            let pid = state.pid
            state.supervisor.exited(status: status, at: now)
            state.pid = nil
            state.lastExit = description
            state.stateSince = now
            return (state.supervisor.state == .stopped, Self.retryDelay(state.supervisor, now: now), pid)
        }
        guard let outcome else { return }
        metrics.processState(deployment: deployment, state: stateName)
        let metadata: Logger.Metadata = ["pid": .stringConvertible(outcome.pid ?? -1), "exit": .string(description)]
        if outcome.stopped {
            logger.notice("managed process stopped", metadata: metadata)
        } else {
            logger.error("managed process exited; restarting", metadata: metadata.merging(
                ["retry_in_s": .stringConvertible((outcome.retryIn * 1000).rounded() / 1000)]) { $1 })
        }
    }

    /// Shutdown: no more relaunches, no more traffic.
    func stop() {
        state.withLock { $0.supervisor.stop() }
        metrics.processState(deployment: deployment, state: "stopped")
    }

    private static func retryDelay(_ supervisor: ProcessSupervisor, now: Double) -> Double {
        if case .restarting(let until) = supervisor.state { return max(0, until - now) }
        return 0
    }

    /// As the admin API shows it.
    var json: JSONValue {
        let now = clock()
        return state.withLock { state in
            [
                "state": .string(state.supervisor.state.name),
                "pid": state.pid.map { .number(Double($0)) } ?? .null,
                "restarts": .number(Double(state.supervisor.restarts)),
                "in_state_s": .number(((now - state.stateSince) * 1000).rounded() / 1000),
                "last_exit": state.lastExit.map(JSONValue.string) ?? .null,
                "port": .number(Double(port)),
                "log_file": .string(logFile),
            ]
        }
    }
}
