import Foundation
import LifelineCore
import LifelineStore
import Logging
import Synchronization

/// The status page's live state: component statuses from real traffic, incidents (automatic and
/// by hand), maintenances and daily uptime. Pure decisions live in `LifelineCore/Status`; this
/// class feeds them, applies what they decide (drains, saves) and answers the routes.
/// Times are wall-clock seconds: incidents and uptime are read by people and outlive restarts.
public final class StatusCenter: Sendable {
    /// What the routes render: everything public at one instant.
    public struct Snapshot: Sendable {
        public var pageName: String
        public var pageURL: String
        public var updatedAt: Double
        public var components: [(component: StatusComponent, status: ComponentStatus, updatedAt: Double)]
        /// Published incidents, newest first.
        public var incidents: [Incident]
        /// Newest first by start.
        public var maintenances: [Maintenance]
        /// Component name → day → record.
        public var uptime: [String: [Int: UptimeRecord]]
        public var now: Double
    }

    private struct State {
        var board: StatusBoard
        var tracker: IncidentTracker
        var incidents: [Incident] = []
        var maintenances: [Maintenance] = []
        var statuses: [String: ComponentStatus] = [:]
        var statusSince: [String: Double] = [:]
        var uptime: [String: [Int: UptimeRecord]] = [:]
        var lastEvaluatedAt: Double?
        var createdAt: Double
        /// Positions of unresolved incidents (drafts included): what each request is checked against.
        var open: [Int] = []
        /// Incidents whose evidence changed since they were last saved.
        var dirty: Set<String> = []
        /// Recent upstream failures and ejections: a new incident takes those since its first symptom.
        var recent: [(at: Double, decision: GatewayMetrics.Decision)] = []
        /// Recent failed requests, with the components they count toward: likewise.
        var recentFailures: [(components: Set<String>, request: ObservedRequest)] = []
    }

    /// Recent decisions kept for incidents that have not opened yet.
    static let recentKept = 2_000

    private let state: Mutex<State>
    private let store: any LifelineStore
    private let logger: Logger
    private let metrics: GatewayMetrics
    /// Keeps saves in order: the tick and admin calls never interleave their writes.
    private let saving = Mutex<Task<Void, Never>?>(nil)

    init(config: LifelineConfig, store: any LifelineStore, metrics: GatewayMetrics, logger: Logger, now: Double) {
        self.store = store
        self.logger = logger
        self.metrics = metrics
        let board = StatusBoard(models: config.models.map(\.name), thresholds: config.status.thresholds)
        state = Mutex(State(board: board, tracker: IncidentTracker(policy: config.status.policy, windowSeconds: config.status.thresholds.windowSeconds),
                            createdAt: now))
    }

    /// Loads incidents, maintenances and 90 days of uptime; adopts an open automatic incident
    /// (it resolves as usual) and re-drains deployments of a maintenance still in progress.
    func load(pool: DeploymentPool, at now: Double) async {
        do {
            let incidents = try await store.incidents()
            let maintenances = try await store.maintenances()
            let uptime = try await store.uptime(since: Self.day(now) - 90)
            state.withLock { state in
                state.incidents = incidents
                state.maintenances = maintenances
                for record in uptime { state.uptime[record.component, default: [:]][record.day] = record }
                if let open = incidents.last(where: { $0.automatic && !$0.isResolved }) { state.tracker.adopt(open, at: now) }
                Self.reindex(&state)
            }
            for maintenance in maintenances where maintenance.isActive { setDrained(true, maintenance, pool: pool) }
        } catch {
            logger.error("status history could not be loaded", metadata: ["error": .string("\(error)")])
        }
    }

    /// Takes a reloaded configuration: thresholds, policy and the model list.
    func reload(_ config: LifelineConfig) {
        state.withLock { state in
            state.board = StatusBoard(models: config.models.map(\.name), thresholds: config.status.thresholds)
            state.tracker.policy = config.status.policy
        }
    }

