import Foundation
import NIOCore
import LifelineCore
import LifelineWire
import Synchronization

/// One upstream deployment at run time: its client, operator state, and drill faults applied.
public final class Deployment: Sendable {
    public let config: DeploymentConfig
    public let model: String
    let client: UpstreamClient
    /// The server Lifeline runs for this deployment, if it runs one.
    let process: ManagedProcess?
    /// The latest refusal that traffic will not fix (credentials, not found), until it answers again.
    let problems: DeploymentProblemLog
    private let drained = Atomic<Bool>(false)
    private let faults: FaultInjector
    private let metrics: GatewayMetrics
    private let clock: @Sendable () -> Double
    /// The upstream's own per-minute allowances, when configured.
    private let allowance: Mutex<(requests: TokenBucket?, tokens: TokenBucket?)>

    init(config: DeploymentConfig, model: String, faults: FaultInjector, metrics: GatewayMetrics, clock: @escaping @Sendable () -> Double,
         process: ManagedProcess? = nil)
    {
        self.config = config
        self.model = model
        self.process = process
        self.problems = DeploymentProblemLog(deployment: config.name, metrics: metrics)
        self.client = UpstreamClient(deployment: config)
        self.faults = faults
        self.metrics = metrics
        self.clock = clock
        let now = clock()
        allowance = Mutex((config.requestsPerMinute.map { TokenBucket(capacity: Double($0), now: now) },
                           config.tokensPerMinute.map { TokenBucket(capacity: Double($0), now: now) }))
        metrics.drained(deployment: config.name, false)
        metrics.deploymentInfo(deployment: config.name, model: model, protocol: config.protocol.rawValue)
    }

    /// Whether the upstream's configured allowance has room for a request of this size now.
    func hasAllowance(estimatedTokens: Int) -> Bool {
        let now = clock()
        return allowance.withLock { allowance in
            let requestsOK = allowance.requests.map { $0.available(at: now) >= 1 } ?? true
            let tokensOK = allowance.tokens.map { $0.available(at: now) >= min(Double(estimatedTokens), $0.capacity) } ?? true
            return requestsOK && tokensOK
        }
    }

    /// Spends allowance for an attempt about to be sent.
    func spendAllowance(estimatedTokens: Int) {
        let now = clock()
        allowance.withLock { allowance in
            if allowance.requests != nil { _ = allowance.requests!.take(1, at: now) }
            if allowance.tokens != nil { allowance.tokens!.adjust(by: -min(Double(estimatedTokens), allowance.tokens!.capacity), at: now) }
        }
    }

    public var name: String { config.name }
    public var isDrained: Bool { drained.load(ordering: .relaxed) }

    /// False while its managed process is starting, restarting or stopped.
    public var processAcceptsTraffic: Bool { process?.acceptsTraffic ?? true }

    public func setDrained(_ value: Bool) {
        drained.store(value, ordering: .relaxed)
        metrics.drained(deployment: name, value)
    }

    /// Applies drill faults that hit before the upstream is called.
    private func applyFaults() async throws(UpstreamFailure) -> FaultEffect {
        let effect = faults.effect(for: name)
        guard !effect.isNone else { return effect }
        for kind in effect.kinds { metrics.faultInjected(deployment: name, kind: kind.rawValue) }
        do {
            if effect.blackhole {
                // Nothing comes back: the caller's first-token timeout ends the attempt.
                try await Task.sleep(for: .milliseconds(config.timeouts.firstTokenMilliseconds))
                throw UpstreamFailure(.timeout, "drill: blackhole (no answer within \(config.timeouts.firstTokenMilliseconds) ms)")
            }
            if effect.delayMilliseconds > 0 { try await Task.sleep(for: .milliseconds(effect.delayMilliseconds)) }
        } catch let failure as UpstreamFailure {
            throw failure
        } catch {
            throw UpstreamFailure(.disconnected, "cancelled")
        }
        if let status = effect.errorStatus {
            throw UpstreamFailure(.status(status), "drill: injected error \(status)", retryAfterSeconds: status == 429 ? 1 : nil)
        }
        return effect
    }

