import LifelineWire
import Synchronization

/// Pages for deployments whose upstream refuses Lifeline in a way no traffic fixes: credentials
/// rejected (401/403) or not found (404). Failover hides them from clients and outlier detection
/// ejects them, so without this alert a wrong key would go unnoticed until the last healthy
/// deployment fails too. An alert fires when a deployment's problem appears and resolves when
/// the deployment answers again.
public final class DeploymentAlerts: Sendable {
    private struct State {
        var firing: [String: AlertRecord] = [:]
        var resolved: [AlertRecord] = []
    }

    private let state = Mutex(State())
    private let metrics: GatewayMetrics

    init(metrics: GatewayMetrics) {
        self.metrics = metrics
    }

    /// Compares each deployment's problem with the firing alerts. `clock` is the monotonic
    /// reading problems are stamped with, `wallNow` the time alerts carry.
    func evaluate(pool: DeploymentPool, clock: Double, wallNow: Double) -> [AlertChange] {
        var current: [String: AlertRecord] = [:]
        for deployment in pool.deployments {
            guard let problem = deployment.problems.problem else { continue }
            let record = AlertRecord(deployment: deployment.name, model: deployment.model, problem: problem.kind, status: problem.status,
                                     startedAt: wallNow - (clock - problem.since))
            current[record.alert] = record
        }
        let changes = state.withLock { state -> [AlertChange] in
            var changes: [AlertChange] = []
            for (name, record) in current.sorted(by: { $0.key < $1.key }) where state.firing[name] == nil {
                state.firing[name] = record
                changes.append(AlertChange(alert: record, transition: .firing))
            }
            for (name, record) in state.firing.sorted(by: { $0.key < $1.key }) {
                if let now = current[name] {
                    state.firing[name]?.problemStatus = now.problemStatus
                    continue
                }
                var resolved = record
                resolved.resolvedAt = wallNow
                state.firing[name] = nil
                state.resolved.insert(resolved, at: 0)
                if state.resolved.count > SLOMonitor.resolvedKept { state.resolved.removeLast() }
                changes.append(AlertChange(alert: resolved, transition: .resolved))
            }
            return changes
        }
        for change in changes {
            metrics.alertTransition(alert: change.alert.alert, severity: change.alert.severity.rawValue, state: change.transition.rawValue)
            metrics.alertFiring(alert: change.alert.alert, severity: change.alert.severity.rawValue, change.transition == .firing)
        }
        return changes
    }

    public var firing: [AlertRecord] { state.withLock { Array($0.firing.values) }.sorted { $0.startedAt < $1.startedAt } }
    public var resolved: [AlertRecord] { state.withLock { $0.resolved } }

    /// `GET /admin/v1/alerts` with these alerts added to the SLO alerts' `firing` and `resolved`.
    func merged(into alerts: JSONValue) -> JSONValue {
        guard case .object(var object) = alerts else { return alerts }
        object["firing"] = .array((alerts["firing"]?.arrayValue ?? []) + firing.map(\.json))
        object["resolved"] = .array((alerts["resolved"]?.arrayValue ?? []) + resolved.map(\.json))
        return .object(object)
    }
}
