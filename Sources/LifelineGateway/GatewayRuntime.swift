import Foundation
import LifelineCore
import LifelineStore
import LifelineWire
import Logging
import Synchronization
import Tracing

/// The gateway's live state: current deployments (swapped whole on reload), drill faults,
/// metrics, readiness and the monotonic clock every policy reads.
public final class GatewayRuntime: Sendable {
    public let metrics: GatewayMetrics
    public let faults: FaultInjector
    public let readiness = Readiness()
    public let logger: Logger
    /// SLI buckets, burn rates and alerts.
    public let slo: SLOMonitor
    /// Alert notifications to webhooks.
    public let notifier: Notifier
    /// Component statuses, incidents, maintenances and uptime for the status page.
    public let status: StatusCenter
    /// Webhooks that hear about incidents and maintenance.
    let subscribers: SubscriberRegistry
    /// Per-minute traffic history for capacity planning.
    let traffic: TrafficRecorder
    /// Exact-match answer caches of the models that configure one, in this process's memory.
    let answerCaches: AnswerCaches
    /// Whether the store answers (shown in `/readyz`).
    public let storeHealth: StoreHealth
    /// This instance's SLI counts shared with the others, and theirs.
    let counters: SharedCounters
    /// Whether this instance runs the singleton duties.
    let role: InstanceRole
    let clock: @Sendable () -> Double
    /// Upstream servers Lifeline runs itself, by deployment name; fixed for the life of the process.
    let processes: [String: ManagedProcess]
    let store: any LifelineStore
    let keys: KeyRegistry
    let usage: UsageRecorder
    let admission: AdmissionController
    /// Whether requests get spans: `tracing.otlp_endpoint` was set at start (a reload cannot change it).
    let tracing: Bool
    /// Pages for deployments that refuse Lifeline's credentials or do not know its URL or model.
    let deploymentAlerts: DeploymentAlerts
    /// Seconds since 1970, for what must outlive the process (SLI buckets) or be read by people.
    let wallClock: @Sendable () -> Double = { Date().timeIntervalSince1970 }
    private let state: Mutex<(config: LifelineConfig, pool: DeploymentPool)>
    private let listeningURL = Mutex<String?>(nil)

    /// The monotonic clock every policy reads, in seconds.
    static func monotonicClock() -> @Sendable () -> Double {
        let origin = DispatchTime.now().uptimeNanoseconds
        return { Double(DispatchTime.now().uptimeNanoseconds &- origin) / 1e9 }
    }

    init(config: LifelineConfig, logger: Logger, store: any LifelineStore, keys: KeyRegistry, clock: @escaping @Sendable () -> Double,
         sliStore: any SLIBucketStore = InMemorySLIBucketStore(), suppression: (any SuppressionPolicy)? = nil,
         metrics: GatewayMetrics = GatewayMetrics(), processes: [ManagedProcess] = [])
    {
        self.metrics = metrics
        metrics.allowLabels(from: config)
        self.processes = Dictionary(uniqueKeysWithValues: processes.map { ($0.deployment, $0) })
        self.clock = clock
        self.logger = logger
        self.store = store
        self.keys = keys
        self.usage = UsageRecorder(store: store, logger: logger)
        self.admission = AdmissionController(config: config.admission, clock: clock, metrics: metrics)
        tracing = config.tracing.enabled
        let faults = FaultInjector(clock: clock)
        self.faults = faults
        slo = SLOMonitor(config: config, store: sliStore, metrics: metrics, now: Date().timeIntervalSince1970)
        deploymentAlerts = DeploymentAlerts(metrics: metrics)
        let status = StatusCenter(config: config, store: store, metrics: metrics, logger: logger, now: Date().timeIntervalSince1970)
        self.status = status
        // Planned maintenance holds back alerts about the deployments it covers.
        notifier = Notifier(metrics: metrics, logger: logger, suppression: suppression ?? (MaintenanceSuppression(center: status) as any SuppressionPolicy),
                            store: store, clock: wallClock)
        subscribers = SubscriberRegistry(store: store)
        answerCaches = AnswerCaches(config: config, metrics: metrics, clock: clock, store: store, logger: logger,
                                    wallClock: { Date().timeIntervalSince1970 })
        storeHealth = StoreHealth(metrics: metrics, wallClock: { Date().timeIntervalSince1970 })
        counters = SharedCounters()
        // A shared store's lock decides who leads; until it has, nobody here does.
        role = InstanceRole(leading: !store.isShared, metrics: metrics)
        let traffic = TrafficRecorder(store: store, logger: logger, wallClock: { Date().timeIntervalSince1970 })
        self.traffic = traffic
        metrics.observe { decision in
            status.record(decision, at: Date().timeIntervalSince1970)
            if case .upstreamFailure(let deployment, _, "rate_limited") = decision { traffic.rateLimited(deployment: deployment) }
        }
        state = Mutex((config, DeploymentPool(config: config, faults: faults, metrics: metrics, clock: clock, processes: self.processes)))
    }