    func complete(_ request: ChatRequest) async throws(UpstreamFailure) -> ChatResponse {
        let effect = try await applyFaults()
        if effect.disconnectAfterTokens != nil { throw UpstreamFailure(.disconnected, "drill: connection cut") }
        return try await client.complete(request)
    }

    func stream(_ request: ChatRequest) async throws(UpstreamFailure) -> UpstreamEventStream {
        let effect = try await applyFaults()
        var stream = try await client.stream(request)
        stream.cutAfterTextEvents = effect.disconnectAfterTokens
        return stream
    }

    func embeddings(_ body: JSONValue) async throws(UpstreamFailure) -> ByteBuffer {
        _ = try await applyFaults()
        return try await client.embeddings(body)
    }
}

/// A public model name, the deployments that answer for it, and their shared health and budget.
public final class ModelGroup: Sendable {
    public let name: String
    public let deployments: [Deployment]
    private let detector: Mutex<OutlierDetector>
    private let budget: Mutex<RetryBudget>
    private let clock: @Sendable () -> Double
    private let metrics: GatewayMetrics
    /// Each deployment's adaptive concurrency limit, attempts in flight and attempts waiting.
    private let slots: DeploymentSlots
    /// Present when the model hedges slow stream starts.
    private let hedge: Mutex<HedgeDelay?>

    init(name: String, deployments: [Deployment], routing: RoutingConfig, hedging: HedgingConfig? = nil,
         deploymentConcurrency: ConcurrencyLimitPolicy = ConcurrencyLimitPolicy(), maximumWaiting: Int = 1024,
         clock: @escaping @Sendable () -> Double, metrics: GatewayMetrics)
    {
        self.name = name
        self.deployments = deployments
        slots = DeploymentSlots(names: deployments.map(\.name), policy: deploymentConcurrency, maximumWaiting: maximumWaiting, metrics: metrics)
        // The Mutex itself is never optional: a lock must keep one address for its whole life.
        self.hedge = Mutex(hedging.map {
            HedgeDelay(percentile: $0.percentile, minimum: Double($0.minimumDelayMilliseconds) / 1000,
                       maximum: Double($0.maximumDelayMilliseconds) / 1000)
        })
        self.detector = Mutex(OutlierDetector(count: deployments.count, policy: routing.outlierDetection))
        self.budget = Mutex(RetryBudget(policy: routing.retryBudget))
        self.clock = clock
        self.metrics = metrics
        for deployment in deployments { metrics.circuitState(deployment: deployment.name, state: .closed) }
        metrics.failoversExported(model: name)
    }

    private func index(of deployment: Deployment) -> Int { deployments.firstIndex { $0 === deployment }! }

    /// Each deployment's learned concurrency limit and attempts in flight, in `deployments` order.
    var concurrency: [(limit: Int, inFlight: Int)] { slots.snapshot }

    /// Deployments to try, in order, for a new request; `openAIOnly` when the request needs
    /// features only OpenAI-protocol upstreams have (several choices, logprobs). Deployments
    /// with free slots come first; busy ones (at their concurrency limit, but healthy) follow,
    /// since waiting briefly for one of their slots beats refusing the request.
    public func attemptOrder(openAIOnly: Bool = false, estimatedTokens: Int = 0) -> [Deployment] {
        let now = clock()
        let healthy = detector.withLock { detector in deployments.indices.map { detector.isAvailable($0, at: now) } }
        let load = slots.snapshot
        let usable = deployments.indices.map { index in
            let deployment = deployments[index]
            return healthy[index] && !deployment.isDrained && deployment.processAcceptsTraffic
                && (!openAIOnly || deployment.config.protocol == .openai)
                && deployment.hasAllowance(estimatedTokens: estimatedTokens)
        }
        var random = SystemRandomNumberGenerator()
        func order(busy: Bool) -> [Deployment] {
            let candidates = deployments.indices.map { index in
                RoutingCandidate(priority: deployments[index].config.priority, weight: deployments[index].config.weight,
                                 isAvailable: usable[index] && (load[index].inFlight >= load[index].limit) == busy,
                                 inFlight: load[index].inFlight)
            }
            return DeploymentSelector.attemptOrder(candidates, using: &random).map { deployments[$0] }
        }
        return order(busy: false) + order(busy: true)
    }