    /// Counts one finished request as its client saw it, and as evidence for every open
    /// incident about a component it counts toward.
    func record(route: String, model: String, outcome: RequestOutcome, observed: ObservedRequest? = nil, at now: Double) {
        state.withLock { state in
            let judged = state.board.record(route: route, model: model, outcome: outcome, at: now)
            guard !state.open.isEmpty || judged.available == false else { return }
            var request = observed ?? ObservedRequest(at: now, available: nil)
            request.at = now
            request.available = judged.available
            request.slow = judged.fast == false
            request.firstTokenSeconds = judged.fast != nil ? outcome.latencySeconds : nil
            let components = Set(state.board.components(route: route, model: model))
            if judged.available == false {
                // Kept for an incident that opens soon: its first symptoms' callers and tokens lost.
                state.recentFailures.append((components, request))
                if state.recentFailures.count > 2 * Self.recentKept { state.recentFailures.removeFirst(state.recentFailures.count - Self.recentKept) }
            }
            for index in state.open where Self.concerns(state.incidents[index], components) {
                state.incidents[index].evidence.record(request)
                state.dirty.insert(state.incidents[index].id)
            }
        }
    }

    /// An ejection by outlier detection or a failed upstream attempt (even one failover hid): the
    /// deployment is involved in open incidents about its model, and in one that opens soon.
    func record(_ decision: GatewayMetrics.Decision, at now: Double) {
        state.withLock { state in
            state.recent.append((now, decision))
            // Trimmed in batches, so a burst of failures does not shift the whole list each time.
            if state.recent.count > 2 * Self.recentKept { state.recent.removeFirst(state.recent.count - Self.recentKept) }
            for index in state.open { Self.apply(decision, at: now, to: &state.incidents[index], dirty: &state.dirty) }
        }
    }

    private static func apply(_ decision: GatewayMetrics.Decision, at now: Double, to incident: inout Incident, dirty: inout Set<String>) {
        switch decision {
        case .ejection(let deployment, let model):
            guard concerns(incident, [model, StatusBoard.apiComponent]) else { return }
            incident.evidence.recordEjection(deployment: deployment, at: now)
        case .upstreamFailure(let deployment, let model, let outcome):
            guard concerns(incident, [model, StatusBoard.apiComponent]) else { return }
            incident.evidence.recordUpstreamFailure(deployment: deployment, outcome: outcome)
        }
        dirty.insert(incident.id)
    }

    /// An incident without components is about the whole service.
    private static func concerns(_ incident: Incident, _ components: Set<String>) -> Bool {
        incident.components.isEmpty || !components.isDisjoint(with: incident.components)
    }

    private static func reindex(_ state: inout State) {
        state.open = state.incidents.indices.filter { !state.incidents[$0].isResolved }
    }

    /// A resolved incident gets its postmortem draft, once; operators edit it from there.
    private static func draftPostmortemIfResolved(_ incident: inout Incident, at now: Double) {
        guard incident.isResolved, incident.postmortemBody == nil else { return }
        incident.postmortemBody = PostmortemDraft.write(incident)
        incident.postmortemUpdatedAt = now
    }

    static func day(_ seconds: Double) -> Int { Int((seconds / 86_400).rounded(.down)) }

    // MARK: Evaluation