    /// Where links in notifications point: `alerting.external_url`, else this server's address.
    var alertsURL: String {
        let base = config.alerting.externalURL ?? listeningURL.withLock { $0 } ?? "http://\(config.server.host):\(config.server.port)"
        return base + "/admin/v1/alerts"
    }

    func serverStarted(url: String) { listeningURL.withLock { $0 = url } }

    /// The status page's public address: `status.page_url`, else this server's.
    var statusPageURL: String {
        config.status.pageURL ?? listeningURL.withLock { $0 } ?? "http://\(config.server.host):\(config.server.port)"
    }

    /// Everything the public status routes show, now.
    func statusSnapshot() -> StatusCenter.Snapshot {
        status.snapshot(pageName: config.status.pageName, pageURL: statusPageURL, now: wallClock())
    }

    /// Advances component statuses, the automatic incident and maintenances now, and sends
    /// subscribers what changed.
    public func evaluateStatus() {
        let now = wallClock()
        sampleConcurrency()
        let leading = role.isLeader
        status.evaluate(pool: pool, at: now, peers: counters.peers, leading: leading)
        guard leading else { return }
        SubscriberNotifications.dispatch(subscribers: subscribers, notifier: notifier, documents: StatuspageDocuments(snapshot: statusSnapshot()),
                                         notifications: config.notifications, now: now)
    }

    /// Requests in flight per model and deployment, for the traffic history's peaks.
    private func sampleConcurrency() {
        let pool = pool
        var samples: [String: Int] = [:]
        for name in pool.modelNames {
            guard let group = pool.models[name] else { continue }
            let load = group.concurrency
            samples["model:\(name)"] = load.map(\.inFlight).reduce(0, +)
            for (deployment, entry) in zip(group.deployments, load) { samples["deployment:\(deployment.name)"] = entry.inFlight }
        }
        traffic.concurrency(samples)
    }

    /// Loads subscribers and the delivery log; deliveries queued before a restart go out now.
    func restoreDeliveries() async {
        do {
            try await subscribers.load()
        } catch {
            logger.error("subscribers could not be loaded", metadata: ["error": .string("\(error)")])
        }
        let config = config
        await notifier.restore { [subscribers] delivery in
            switch delivery.kind {
            case .alert:
                return config.notifications.webhooks.first { $0.name == delivery.target }.map { WebhookTarget($0, notifications: config.notifications) }
            case .subscriber:
                return subscribers.subscriber(id: delivery.target).map { SubscriberNotifications.target($0, config.notifications) }
            }
        }
    }

    /// Evaluates SLOs now and hands what fired or resolved to the notifier.
    public func evaluateAlerts() {
        let leading = role.isLeader
        let changes = slo.evaluate(at: wallClock(), peers: counters.peers, leading: leading)
            + deploymentAlerts.evaluate(pool: pool, clock: clock(), wallNow: wallClock())
        if leading { deliver(changes) }
    }