    /// The group's clock reading, in seconds.
    var now: Double { clock() }

    /// Seconds to wait before hedging a stream start; nil when the model does not hedge.
    var hedgeDelay: Double? { hedge.withLock { $0?.delay } }

    /// A stream's time to first token, for the hedge percentile.
    func recordFirstToken(seconds: Double) { hedge.withLock { $0?.record(seconds) } }

    /// Counts a new client request toward the retry budget.
    func recordRequest() { budget.withLock { $0.recordRequest(at: clock()) } }

    /// Whether a retry (failover, resumption or hedge) may go to `target` now, after `failed`
    /// failed: free onto a healthy deployment with room, else only if the budget has one left.
    func grantRetry(onto target: Deployment, after failed: Deployment?) -> RetryBudget.Grant {
        let now = clock()
        let position = index(of: target)
        let healthy = detector.withLock { $0.isHealthy(position, at: now) }
        let load = slots.load(position)
        let state = RetryTarget(failedJustNow: failed === target, healthy: healthy, inFlight: load.inFlight, limit: load.limit)
        let grant = budget.withLock { $0.grant(onto: state, at: now) }
        if grant == .refused { metrics.retryBudgetExhausted(model: name) }
        return grant
    }

    /// Spends a budgeted retry if the budget allows one.
    func tryRetry() -> Bool {
        let granted = budget.withLock { $0.tryRetry(at: clock()) }
        if !granted { metrics.retryBudgetExhausted(model: name) }
        return granted
    }

    /// What asking a deployment for a slot came to.
    enum SlotGrant: Equatable {
        case granted
        /// Ejected, or its half-open breaker's trials are taken.
        case unavailable
        /// At its concurrency limit for the whole wait.
        case busy
    }

    /// Takes a slot at the deployment's breaker (a half-open breaker allows only a few trials)
    /// and one under its concurrency limit, waiting up to `wait` seconds for the latter (in
    /// priority order).
    func admit(_ deployment: Deployment, waitingUpTo wait: Double = 0, priority: Priority = .normal) async -> SlotGrant {
        let now = clock()
        let position = index(of: deployment)
        guard detector.withLock({ $0.admit(position, at: now) }) else { return .unavailable }
        guard await slots.acquire(position, wait: wait, priority: priority) else {
            detector.withLock { $0.releaseTrial(position) }
            return .busy
        }
        return .granted
    }

    /// Whether the deployment is under its concurrency limit now.
    func hasRoom(_ deployment: Deployment) -> Bool {
        let load = slots.load(index(of: deployment))
        return load.inFlight < load.limit
    }

    /// An answer's latency (first token for streams) trains the deployment's concurrency limit.
    func recordLatency(_ deployment: Deployment, seconds: Double) {
        slots.recordLatency(index(of: deployment), seconds: seconds)
    }

    /// Feeds one attempt's outcome to outlier detection and the metrics.
    func report(_ deployment: Deployment, failure: UpstreamFailure?) {
        // Cancelled by Lifeline or its client: says nothing about the upstream.
        if failure?.isCancellation == true { return release(deployment) }
        let now = clock()
        let position = index(of: deployment)
        let outcome = Self.outcome(failure)
        slots.release(position)
        if let kind = failure?.kind, kind == .status(429) || kind == .timeout || kind == .connect {
            slots.recordOverload(position, at: now, saidByUpstream: kind == .status(429))
        }
        metrics.upstreamAttempt(deployment: deployment.name, model: deployment.model, outcome: outcome)
        // A refusal of the request itself still proves the deployment answers.
        deployment.problems.record(failure?.isRetryable == false ? nil : failure, at: now)
        let (ejected, state) = detector.withLock { detector -> (Bool, CircuitBreaker.State) in
            var ejected = false
            switch failure?.kind {
            case nil:
                detector.recordSuccess(position, at: now)
            case .status(429)?:
                detector.recordRateLimited(position, at: now, retryAfter: failure?.retryAfterSeconds ?? 1)
                detector.releaseTrial(position)
            case _ where failure?.isRetryable == false:
                // The request was at fault, not the upstream: the deployment is healthy.
                detector.recordSuccess(position, at: now)
            default:
                ejected = detector.recordFailure(position, at: now)
            }
            return (ejected, detector.breakers[position].state(at: now))
        }
        if ejected { metrics.ejection(deployment: deployment.name, model: deployment.model) }
        metrics.circuitState(deployment: deployment.name, state: state)
    }