    /// Advances statuses over this instance's traffic and its `peers'`; the leader also advances
    /// the automatic incident, maintenances and uptime, and saves what changed. The others only
    /// show what the leader and operators saved (`sync`).
    func evaluate(pool: DeploymentPool, at now: Double, peers: PeerCounts = PeerCounts(), leading: Bool = true) {
        var changedIncidents: [Incident] = []
        // Incidents with a new update, status or impact: logged and counted once each. The others
        // in `changedIncidents` only have new evidence to save.
        var announced: [Incident] = []
        var startedOrEnded: [(Maintenance, Bool)] = []
        var uptimeRows: [UptimeRecord] = []
        state.withLock { state in
            // Maintenances first: a component in maintenance shows that and opens no incident.
            for index in state.maintenances.indices where leading {
                guard let next = state.maintenances[index].transition(at: now) else { continue }
                let body = next == .inProgress ? "Maintenance is in progress." : "Maintenance has been completed."
                state.maintenances[index].move(to: next, body: body, at: now)
                if next == .inProgress { startedOrEnded.append((state.maintenances[index], true)) }
                if next == .completed { startedOrEnded.append((state.maintenances[index], false)) }
            }
            let inMaintenance = Set(state.maintenances.filter(\.isActive).flatMap(\.components))
            var traffic: [String: ComponentStatus] = [:]
            var figures: [String: ComponentFigures] = [:]
            for component in state.board.components {
                let figure = state.board.figures(of: component.name, at: now, peers: peers)
                figures[component.name] = figure
                traffic[component.name] = inMaintenance.contains(component.name)
                    ? .operational : StatusBoard.status(for: figure, thresholds: state.board.thresholds)
            }
            if leading, var change = state.tracker.evaluate(statuses: traffic, figures: figures, at: now) {
                let existing = state.incidents.first(where: { $0.id == change.id })
                if existing == nil || existing!.status != change.status || existing!.impact != change.impact
                    || existing!.updates.count != change.updates.count
                {
                    announced.append(change)
                }
                if let existing {
                    // The tracker keeps the timeline; what was measured and written meanwhile lives here.
                    change.evidence = existing.evidence
                    change.postmortemBody = existing.postmortemBody
                    change.postmortemUpdatedAt = existing.postmortemUpdatedAt
                    change.postmortemPublishedAt = existing.postmortemPublishedAt
                } else {
                    // Its first symptoms are already in the window that opened it.
                    let since = change.startedAt - state.board.thresholds.windowSeconds
                    let seeds = change.components.compactMap { figures[$0] }.max { $0.requests < $1.requests }
                    if let seeds {
                        let failures = state.recentFailures.filter { $0.request.at >= since && Self.concerns(change, $0.components) }.map(\.request)
                        change.evidence.seed(failed: Int((Double(seeds.requests) * seeds.errorShare).rounded()), total: seeds.requests,
                                             since: change.startedAt, failures: failures)
                    }
                    for (at, decision) in state.recent where at >= since { Self.apply(decision, at: at, to: &change, dirty: &state.dirty) }
                }
                Self.draftPostmortemIfResolved(&change, at: now)
                Self.upsert(change, into: &state.incidents)
                Self.reindex(&state)
                changedIncidents.append(change)
            }
            for index in state.open where leading {
                for name in state.incidents[index].components {
                    if let figure = figures[name], state.incidents[index].evidence.observe(figure, at: now) {
                        state.dirty.insert(state.incidents[index].id)
                    }
                }
            }
            // Evidence that changed since the last evaluation is saved with its incident (by the
            // leader: the others' evidence is their own traffic's, and the store has the leader's).
            let changedIDs = Set(changedIncidents.map(\.id))
            for id in state.dirty where leading && !changedIDs.contains(id) {
                if let incident = state.incidents.first(where: { $0.id == id }) { changedIncidents.append(incident) }
            }
            state.dirty = []
            // What the page shows: traffic, raised by open incidents' declared statuses, or maintenance.
            var shown = traffic
            for incident in state.incidents where !incident.isResolved && incident.published && !incident.automatic {
                for (name, status) in incident.updates.last(where: { !$0.affected.isEmpty })?.affected ?? [:] where shown[name] != nil {
                    shown[name] = max(shown[name]!, status)
                }
            }
            for name in inMaintenance where shown[name] != nil { shown[name] = .underMaintenance }
            for (name, status) in shown where state.statuses[name] != status {
                state.statuses[name] = status
                state.statusSince[name] = now
            }
            // Uptime: the time since the last evaluation, in the status seen now. A gap longer than a
            // minute (the process was stopped) is not counted at all rather than guessed.
            if leading, let last = state.lastEvaluatedAt, now > last, now - last <= 60 {
                let elapsed = now - last
                let day = Self.day(now)
                for (name, status) in shown {
                    var row = UptimeRecord(component: name, day: day, observedSeconds: elapsed)
                    switch status {
                    case .degradedPerformance: row.degradedSeconds = elapsed
                    case .partialOutage: row.partialOutageSeconds = elapsed
                    case .majorOutage: row.majorOutageSeconds = elapsed
                    case .underMaintenance: row.maintenanceSeconds = elapsed
                    case .operational: break
                    }
                    uptimeRows.append(row)
                    var total = state.uptime[name]?[day] ?? UptimeRecord(component: name, day: day)
                    total.observedSeconds += row.observedSeconds
                    total.degradedSeconds += row.degradedSeconds
                    total.partialOutageSeconds += row.partialOutageSeconds
                    total.majorOutageSeconds += row.majorOutageSeconds
                    total.maintenanceSeconds += row.maintenanceSeconds
                    state.uptime[name, default: [:]][day] = total
                }
            }
            state.lastEvaluatedAt = now
        }
        for (maintenance, started) in startedOrEnded {
            setDrained(started, maintenance, pool: pool)
            logger.notice(started ? "maintenance started" : "maintenance completed", metadata: [
                "id": .string(maintenance.id), "deployments": .string(maintenance.deployments.joined(separator: ","))])
        }
        for incident in announced {
            metrics.statusIncidentChanged(status: incident.status.rawValue)
            logger.notice("incident \(incident.status.rawValue)", metadata: [
                "id": .string(incident.id), "impact": .string(incident.impact.rawValue), "name": .string(incident.name)])
        }
        save(incidents: changedIncidents, maintenances: startedOrEnded.map(\.0), uptime: uptimeRows)
    }