    /// Publishes this instance's SLI buckets and reads the other instances'.
    func shareCounters() async throws {
        try await counters.sync(store: store, changed: { [slo, status] since in slo.changedBuckets(since: since) + status.changedBuckets(since: since) },
                                now: wallClock())
    }

    /// Becoming the leader: the previous leader's incidents, alert states, subscribers and
    /// delivery log are read before this instance acts on them, so nothing it announced is
    /// announced again and nothing it left queued is lost.
    func takeOver() async throws {
        let now = wallClock()
        try await status.takeOver(pool: pool, at: now)
        slo.takeOver(try await store.loadAlerts())
        await restoreDeliveries()
    }

    /// A follower's view of what the leader and operators saved; the leader takes in operators'
    /// changes made on other instances and subscribers registered there.
    func readSharedState(leading: Bool) async throws {
        try await status.sync(pool: pool, leading: leading, at: wallClock())
        if leading { try await subscribers.load() }
    }

    private func deliver(_ changes: [AlertChange]) {
        guard !changes.isEmpty else { return }
        let config = config
        let pool = pool
        for change in changes {
            let alert = change.alert
            let metadata: Logger.Metadata = alert.deployment.map { deployment in
                ["alert": .string(alert.alert), "severity": .string(alert.severity.rawValue), "deployment": .string(deployment),
                 "upstream_status": .stringConvertible(alert.problemStatus ?? 0)]
            } ?? [
                "alert": .string(alert.alert), "severity": .string(alert.severity.rawValue), "slo": .string(alert.slo),
                "burn_rate": .stringConvertible(AlertRecord.rounded(alert.longBurn)),
            ]
            if change.transition == .firing { logger.warning("alert firing", metadata: metadata) } else { logger.notice("alert resolved", metadata: metadata) }
            let deployments = alert.deployment.map { [$0] } ?? pool.models[alert.model]?.deployments.map(\.name) ?? []
            notifier.notify(change, config: config.notifications, deployments: deployments, alertsURL: alertsURL)
        }
    }

    public var pool: DeploymentPool { state.withLock { $0.pool } }
    public var config: LifelineConfig { state.withLock { $0.config } }

    /// Replaces models and deployments without dropping in-flight requests: they keep the pool
    /// they started with, and clients of removed deployments close after the drain timeout.
    /// Simulated deployments keep the simulator they already have; a new one cannot be added here.
    public func reload(_ proposed: LifelineConfig) throws(ConfigError) {
        var next = proposed
        let (current, currentPool) = state.withLock { ($0.config, $0.pool) }
        var issues: [ConfigIssue] = []
        for (modelIndex, model) in next.models.enumerated() {
            for (index, deployment) in model.deployments.enumerated() where deployment.simulator != nil {
                if let running = currentPool.deployment(named: deployment.name), running.config.simulator != nil {
                    next.models[modelIndex].deployments[index].baseURL = running.config.baseURL
                    next.models[modelIndex].deployments[index].simulator = running.config.simulator
                } else {
                    issues.append(ConfigIssue(path: "models[\(modelIndex)].deployments[\(index)].simulator",
                                              message: "a simulated deployment can only be added by a restart"))
                }
            }
            for (index, deployment) in model.deployments.enumerated() where deployment.process != nil {
                if let running = processes[deployment.name], running.config == deployment.process {
                    next.models[modelIndex].deployments[index].baseURL = running.baseURL
                } else {
                    issues.append(ConfigIssue(path: "models[\(modelIndex)].deployments[\(index)].process",
                                              message: "a managed process can only be added or changed by a restart"))
                }
            }
        }
        let kept = Set(next.models.flatMap { $0.deployments.filter { $0.process != nil }.map(\.name) })
        for name in processes.keys.sorted() where !kept.contains(name) {
            issues.append(ConfigIssue(path: "models", message: "deployment '\(name)' runs a managed process; removing it (or its process block) needs a restart"))
        }
        if next.server != current.server {
            issues.append(ConfigIssue(path: "server", message: "server settings change only on restart"))
        }
        if next.tracing != current.tracing {
            issues.append(ConfigIssue(path: "tracing", message: "tracing settings change only on restart"))
        }
        guard issues.isEmpty else { throw ConfigError(issues: issues) }
        metrics.allowLabels(from: next)
        let nextPool = DeploymentPool(config: next, faults: faults, metrics: metrics, clock: clock, processes: processes, reusing: currentPool)
        state.withLock { $0 = (next, nextPool) }
        logger.notice("configuration reloaded", metadata: ["models": .stringConvertible(next.models.count)])
        deliver(slo.reload(next, at: wallClock()))
        status.reload(next)
        answerCaches.reload(next)
        let drain = next.server.drainTimeoutSeconds
        Task {
            try? await Task.sleep(for: .seconds(drain))
            await currentPool.shutdownClients(notIn: self.pool)
        }
    }

