import LifelineCore
import LifelineWire
import Synchronization

/// A change of an alert that receivers hear about.
public struct AlertChange: Sendable, Equatable {
    public enum Transition: String, Sendable {
        case firing
        case resolved
    }

    public var alert: AlertRecord
    public var transition: Transition
}

/// The gateway's SLO state: finished requests go into the SLI buckets, each evaluation turns
/// them into burn-rate gauges and alert changes, and the history of alerts is kept for the
/// admin API. Times are wall-clock seconds, so saved buckets stay meaningful across restarts.
public final class SLOMonitor: Sendable {
    /// Resolved alerts kept for `GET /admin/v1/alerts`.
    static let resolvedKept = 50

    private struct State {
        var evaluator: SLOEvaluator
        var firing: [String: AlertRecord] = [:]
        var resolved: [AlertRecord] = []
        var statuses: [SLOEvaluator.Status] = []
        var evaluatedAt: Double?
        var savedAt: Double
        /// Peak burns of alerts firing before a restart, until their records are rebuilt.
        var restoredPeaks: [String: Double] = [:]
        var savedAlerts: [String: SavedAlert] = [:]
    }

    private let state: Mutex<State>
    private let store: any SLIBucketStore
    /// Where the buckets are kept (persistent when the gateway has a store).
    var bucketStore: any SLIBucketStore { store }
    private let metrics: GatewayMetrics

    public init(config: LifelineConfig, store: any SLIBucketStore = InMemorySLIBucketStore(), metrics: GatewayMetrics, now: Double) {
        self.store = store
        self.metrics = metrics
        var evaluator = SLOEvaluator(objectives: config.objectives, windowScale: config.alerting.windowScale)
        for objective in config.objectives {
            if let saved = store.load(slo: objective.name) { evaluator.restore(slo: objective.name, from: saved) }
        }
        // Alerts that were firing when the process stopped go on firing as the same episode:
        // no second "firing" notification, and their "resolved" one still comes.
        let savedAlerts = store.loadAlerts()
        evaluator.restoreAlertStates(savedAlerts.mapValues(\.state))
        var initial = State(evaluator: evaluator, savedAt: now)
        initial.restoredPeaks = savedAlerts.mapValues(\.peakBurn)
        initial.savedAlerts = savedAlerts
        state = Mutex(initial)
    }

    /// Counts one finished request.
    public func record(model: String, outcome: RequestOutcome, at now: Double) {
        state.withLock { $0.evaluator.record(model: model, outcome: outcome, at: now) }
    }

    /// Computes burn rates over this instance's counts and its `peers'`, advances alerts, keeps
    /// changed buckets; returns what fired or resolved. Only the leader saves alert states (the
    /// others' alerts are their own view, never announced).
    @discardableResult
    public func evaluate(at now: Double, peers: PeerCounts = PeerCounts(), leading: Bool = true) -> [AlertChange] {
        let (statuses, changes, snapshots, alerts) = state.withLock { state in
            let statuses = state.evaluator.evaluate(at: now, peers: peers)
            var changes: [AlertChange] = []
            for status in statuses {
                for alert in status.alerts {
                    switch alert.transition {
                    case .fired(let at)?:
                        let record = AlertRecord(alert: alert, objective: status.objective, startedAt: at)
                        state.firing[alert.id] = record
                        changes.append(AlertChange(alert: record, transition: .firing))
                    case .resolved(let firedAt, let at)?:
                        // A restored alert may resolve before its record was rebuilt.
                        guard var record = state.firing.removeValue(forKey: alert.id)
                            ?? state.restoredPeaks.removeValue(forKey: alert.id).map({ peak in
                                var restored = AlertRecord(alert: alert, objective: status.objective, startedAt: firedAt)
                                restored.peakBurn = peak
                                return restored
                            })
                        else { continue }
                        record.resolvedAt = at
                        record.longBurn = alert.longBurn
                        record.shortBurn = alert.shortBurn
                        Self.keepResolved(record, in: &state)
                        changes.append(AlertChange(alert: record, transition: .resolved))
                    case nil:
                        guard alert.state.isFiring else { continue }
                        guard var record = state.firing[alert.id] else {
                            // Restored from before a restart: rebuild its record with the episode's start.
                            var restored = AlertRecord(alert: alert, objective: status.objective, startedAt: alert.state.firingSince ?? now)
                            restored.peakBurn = max(state.restoredPeaks.removeValue(forKey: alert.id) ?? 0, alert.longBurn)
                            state.firing[alert.id] = restored
                            continue
                        }
                        record.longBurn = alert.longBurn
                        record.shortBurn = alert.shortBurn
                        record.peakBurn = max(record.peakBurn, alert.longBurn)
                        state.firing[alert.id] = record
                    }
                }
            }
            state.statuses = statuses
            state.evaluatedAt = now
            let snapshots = statuses.compactMap { status in
                state.evaluator.snapshot(of: status.objective.name, changedSince: state.savedAt).map { (status.objective.name, $0) }
            }
            state.savedAt = now
            let alerts = Self.savedAlerts(state)
            let alertsChanged = leading && alerts != state.savedAlerts
            if leading { state.savedAlerts = alerts }
            return (statuses, changes, snapshots, alertsChanged ? alerts : nil)
        }
        for (slo, snapshot) in snapshots { store.save(slo: slo, snapshot) }
        if let alerts { store.saveAlerts(alerts) }
        for status in statuses { metrics.sloStatus(status) }
        for change in changes {
            metrics.alertTransition(alert: change.alert.alert, severity: change.alert.severity.rawValue, state: change.transition.rawValue)
        }
        return changes
    }