    private func setDrained(_ drained: Bool, _ maintenance: Maintenance, pool: DeploymentPool) {
        for name in maintenance.deployments { pool.deployment(named: name)?.setDrained(drained) }
    }

    private static func upsert(_ incident: Incident, into incidents: inout [Incident]) {
        if let index = incidents.firstIndex(where: { $0.id == incident.id }) { incidents[index] = incident } else { incidents.append(incident) }
    }

    /// Queues writes behind earlier ones so the store sees them in order.
    private func save(incidents: [Incident] = [], maintenances: [Maintenance] = [], uptime: [UptimeRecord] = []) {
        guard !incidents.isEmpty || !maintenances.isEmpty || !uptime.isEmpty else { return }
        let store = store
        let logger = logger
        saving.withLock { previous in
            let before = previous
            previous = Task {
                await before?.value
                do {
                    for incident in incidents { try await store.save(incident) }
                    for maintenance in maintenances { try await store.save(maintenance) }
                    try await store.addUptime(uptime)
                } catch {
                    logger.error("status could not be saved", metadata: ["error": .string("\(error)")])
                }
            }
        }
    }

    /// Waits for queued writes (at shutdown, and in tests).
    func flush() async {
        let pending = saving.withLock { $0 }
        await pending?.value
    }

    // MARK: Several instances

    /// This instance's status buckets changed since `time`, for the other instances.
    func changedBuckets(since time: Double) -> [SeriesBucket] { state.withLock { $0.board.changedBuckets(since: time) } }