    func shutdown() async {
        await usage.flush()
        await traffic.flush()
        await status.flush()
        // One last evaluation saves the alert states, and the newest buckets go to the store.
        evaluateAlerts()
        await (slo.bucketStore as? StoredSLIBucketStore)?.finish()
        try? await shareCounters()
        await pool.shutdownClients(notIn: nil)
        try? await store.close()
    }
}

/// What happened to one client request; logged as one line and counted in the metrics.
struct RequestRecord {
    var route: String
    var requestID = ""
    var model = ""
    var deployment: String?
    var attempts = 0
    var status = 200
    var started: Double
    var firstTokenAt: Double?
    /// The gateway's scheduling and the host's CPUs when the first token was read: the gateway's
    /// limit learns from it only when the answer ends, and only if neither was short then.
    var hostAtFirstToken: SchedulingLag.Reading?
    var usage: Usage?
    var failoverPhase: String?
    var resumptions = 0
    var stream = false
    var caller: Caller?
    /// The request's priority, once admission has decided it.
    var priority: Priority?
    /// Tokens reserved at admission, reconciled at the end.
    var estimatedTokens: Int?
    var ticket: AdmissionController.Ticket?
    /// When admission granted a slot: the limit learns from latency after it, not from queueing before it.
    var admittedAt: Double?
    /// Time spent waiting for a slot at busy deployments: Lifeline's own queueing, which the
    /// gateway's limit must not read as the upstream answering slowly.
    var slotWaitSeconds = 0.0
    /// Set when the service refused the request to protect itself (load shedding): it counts
    /// against availability whatever its status, unlike a caller over its own limit.
    var shedByService = false
    /// A failover or resumption this request needed was refused by the retry budget.
    var failoverRefused = false
    /// Set when a cache entry answered (hit or stale): no upstream was used.
    var cacheResult: AnswerCacheResult?
    /// The request's span, when tracing is on (`RequestSpans.swift`); nil otherwise.
    var span: (any Span)?
    /// An attempt whose outcome is known only later (a stream, an answer not yet sent).
    var attemptSpan: (any Span)?
    /// The request's trace id for its log line, when tracing is on.
    var traceID: String?
    /// `gen_ai.system` and `gen_ai.response.model` of the deployment that answered, for the request's span.
    var answeredSystem: String?
    var responseModel: String?
    /// Why the last failed attempt failed, in Lifeline's own words (`UpstreamFailure.cause`).
    var lastFailure: String?