    /// This instance's buckets changed since `time`, for the other instances.
    func changedBuckets(since time: Double) -> [SeriesBucket] { state.withLock { $0.evaluator.changedBuckets(since: time) } }

    /// Becoming the leader: the alert states the previous leader saved replace this instance's
    /// own view, so an alert it announced goes on as the same episode (no second `firing`, and
    /// its `resolved` still comes) and one it never announced fires now.
    func takeOver(_ saved: [String: SavedAlert]) {
        state.withLock { state in
            state.evaluator.restoreAlertStates(state.evaluator.alertStates.mapValues { _ in BurnRateAlertState() }
                .merging(saved.mapValues(\.state)) { _, stored in stored })
            state.firing = [:]
            state.restoredPeaks = saved.mapValues(\.peakBurn)
            state.savedAlerts = saved
        }
    }

    /// Takes a reloaded configuration: buckets come back through the store, alert states carry
    /// over for SLOs that remain, and alerts of SLOs that are gone resolve now.
    public func reload(_ config: LifelineConfig, at now: Double) -> [AlertChange] {
        let (changes, removed) = state.withLock { state in
            for objective in state.evaluator.tracked.map(\.objective) {
                if let snapshot = state.evaluator.snapshot(of: objective.name, changedSince: state.savedAt) {
                    store.save(slo: objective.name, snapshot)
                }
            }
            var next = SLOEvaluator(objectives: config.objectives, windowScale: config.alerting.windowScale)
            for objective in config.objectives {
                if let saved = store.load(slo: objective.name) { next.restore(slo: objective.name, from: saved) }
            }
            next.adoptAlertStates(from: state.evaluator)
            let kept = Set(next.tracked.flatMap { item in item.rules.map { "\(item.objective.name):\($0.name)" } })
            var changes: [AlertChange] = []
            for (id, record) in state.firing where !kept.contains(id) || !next.isFiring(alert: id) {
                var resolved = record
                resolved.resolvedAt = now
                state.firing[id] = nil
                Self.keepResolved(resolved, in: &state)
                changes.append(AlertChange(alert: resolved, transition: .resolved))
            }
            let names = Set(config.objectives.map(\.name))
            let removed = state.statuses.filter { !names.contains($0.objective.name) }
            state.statuses.removeAll { !names.contains($0.objective.name) }
            state.evaluator = next
            state.savedAt = now
            return (changes, removed)
        }
        for status in removed { metrics.sloRemoved(status) }
        return changes
    }

    /// The firing alerts' states, as the store keeps them (quiet ones need no row).
    private static func savedAlerts(_ state: State) -> [String: SavedAlert] {
        state.evaluator.alertStates.filter(\.value.isFiring).reduce(into: [:]) { saved, entry in
            saved[entry.key] = SavedAlert(state: entry.value, peakBurn: state.firing[entry.key]?.peakBurn ?? state.restoredPeaks[entry.key] ?? 0)
        }
    }

    private static func keepResolved(_ record: AlertRecord, in state: inout State) {
        state.resolved.insert(record, at: 0)
        if state.resolved.count > resolvedKept { state.resolved.removeLast(state.resolved.count - resolvedKept) }
    }

    public var firing: [AlertRecord] { state.withLock { Array($0.firing.values) }.sorted { $0.startedAt < $1.startedAt } }
    public var resolved: [AlertRecord] { state.withLock { $0.resolved } }

    /// `GET /admin/v1/alerts`: firing alerts, recently resolved ones, and every SLO's burn rates.
    public var json: JSONValue {
        let (firing, resolved, statuses, evaluatedAt, scale) = state.withLock {
            (Array($0.firing.values), $0.resolved, $0.statuses, $0.evaluatedAt, $0.evaluator.windowScale)
        }
        let slos: [JSONValue] = statuses.map { status in
            var object: [String: JSONValue] = [
                "slo": .string(status.objective.name), "model": .string(status.objective.model),
                "sli": .string(status.objective.kind.name), "target": .number(status.objective.target),
                "period_days": .number(status.objective.periodDays),
                "burn_rates": .object(status.burnRates.mapValues { .number(AlertRecord.rounded($0)) }),
                "error_budget_remaining": .number(AlertRecord.rounded(status.budgetRemaining)),
                "firing": .array(status.alerts.filter(\.state.isFiring).map { .string($0.id) }),
            ]
            if case .latency(let threshold) = status.objective.kind { object["threshold_ms"] = .number(threshold * 1000) }
            return .object(object)
        }
        return [
            "firing": .array(firing.sorted { $0.startedAt < $1.startedAt }.map(\.json)),
            "resolved": .array(resolved.map(\.json)),
            "slos": .array(slos),
            "evaluated_at": evaluatedAt.map { .string(Timestamp.iso8601($0)) } ?? .null,
            "window_scale": .number(scale),
        ]
    }
}
