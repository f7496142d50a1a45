import LifelineCore
import Prometheus
import Synchronization

/// Every decision the gateway makes, as Prometheus metrics with bounded labels (model,
/// deployment, route, status class, phase; never request ids or keys).
public final class GatewayMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let observers = Mutex<[@Sendable (Decision) -> Void]>([])
    /// The label values outside input may choose between; nil until a configuration is known.
    private let allowedLabels = Mutex<MetricLabelPolicy?>(nil)

    /// Seconds buckets for LLM work: answers take from tens of milliseconds to minutes.
    /// 2 s is the default latency SLO threshold, so Prometheus can count requests under it exactly.
    static let latencyBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10, 30, 60, 120, 300]

    public init() {
        gauge("lifeline_build_info", [("version", LifelineVersion.current)], help: "Build information; always 1.").set(1.0)
        shedExported()
    }

    public func requestFinished(route: String, model: String, status: Int, seconds: Double) {
        counter("lifeline_requests_total", [("route", route), ("model", model), ("status", String(status))], help: "Client requests by route, public model and HTTP status.").increment()
        histogram("lifeline_request_duration_seconds", [("route", route), ("model", model)], help: "Time from request to the last byte of the answer.").record(seconds)
    }

    public func firstToken(model: String, seconds: Double) {
        histogram("lifeline_time_to_first_token_seconds", [("model", model)], help: "Time from request to the first token the client receives (for an answer not streamed, the whole answer).").record(seconds)
    }

    public func upstreamAttempt(deployment: String, model: String, outcome: String) {
        if outcome != "ok" { for observer in observers.withLock({ $0 }) { observer(.upstreamFailure(deployment: deployment, model: model, outcome: outcome)) } }
        counter("lifeline_upstream_requests_total", [("deployment", deployment), ("outcome", outcome)], help: "Attempts at upstream deployments by outcome (ok, error_5xx, rate_limited, auth_error, not_found, timeout, connect, disconnected, malformed, client_error).").increment()
    }

    static let failoverPhases = ["before_first_byte", "mid_stream"]
    static let failoverOutcomes = ["attempted", "refused"]

    /// `outcome`: `attempted` when the move was made, `refused` when a request that needed one
    /// was refused it (the retry budget was spent and no healthy deployment had room).
    public func failover(model: String, phase: String, outcome: String = "attempted") {
        counter("lifeline_failovers_total", [("model", model), ("phase", phase), ("outcome", outcome)],
                help: Self.failoverHelp).increment()
    }

    /// Exports a model's failover counters at 0, so rates and alert rules work from the first scrape.
    public func failoversExported(model: String) {
        for phase in Self.failoverPhases {
            for outcome in Self.failoverOutcomes {
                _ = counter("lifeline_failovers_total", [("model", model), ("phase", phase), ("outcome", outcome)], help: Self.failoverHelp)
            }
        }
        _ = counter("lifeline_retry_budget_exhausted_total", [("model", model)], help: Self.retryBudgetHelp)
        _ = counter("lifeline_hedges_total", [("model", model)], help: Self.hedgesHelp)
    }

    static let failoverHelp = "Moves to another deployment by phase (before_first_byte, mid_stream) and outcome (attempted, or refused by the retry budget)."
    static let retryBudgetHelp = "Retries refused because the model's retry budget was spent (free retries onto healthy deployments with room are never refused)."
    static let hedgesHelp = "Second attempts sent because the first was slow to answer."

    public func retryBudgetExhausted(model: String) {
        counter("lifeline_retry_budget_exhausted_total", [("model", model)], help: Self.retryBudgetHelp).increment()
    }

    public func ejection(deployment: String, model: String) {
        counter("lifeline_ejections_total", [("deployment", deployment)], help: "Times a deployment was ejected by outlier detection.").increment()
        for observer in observers.withLock({ $0 }) { observer(.ejection(deployment: deployment, model: model)) }
    }

    /// Routing decisions that incidents keep in their evidence.
    public enum Decision: Sendable {
        case ejection(deployment: String, model: String)
        /// An attempt that did not answer (an error, a timeout, a drill fault…).
        case upstreamFailure(deployment: String, model: String, outcome: String)
    }

    /// Hears of every decision above as it is counted.
    public func observe(_ observer: @escaping @Sendable (Decision) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// 0 closed, 1 open (ejected), 2 half-open.
    public func circuitState(deployment: String, state: CircuitBreaker.State) {
        let value: Double = switch state {
        case .closed: 0
        case .open: 1
        case .halfOpen: 2
        }
        gauge("lifeline_circuit_state", [("deployment", deployment)], help: "Breaker state per deployment: 0 closed, 1 open (ejected), 2 half-open.").set(value)
    }

    /// Which public model a deployment serves, for joins in alert rules (always 1).
    public func deploymentInfo(deployment: String, model: String, protocol wireProtocol: String) {
        gauge("lifeline_deployment_info", [("deployment", deployment), ("model", model), ("protocol", wireProtocol)],
              help: "Deployments with their public model and protocol; always 1.").set(1.0)
    }

    public func drained(deployment: String, _ drained: Bool) {
        gauge("lifeline_deployment_drained", [("deployment", deployment)], help: "1 while an operator has drained the deployment.").set(drained ? 1.0 : 0.0)
    }

    /// A deployment alert's state (burn-rate alerts are set with their SLO's status).
    public func alertFiring(alert: String, severity: String, _ firing: Bool) {
        gauge("lifeline_alerts_firing", [("alert", alert), ("severity", severity)], help: Self.firingHelp).set(firing ? 1.0 : 0.0)
    }

    public func deploymentProblem(deployment: String, kind: String, active: Bool) {
        gauge("lifeline_deployment_problem", [("deployment", deployment), ("kind", kind)],
              help: "1 while the deployment's latest attempts were refused in a way traffic will not fix (credentials_rejected, not_found).")
            .set(active ? 1.0 : 0.0)
    }

    static let cacheRequestsHelp = "Cacheable-model requests by cache result: hit, miss (asked upstream), stale (a miss answered by an expired entry because every deployment failed), bypass (not cacheable)."
    static let cacheEvictionsHelp = "Answer cache entries pushed out by max_entries or max_bytes."

    /// One request's cache result (`AnswerCacheResult`); models with a cache only.
    public func cacheRequest(model: String, result: AnswerCacheResult) {
        counter("lifeline_cache_requests_total", [("model", model), ("result", result.rawValue)], help: Self.cacheRequestsHelp).increment()
    }

    /// A cached model's counters at 0, so hit rates work from the first scrape.
    public func cacheExported(model: String) {
        for result in AnswerCacheResult.allCases {
            _ = counter("lifeline_cache_requests_total", [("model", model), ("result", result.rawValue)], help: Self.cacheRequestsHelp)
        }
        _ = counter("lifeline_cache_evictions_total", [("model", model)], help: Self.cacheEvictionsHelp)
    }

    public func cacheSize(model: String, entries: Int, bytes: Int, evicted: Int) {
        gauge("lifeline_cache_entries", [("model", model)], help: "Answers in the in-memory cache.").set(Double(entries))
        gauge("lifeline_cache_bytes", [("model", model)], help: "Bytes the in-memory cache's answers count against max_bytes.").set(Double(bytes))
        if evicted > 0 { counter("lifeline_cache_evictions_total", [("model", model)], help: Self.cacheEvictionsHelp).increment(by: Int64(evicted)) }
    }

    public func tokens(model: String, prompt: Int, completion: Int) {
        counter("lifeline_tokens_total", [("model", model), ("direction", "prompt")], help: "Tokens by public model and direction (prompt, completion).").increment(by: Int64(prompt))
        counter("lifeline_tokens_total", [("model", model), ("direction", "completion")], help: "Tokens by public model and direction (prompt, completion).").increment(by: Int64(completion))
    }

    /// A token count answered on `/v1/messages/count_tokens`, by where it came from.
    public func tokenCount(model: String, source: String) {
        counter("lifeline_token_counts_total", [("model", model), ("source", source)],
                help: "Token counts answered by public model and source (upstream: an upstream's own counter; estimate: Lifeline's).").increment()
    }

    public func hedge(model: String) {
        counter("lifeline_hedges_total", [("model", model)], help: Self.hedgesHelp).increment()
    }

    public func faultInjected(deployment: String, kind: String) {
        counter("lifeline_faults_injected_total", [("deployment", deployment), ("kind", kind)], help: "Drill faults applied to upstream attempts.").increment()
    }

    static let processStates = ["starting", "running", "restarting", "stopped"]

    /// One series per state, 1 for the state the managed process is in.
    public func processState(deployment: String, state: String) {
        for name in Self.processStates {
            gauge("lifeline_process_state", [("deployment", deployment), ("state", name)],
                  help: "Managed upstream processes: 1 for the state each is in (starting, running, restarting, stopped).")
                .set(name == state ? 1.0 : 0.0)
        }
    }

    public func processRestarted(deployment: String, count: Int64 = 1) {
        counter("lifeline_process_restarts_total", [("deployment", deployment)],
                help: "Times a managed upstream process was started again after it exited or failed to start.").increment(by: count)
    }

    public func healthProbe(deployment: String, healthy: Bool) {
        counter("lifeline_health_probes_total", [("deployment", deployment), ("outcome", healthy ? "ok" : "failed")], help: "Active health probes by outcome; not user traffic.").increment()
    }

    // MARK: SLOs and alerts

    public func sloStatus(_ status: SLOEvaluator.Status) {
        let slo = status.objective.name
        for (window, burn) in status.burnRates {
            gauge("lifeline_slo_burn_rate", [("slo", slo), ("window", window)], help: Self.burnRateHelp).set(burn)
        }
        gauge("lifeline_slo_error_budget_remaining", [("slo", slo)], help: Self.budgetHelp).set(status.budgetRemaining)
        gauge("lifeline_slo_objective", [("slo", slo), ("model", status.objective.model), ("sli", status.objective.kind.name)],
              help: Self.objectiveHelp).set(status.objective.target)
        for alert in status.alerts {
            gauge("lifeline_alerts_firing", [("alert", alert.id), ("severity", alert.rule.severity.rawValue)], help: Self.firingHelp)
                .set(alert.state.isFiring ? 1.0 : 0.0)
        }
    }

    /// Drops the series of an SLO that a reload removed, so no stale burn rate stays exported.
    public func sloRemoved(_ status: SLOEvaluator.Status) {
        let slo = status.objective.name
        for window in status.burnRates.keys {
            unregisterGauge("lifeline_slo_burn_rate", [("slo", slo), ("window", window)], help: Self.burnRateHelp)
        }
        unregisterGauge("lifeline_slo_error_budget_remaining", [("slo", slo)], help: Self.budgetHelp)
        unregisterGauge("lifeline_slo_objective", [("slo", slo), ("model", status.objective.model), ("sli", status.objective.kind.name)],
                        help: Self.objectiveHelp)
        for alert in status.alerts {
            unregisterGauge("lifeline_alerts_firing", [("alert", alert.id), ("severity", alert.rule.severity.rawValue)], help: Self.firingHelp)
        }
    }

    public func alertTransition(alert: String, severity: String, state: String) {
        counter("lifeline_alert_transitions_total", [("alert", alert), ("severity", severity), ("state", state)],
                help: "Alert state changes: firing or resolved.").increment()
    }

    public func statusIncidentChanged(status: String) {
        counter("lifeline_status_incident_changes_total", [("status", status)],
                help: "Automatic incident changes: opened or updated (investigating), monitoring, resolved.").increment()
    }

    public func notificationDelivery(target: String, outcome: String) {
        counter("lifeline_notifications_total", [("target", target), ("outcome", outcome)],
                help: "Webhook deliveries by target (a webhook's name, or subscribers) and outcome (delivered, failed, suppressed, refused).").increment()
    }

    static let burnRateHelp = "Error-budget burn rate per SLO and window (1 spends the budget exactly over the SLO period)."
    static let budgetHelp = "Share of the SLO period's error budget not yet spent (negative when overspent)."
    static let objectiveHelp = "The SLO's target share of good requests."
    static let firingHelp = "1 while the alert (burn-rate or deployment) fires."

    /// Takes in a configuration's public models and deployments as label values; names from
    /// earlier configurations stay allowed, so requests that began before a reload are still counted.
    public func allowLabels(from config: LifelineConfig) {
        allowedLabels.withLock { policy in
            var next = policy ?? MetricLabelPolicy()
            next.allow(config)
            policy = next
        }
    }

    /// Every series is made through here: a value a client could choose becomes `unknown`
    /// unless the configuration names it, so no request can add a series.
    private func bounded(_ labels: [(String, String)]) -> [(String, String)] {
        guard let policy = allowedLabels.withLock({ $0 }) else { return labels }
        return labels.map { ($0.0, policy.value(label: $0.0, $0.1)) }
    }

    /// A series: its name and its (bounded) label names and values in order.
    private struct SeriesKey: Hashable {
        let name: String
        let labels: [String]

        init(_ name: String, _ labels: [(String, String)]) {
            self.name = name
            self.labels = labels.flatMap { [$0.0, $0.1] }
        }
    }

    private enum SeriesHandle {
        case counter(Counter)
        case gauge(Gauge)
        case histogram(ValueHistogram)
    }

    /// Handles already made, so a request's metrics cost one lookup each: the registry checks the
    /// name and every label again, under its lock, each time a handle is asked for.
    private let handles = Mutex<[SeriesKey: SeriesHandle]>([:])

    private func counter(_ name: String, _ labels: [(String, String)], help: String) -> Counter {
        let labels = bounded(labels)
        let key = SeriesKey(name, labels)
        if case .counter(let counter)? = handles.withLock({ $0[key] }) { return counter }
        let counter = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
        handles.withLock { $0[key] = .counter(counter) }
        return counter
    }

    private func gauge(_ name: String, _ labels: [(String, String)], help: String) -> Gauge {
        let labels = bounded(labels)
        let key = SeriesKey(name, labels)
        if case .gauge(let gauge)? = handles.withLock({ $0[key] }) { return gauge }
        let gauge = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
        handles.withLock { $0[key] = .gauge(gauge) }
        return gauge
    }

    private func histogram(_ name: String, _ labels: [(String, String)], help: String) -> ValueHistogram {
        let labels = bounded(labels)
        let key = SeriesKey(name, labels)
        if case .histogram(let histogram)? = handles.withLock({ $0[key] }) { return histogram }
        let histogram = registry.makeValueHistogram(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help),
                                                    labels: labels, buckets: Self.latencyBuckets)
        handles.withLock { $0[key] = .histogram(histogram) }
        return histogram
    }

    /// Drops a gauge's series from the exposition and from the handles, so a later `gauge` call
    /// registers it again rather than setting the dropped one.
    private func unregisterGauge(_ name: String, _ labels: [(String, String)], help: String) {
        let gauge = gauge(name, labels, help: help)
        handles.withLock { _ = $0.removeValue(forKey: SeriesKey(name, bounded(labels))) }
        registry.unregisterGauge(gauge)
    }

    public func requestRefused(reason: RefusalReason) {
        counter("lifeline_request_refusals_total", [("reason", reason.rawValue)],
                help: "Requests refused before any work: host_not_allowed, unsupported_content_type, conflicting_credentials, subscriber_pending_limit.").increment()
    }

    /// Why a request was refused at the door (bounded: these and nothing else become label values).
    public enum RefusalReason: String, Sendable {
        case hostNotAllowed = "host_not_allowed"
        case unsupportedContentType = "unsupported_content_type"
        case conflictingCredentials = "conflicting_credentials"
        case subscriberPendingLimit = "subscriber_pending_limit"
    }

    static let shedReasons = ["queue_full", "queue_timeout", "deployment_busy"]

    public func shed(reason: String, priority: String) {
        counter("lifeline_shed_total", [("reason", reason), ("priority", priority)], help: Self.shedHelp).increment()
    }

    /// Exports every shedding counter at 0, so rates and alert rules work from the first scrape.
    func shedExported() {
        for reason in Self.shedReasons {
            for priority in Priority.allCases { _ = counter("lifeline_shed_total", [("reason", reason), ("priority", priority.description)], help: Self.shedHelp) }
        }
    }

    static let shedHelp = "Requests refused to protect the service (503), by reason (queue_full, queue_timeout, deployment_busy) and priority."

    public func rateLimited(reason: String, tier: String) {
        counter("lifeline_rate_limited_total", [("reason", reason), ("tier", tier)],
                help: "Requests refused because their caller was over a limit (429), by limit and key tier.").increment()
    }

    /// How late the gateway's own event loops run (the largest of the last half second's probes).
    func schedulingLag(_ seconds: Double) {
        gauge("lifeline_scheduling_lag_seconds", [], help: "How late the gateway's own event loops run: the largest delay of the last half second's probes.")
            .set(seconds)
    }

    func hostCPUBusy(_ share: Double) {
        gauge("lifeline_host_cpu_busy_ratio", [], help: "How busy the host's CPUs were over the last half second, from 0 to 1 (Linux's /proc/stat).")
            .set(share)
    }

    func cpuThrottled(_ share: Double) {
        gauge("lifeline_cpu_throttled_ratio", [], help: "Of the last half second's CPU-quota periods, the share that throttled this process's cgroup, from 0 to 1.")
            .set(share)
    }

    /// An adaptive limit's gauges (`scope` is `gateway` for the whole gateway, else a deployment's
    /// name): the limit, and what it compares, set when it has learnt from a sample (0 before the
    /// first). Looked up once by the limit that sets them on every change (a lookup hashes the
    /// series' name and labels; setting a gauge is one atomic store).
    struct LimitGauges: Sendable {
        fileprivate let slots: Gauge
        fileprivate let recent: Gauge
        fileprivate let baseline: Gauge

        func limit(_ slots: Int) { self.slots.set(Double(slots)) }

        func latency(recent: Double?, baseline: Double?) {
            self.recent.set(recent ?? 0)
            self.baseline.set(baseline ?? 0)
        }
    }

    func limitGauges(scope: String) -> LimitGauges {
        let help = "What the adaptive limit compares: the recent first-token latency (upper quartile while the limit is in use, median otherwise) and its slow baseline."
        return LimitGauges(slots: gauge("lifeline_concurrency_limit", [("scope", scope)], help: "The adaptive concurrency limit, for the gateway and per deployment."),
                           recent: gauge("lifeline_concurrency_latency_seconds", [("scope", scope), ("window", "recent")], help: help),
                           baseline: gauge("lifeline_concurrency_latency_seconds", [("scope", scope), ("window", "baseline")], help: help))
    }

    /// Attempts a deployment has in progress, against its `lifeline_concurrency_limit{scope=NAME}`.
    func deploymentInFlightGauge(_ deployment: String) -> Gauge {
        gauge("lifeline_deployment_in_flight_requests", [("deployment", deployment)],
              help: "Attempts in progress at each deployment (routing skips one at its concurrency limit).")
    }

    /// Admitted requests in progress, and requests waiting for a slot.
    func admissionGauges() -> (inFlight: Gauge, queued: Gauge) {
        (gauge("lifeline_in_flight_requests", [], help: "Admitted requests in progress."),
         gauge("lifeline_admission_queue_length", [], help: "Requests waiting for a slot."))
    }

    public func storeReachable(_ reachable: Bool) {
        gauge("lifeline_store_reachable", [], help: "1 while the store (SQLite or PostgreSQL) answers; 0 while it does not and the gateway serves from memory.")
            .set(reachable ? 1.0 : 0.0)
    }

    public func leader(_ leading: Bool) {
        gauge("lifeline_leader", [], help: "1 while this instance runs the singleton duties (incidents, alerts, notifications, maintenance).")
            .set(leading ? 1.0 : 0.0)
    }

    /// Client connections open now (`server.max_connections` caps them).
    public func openConnections(_ count: Int) {
        gauge("lifeline_open_connections", [], help: "Client connections open now.").set(Double(count))
    }

    public func connectionRefused(reason: String) {
        counter("lifeline_connections_refused_total", [("reason", reason)],
                help: "Connections answered 503 and closed, by cap (max_connections, max_connections_per_client).").increment()
    }

    public func slowRequest(reason: String) {
        counter("lifeline_slow_requests_total", [("reason", reason)],
                help: "Requests cut off while arriving, by reason (header_deadline, body_deadline, body_rate).").increment()
    }

    public func exposition() -> [UInt8] { registry.emitToBuffer() }
}