    /// The request's fields as log metadata; numbers stay numbers so the JSON log keeps their type.
    func metadata(now: Double) -> Logger.Metadata {
        func milliseconds(_ seconds: Double) -> Double { (seconds * 10_000).rounded() / 10 }
        var metadata: Logger.Metadata = [
            "route": .string(route), "model": .string(model), "status": .stringConvertible(status),
            "attempts": .stringConvertible(attempts), "latency_ms": .stringConvertible(milliseconds(now - started)),
            "stream": .stringConvertible(stream), "resumptions": .stringConvertible(resumptions),
        ]
        if !requestID.isEmpty { metadata["request_id"] = .string(requestID) }
        if let deployment { metadata["deployment"] = .string(deployment) }
        if let firstTokenAt { metadata["ttft_ms"] = .stringConvertible(milliseconds(firstTokenAt - started)) }
        if let usage {
            metadata["prompt_tokens"] = .stringConvertible(usage.promptTokens)
            metadata["completion_tokens"] = .stringConvertible(usage.completionTokens)
        }
        if let failoverPhase { metadata["failover_phase"] = .string(failoverPhase) }
        if let priority { metadata["priority"] = .string(priority.description) }
        if let caller { metadata["caller"] = .string(caller.id) }
        if shedByService { metadata["shed"] = .stringConvertible(true) }
        if let cacheResult { metadata["cache"] = .string(cacheResult.rawValue) }
        if let traceID { metadata["trace_id"] = .string(traceID) }
        if let lastFailure { metadata["upstream_error"] = .string(lastFailure) }
        return metadata
    }
}

extension GatewayRuntime {
    /// Closes a request: one log line, and its metrics.
    func finish(_ record: RequestRecord) {
        let now = clock()
        let tokens = record.usage?.totalTokens ?? 0
        if let caller = record.caller, let estimate = record.estimatedTokens {
            keys.complete(caller, estimatedTokens: estimate, actualTokens: tokens)
            if let usage = record.usage { self.usage.record(callerID: caller.id, promptTokens: usage.promptTokens, completionTokens: usage.completionTokens) }
        }
        if let ticket = record.ticket {
            // Only answers train the limit: a failed request says nothing about healthy latency,
            // nor does a stale cached answer given after every deployment failed.
            let latency = record.status < 400 && record.cacheResult == nil
                ? (record.firstTokenAt ?? now) - (record.admittedAt ?? record.started) - record.slotWaitSeconds : nil
            admission.release(ticket, latency: latency, host: record.hostAtFirstToken)
        }
        // Building the line costs more than the check: skip it when info is filtered out.
        if logger.logLevel <= .info { logger.info("request", metadata: record.metadata(now: now)) }
        metrics.requestFinished(route: record.route, model: record.model.isEmpty ? "unknown" : record.model, status: record.status,
                                seconds: now - record.started)
        // For an answer not streamed, the first token reaches the client with the whole answer.
        let firstToken = record.firstTokenAt ?? (record.status < 400 && !record.stream ? now : nil)
        if let firstToken { metrics.firstToken(model: record.model, seconds: firstToken - record.started) }
        // One outcome, as the client saw it (failover already hidden), feeds the SLOs and the status page.
        let outcome = RequestOutcome(status: record.status, shedByService: record.shedByService, latencySeconds: (firstToken ?? now) - record.started)
        let wallNow = wallClock()
        slo.record(model: record.model, outcome: outcome, at: wallNow)
        let observed = ObservedRequest(at: wallNow, available: nil, caller: record.caller?.id ?? Caller.anonymousID, deployment: record.deployment,
                                       failoverPhase: record.failoverPhase, completionTokens: record.usage?.completionTokens ?? 0)
        status.record(route: record.route, model: record.model, outcome: outcome, observed: observed, at: wallNow)
        if let usage = record.usage { metrics.tokens(model: record.model, prompt: usage.promptTokens, completion: usage.completionTokens) }
        // A cached answer is no upstream traffic: capacity planning never sees it.
        if !record.model.isEmpty, pool.models[record.model] != nil, record.cacheResult == nil {
            traffic.request(model: record.model, deployment: record.deployment, tokens: record.usage?.totalTokens ?? 0, seconds: now - record.started)
        }
        record.endSpans()
    }
}