    /// Reads incidents, maintenances and uptime back from a shared store. A follower takes the
    /// store's version of everything (the leader's and operators' writes). The leader takes in
    /// what operators changed on other instances (a newer version of an incident or a
    /// maintenance) and keeps its own evidence. Deployments follow the maintenances in progress.
    func sync(pool: DeploymentPool, leading: Bool, at now: Double) async throws {
        let incidents = try await store.incidents()
        let maintenances = try await store.maintenances()
        let uptime = leading ? nil : try await store.uptime(since: Self.day(now) - 90)
        let (started, ended) = state.withLock { state in
            let activeBefore = Set(state.maintenances.filter(\.isActive).map(\.id))
            // The leader's evidence changes without a new `updatedAt`: a follower takes equal ones too.
            let changed = Self.takeNewer(incidents, into: &state.incidents, id: \.id, updatedAt: \.updatedAt, orEqual: !leading) { local, stored in
                var next = stored
                if leading { next.evidence = local.evidence }
                return next
            }
            if leading { for incident in changed { state.tracker.operatorChanged(incident, at: now) } }
            Self.takeNewer(maintenances, into: &state.maintenances, id: \.id, updatedAt: \.updatedAt, orEqual: !leading) { $1 }
            if let uptime {
                state.uptime = [:]
                for record in uptime { state.uptime[record.component, default: [:]][record.day] = record }
            }
            Self.reindex(&state)
            let active = state.maintenances.filter(\.isActive)
            return (active.filter { !activeBefore.contains($0.id) },
                    state.maintenances.filter { activeBefore.contains($0.id) && !$0.isActive })
        }
        for maintenance in started { setDrained(true, maintenance, pool: pool) }
        for maintenance in ended { setDrained(false, maintenance, pool: pool) }
    }

    /// Adds the stored rows this instance lacks and replaces those the store has a newer version
    /// of (or, with `orEqual`, as new a one), as `merged` makes them; returns the replaced ones.
    @discardableResult
    private static func takeNewer<Row>(_ stored: [Row], into local: inout [Row], id: KeyPath<Row, String>, updatedAt: KeyPath<Row, Double>,
                                       orEqual: Bool, merged: (_ local: Row, _ stored: Row) -> Row) -> [Row]
    {
        var replaced: [Row] = []
        for row in stored {
            guard let index = local.firstIndex(where: { $0[keyPath: id] == row[keyPath: id] }) else {
                local.append(row)
                continue
            }
            let (theirs, ours) = (row[keyPath: updatedAt], local[index][keyPath: updatedAt])
            guard theirs > ours || (orEqual && theirs == ours) else { continue }
            local[index] = merged(local[index], row)
            replaced.append(local[index])
        }
        return replaced
    }

    /// Becoming the leader: the store's state replaces this instance's view, and the automatic
    /// incident the previous leader opened is adopted (it resolves as usual; no second one opens).
    func takeOver(pool: DeploymentPool, at now: Double) async throws {
        try await sync(pool: pool, leading: false, at: now)
        state.withLock { state in
            state.tracker = IncidentTracker(policy: state.tracker.policy, windowSeconds: state.board.thresholds.windowSeconds)
            if let open = state.incidents.last(where: { $0.automatic && !$0.isResolved }) { state.tracker.adopt(open, at: now) }
        }
    }

    // MARK: Operators

    enum Failure: Error {
        case notFound(String)
        case invalid(String, param: String)
    }

    /// Opens an incident by hand; `components` maps names to the status they should show.
    func createIncident(name: String, body: String, status: IncidentStatus, impact: IncidentImpact?, components: [String: ComponentStatus],
                        published: Bool, at now: Double) throws(Failure) -> Incident
    {
        try checkComponents(components)
        let id = StableID.make("incident:manual:\(now):\(UUID().uuidString)")
        let worst = components.values.max() ?? .operational
        var incident = Incident(id: id, name: name, status: status, impact: impact ?? worst.impact, createdAt: now,
                                components: components.keys.sorted(), automatic: false, published: published)
        incident.add(status: status, body: body, at: now, affected: components)
        Self.draftPostmortemIfResolved(&incident, at: now)
        let created = incident
        state.withLock { state in
            Self.upsert(created, into: &state.incidents)
            Self.reindex(&state)
        }
        save(incidents: [created])
        return created
    }