    /// An attempt that ended without an outcome (the client left) frees its trial slot.
    func release(_ deployment: Deployment) {
        let position = index(of: deployment)
        slots.release(position)
        detector.withLock { $0.releaseTrial(position) }
    }

    /// An active probe's result: success closes the breaker early, failure counts toward ejection.
    /// Probes are not user traffic: they touch no request metric and no retry budget.
    func reportProbe(_ deployment: Deployment, healthy: Bool) {
        let now = clock()
        let position = index(of: deployment)
        metrics.healthProbe(deployment: deployment.name, healthy: healthy)
        let (ejected, state) = detector.withLock { detector -> (Bool, CircuitBreaker.State) in
            var ejected = false
            if healthy { detector.recordProbeSuccess(position, at: now) } else { ejected = detector.recordFailure(position, at: now) }
            return (ejected, detector.breakers[position].state(at: now))
        }
        if ejected { metrics.ejection(deployment: deployment.name, model: deployment.model) }
        metrics.circuitState(deployment: deployment.name, state: state)
    }

    /// The breaker of `deployment` as of now, for the admin API.
    func breakerState(_ deployment: Deployment) -> (state: CircuitBreaker.State, ejections: Int, coolingUntil: Double, now: Double) {
        let now = clock()
        let position = index(of: deployment)
        return detector.withLock { ($0.breakers[position].state(at: now), $0.breakers[position].ejectionCount, $0.breakers[position].coolingUntil, now) }
    }

    static func outcome(_ failure: UpstreamFailure?) -> String {
        guard let failure else { return "ok" }
        switch failure.kind {
        case .status(429): return "rate_limited"
        case .status(let status) where status >= 500: return "error_5xx"
        case .status(let status) where DeploymentProblem.Kind(status: status) != nil: return DeploymentProblem.Kind(status: status)!.outcome
        case .status: return "client_error"
        case .timeout: return "timeout"
        case .connect: return "connect"
        case .disconnected: return "disconnected"
        case .malformed: return "malformed"
        }
    }
}

/// Every model and deployment the gateway serves, built from one config.
public final class DeploymentPool: Sendable {
    public let models: [String: ModelGroup]
    public let modelNames: [String]
    public let deployments: [Deployment]

    init(config: LifelineConfig, faults: FaultInjector, metrics: GatewayMetrics, clock: @escaping @Sendable () -> Double,
         processes: [String: ManagedProcess] = [:], reusing previous: DeploymentPool? = nil)
    {
        var models: [String: ModelGroup] = [:]
        var all: [Deployment] = []
        for model in config.models {
            let deployments = model.deployments.map { settings in
                // An unchanged deployment keeps its client (and connections) and its drained flag.
                if let old = previous?.deployment(named: settings.name), old.config == settings, old.model == model.name { return old }
                return Deployment(config: settings, model: model.name, faults: faults, metrics: metrics, clock: clock,
                                  process: settings.process == nil ? nil : processes[settings.name])
            }
            all += deployments
            models[model.name] = ModelGroup(name: model.name, deployments: deployments, routing: config.routing, hedging: model.hedging,
                                         deploymentConcurrency: config.admission.deploymentConcurrency,
                                         maximumWaiting: config.admission.queue.maximumLength, clock: clock, metrics: metrics)
        }
        self.models = models
        self.modelNames = config.models.map(\.name)
        self.deployments = all
    }

    public func deployment(named name: String) -> Deployment? { deployments.first { $0.name == name } }

    func group(of deployment: Deployment) -> ModelGroup? { models[deployment.model] }

    /// Shuts down the clients of deployments that `successor` no longer uses.
    func shutdownClients(notIn successor: DeploymentPool?) async {
        for deployment in deployments where !(successor?.deployments.contains { $0 === deployment } ?? false) {
            await deployment.client.shutdown()
        }
    }
}
