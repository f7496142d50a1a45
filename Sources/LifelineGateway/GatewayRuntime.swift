import Foundation
import LifelineCore
import LifelineStore
import LifelineWire
import Logging
import Synchronization

/// The gateway's live state: current deployments (swapped whole on reload), drill faults,
/// metrics, readiness and the monotonic clock every policy reads.
public final class GatewayRuntime: Sendable {
    public let metrics: GatewayMetrics
    public let faults: FaultInjector
    public let readiness = Readiness()
    public let logger: Logger
    let clock: @Sendable () -> Double
    let store: any LifelineStore
    let keys: KeyRegistry
    let usage: UsageRecorder
    let admission: AdmissionController
    private let state: Mutex<(config: LifelineConfig, pool: DeploymentPool)>

    /// The monotonic clock every policy reads, in seconds.
    static func monotonicClock() -> @Sendable () -> Double {
        let origin = DispatchTime.now().uptimeNanoseconds
        return { Double(DispatchTime.now().uptimeNanoseconds &- origin) / 1e9 }
    }

    init(config: LifelineConfig, logger: Logger, store: any LifelineStore, keys: KeyRegistry, clock: @escaping @Sendable () -> Double) {
        let metrics = GatewayMetrics()
        self.metrics = metrics
        self.clock = clock
        self.logger = logger
        self.store = store
        self.keys = keys
        self.usage = UsageRecorder(store: store, logger: logger)
        self.admission = AdmissionController(config: config.admission, clock: clock, metrics: metrics)
        let faults = FaultInjector(clock: clock)
        self.faults = faults
        state = Mutex((config, DeploymentPool(config: config, faults: faults, metrics: metrics, clock: clock)))
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
        }
        if next.server != current.server {
            issues.append(ConfigIssue(path: "server", message: "server settings change only on restart"))
        }
        guard issues.isEmpty else { throw ConfigError(issues: issues) }
        let nextPool = DeploymentPool(config: next, faults: faults, metrics: metrics, clock: clock, reusing: currentPool)
        state.withLock { $0 = (next, nextPool) }
        logger.notice("configuration reloaded", metadata: ["models": .stringConvertible(next.models.count)])
        let drain = next.server.drainTimeoutSeconds
        Task {
            try? await Task.sleep(for: .seconds(drain))
            await currentPool.shutdownClients(notIn: self.pool)
        }
    }

    func shutdown() async {
        await usage.flush()
        await pool.shutdownClients(notIn: nil)
        try? await store.close()
    }
}

/// What happened to one client request; logged as one line and counted in the metrics.
struct RequestRecord {
    var route: String
    var model = ""
    var deployment: String?
    var attempts = 0
    var status = 200
    var started: Double
    var firstTokenAt: Double?
    var usage: Usage?
    var failoverPhase: String?
    var resumptions = 0
    var stream = false
    var caller: Caller?
    var priority: Priority?
    /// Tokens reserved at admission, reconciled at the end.
    var estimatedTokens: Int?
    var ticket: AdmissionController.Ticket?

    func log(to logger: Logger, now: Double) {
        // Building the line costs more than the check: skip it when info is filtered out.
        guard logger.logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "route": .string(route), "model": .string(model), "status": .stringConvertible(status),
            "attempts": .stringConvertible(attempts), "latency_ms": .string(String(format: "%.1f", (now - started) * 1000)),
            "stream": .stringConvertible(stream),
        ]
        if let deployment { metadata["deployment"] = .string(deployment) }
        if let firstTokenAt { metadata["ttft_ms"] = .string(String(format: "%.1f", (firstTokenAt - started) * 1000)) }
        if let usage {
            metadata["prompt_tokens"] = .stringConvertible(usage.promptTokens)
            metadata["completion_tokens"] = .stringConvertible(usage.completionTokens)
        }
        if let failoverPhase { metadata["failover"] = .string(failoverPhase) }
        if let caller { metadata["caller"] = .string(caller.isAnonymous ? caller.id : "\(caller.id) (\(caller.name))") }
        if let priority { metadata["priority"] = .string(priority.description) }
        if resumptions > 0 { metadata["resumptions"] = .stringConvertible(resumptions) }
        logger.info("request", metadata: metadata)
    }
}

extension GatewayRuntime {
    /// Closes a request: releases its slot and reservation, records usage, writes one log line and its metrics.
    func finish(_ record: RequestRecord) {
        let now = clock()
        let tokens = record.usage?.totalTokens ?? 0
        if let caller = record.caller, let estimate = record.estimatedTokens {
            keys.complete(caller, estimatedTokens: estimate, actualTokens: tokens)
            if let usage = record.usage { self.usage.record(callerID: caller.id, promptTokens: usage.promptTokens, completionTokens: usage.completionTokens) }
        }
        if let ticket = record.ticket {
            // Only answers train the limit: a failed request says nothing about healthy latency.
            let latency = record.status < 400 ? (record.firstTokenAt ?? now) - record.started : nil
            admission.release(ticket, latency: latency)
        }
        record.log(to: logger, now: now)
        metrics.requestFinished(route: record.route, model: record.model.isEmpty ? "unknown" : record.model, status: record.status,
                                seconds: now - record.started)
        if let firstTokenAt = record.firstTokenAt { metrics.firstToken(model: record.model, seconds: firstTokenAt - record.started) }
        if let usage = record.usage { metrics.tokens(model: record.model, prompt: usage.promptTokens, completion: usage.completionTokens) }
    }
}