    /// Adds an update (and optionally renames, re-rates or publishes); resolving is an update with status resolved.
    func updateIncident(id: String, status: IncidentStatus?, body: String?, name: String?, impact: IncidentImpact?,
                        components: [String: ComponentStatus]?, publish: Bool?, at now: Double) throws(Failure) -> Incident
    {
        if let components { try checkComponents(components) }
        let result: Result<Incident, Failure> = state.withLock { state in
            guard let index = state.incidents.firstIndex(where: { $0.id == id }) else { return .failure(.notFound(id)) }
            var incident = state.incidents[index]
            if let name { incident.name = name }
            if let impact { incident.impact = impact }
            if let publish { incident.published = publish; incident.updatedAt = now }
            if status != nil || body != nil {
                let next = status ?? incident.status
                incident.add(status: next, body: body ?? Self.defaultBody(next), at: now, affected: components ?? [:])
            }
            Self.draftPostmortemIfResolved(&incident, at: now)
            state.incidents[index] = incident
            Self.reindex(&state)
            state.tracker.operatorChanged(incident, at: now)
            return .success(incident)
        }
        let incident = try result.get()
        save(incidents: [incident])
        return incident
    }

    // MARK: Postmortems

    /// Changes an incident's postmortem: `body` replaces the text, `redraft` writes it anew from
    /// the evidence, `publish` makes it public (it stays public through later edits).
    func changePostmortem(id: String, body: String? = nil, redraft: Bool = false, publish: Bool = false,
                          at now: Double) throws(Failure) -> Incident
    {
        let result: Result<Incident, Failure> = state.withLock { state in
            guard let index = state.incidents.firstIndex(where: { $0.id == id }) else { return .failure(.notFound(id)) }
            var incident = state.incidents[index]
            if redraft {
                incident.postmortemBody = PostmortemDraft.write(incident)
                incident.postmortemUpdatedAt = now
            }
            if let body {
                incident.postmortemBody = body
                incident.postmortemUpdatedAt = now
            }
            if publish {
                guard incident.postmortemBody != nil else {
                    return .failure(.invalid("This incident has no postmortem yet: it is drafted when the incident resolves, "
                        + "or write one with 'body'.", param: "body"))
                }
                guard incident.published else {
                    return .failure(.invalid("Publish the incident before its postmortem.", param: "published"))
                }
                if incident.postmortemPublishedAt == nil { incident.postmortemPublishedAt = now }
            }
            incident.updatedAt = max(incident.updatedAt, now)
            state.incidents[index] = incident
            return .success(incident)
        }
        let incident = try result.get()
        save(incidents: [incident])
        return incident
    }

    func incident(id: String) -> Incident? { state.withLock { state in state.incidents.first { $0.id == id } } }

    static func defaultBody(_ status: IncidentStatus) -> String {
        switch status {
        case .investigating: "We are investigating."
        case .identified: "The cause has been identified and a fix is under way."
        case .monitoring: "A fix is in place; we are monitoring."
        case .resolved: "This incident has been resolved."
        }
    }

    private func checkComponents(_ components: [String: ComponentStatus]) throws(Failure) {
        let known = Set(state.withLock { $0.board.components.map(\.name) })
        if let unknown = components.keys.sorted().first(where: { !known.contains($0) }) {
            throw .invalid("No component is named '\(unknown)' (known: \(known.sorted().joined(separator: ", "))).", param: "components")
        }
    }

    /// All incidents, drafts included, newest first (the admin list).
    var allIncidents: [Incident] { state.withLock { $0.incidents }.sorted { $0.createdAt > $1.createdAt } }
    var allMaintenances: [Maintenance] { state.withLock { $0.maintenances }.sorted { $0.scheduledFor > $1.scheduledFor } }
    var componentNames: [String] { state.withLock { $0.board.components.map(\.name) } }

    /// Schedules maintenance of deployments; their models are the components shown under maintenance.
    func scheduleMaintenance(name: String, message: String, deployments: [String], from: Double, until: Double, pool: DeploymentPool,
                             at now: Double) throws(Failure) -> Maintenance
    {
        guard !deployments.isEmpty else { throw .invalid("'deployments' must name at least one deployment.", param: "deployments") }
        if let unknown = deployments.first(where: { pool.deployment(named: $0) == nil }) {
            throw .invalid("No deployment is named '\(unknown)'.", param: "deployments")
        }
        guard until > from else { throw .invalid("'scheduled_until' must be after 'scheduled_for'.", param: "scheduled_until") }
        guard until > now else { throw .invalid("'scheduled_until' is in the past.", param: "scheduled_until") }
        let components = Array(Set(deployments.compactMap { pool.deployment(named: $0)?.model })).sorted()
        let maintenance = Maintenance(id: StableID.make("maintenance:\(now):\(UUID().uuidString)"), name: name, message: message,
                                      deployments: deployments, components: components, scheduledFor: from, scheduledUntil: until,
                                      createdAt: now)
        state.withLock { $0.maintenances.append(maintenance) }
        save(maintenances: [maintenance])
        return maintenance
    }

    /// Ends a maintenance now (completes it, or cancels one not yet started) on whichever
    /// instance the operator asked: its deployments come back here at once, and on the other
    /// instances when they read it from the store.
    func completeMaintenance(id: String, pool: DeploymentPool, at now: Double) throws(Failure) -> Maintenance {
        let result: Result<(Maintenance, Bool), Failure> = state.withLock { state in
            guard let index = state.maintenances.firstIndex(where: { $0.id == id }) else { return .failure(.notFound(id)) }
            let wasActive = state.maintenances[index].isActive
            if state.maintenances[index].status != .completed {
                state.maintenances[index].scheduledUntil = min(state.maintenances[index].scheduledUntil, now)
                state.maintenances[index].move(to: .completed, body: "Maintenance has been completed.", at: now)
            }
            return .success((state.maintenances[index], wasActive))
        }
        let (maintenance, wasActive) = try result.get()
        if wasActive {
            setDrained(false, maintenance, pool: pool)
            logger.notice("maintenance completed", metadata: [
                "id": .string(maintenance.id), "deployments": .string(maintenance.deployments.joined(separator: ","))])
        }
        save(maintenances: [maintenance])
        return maintenance
    }

    /// Whether any of `deployments` is in a maintenance in progress (alerts about them are held back).
    func inMaintenance(deployments: [String]) -> Bool {
        let active = Set(state.withLock { $0.maintenances.filter(\.isActive).flatMap(\.deployments) })
        return deployments.contains { active.contains($0) }
    }

    // MARK: Reading

    func snapshot(pageName: String, pageURL: String, now: Double) -> Snapshot {
        state.withLock { state in
            let components = state.board.components.map { component in
                (component: component, status: state.statuses[component.name] ?? .operational,
                 updatedAt: state.statusSince[component.name] ?? state.createdAt)
            }
            let incidents = state.incidents.filter(\.published).sorted { $0.createdAt > $1.createdAt }
            let updated = ([state.createdAt] + components.map { $0.updatedAt } + incidents.map(\.updatedAt) + state.maintenances.map(\.updatedAt)).max()!
            return Snapshot(pageName: pageName, pageURL: pageURL, updatedAt: updated, components: components, incidents: incidents,
                            maintenances: state.maintenances.sorted { $0.scheduledFor > $1.scheduledFor }, uptime: state.uptime, now: now)
        }
    }
}

/// Holds back alert notifications while a deployment behind the alert's model is in planned maintenance.
struct MaintenanceSuppression: SuppressionPolicy {
    let center: StatusCenter
    func suppresses(_ alert: AlertRecord, deployments: [String], at now: Double) -> Bool {
        center.inMaintenance(deployments: deployments)
    }
}
