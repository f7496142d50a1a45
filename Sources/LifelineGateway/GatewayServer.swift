import Foundation
import Hummingbird
import LifelineSimulator
import LifelineStore
import LifelineWire
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// Starts everything `lifeline serve` runs: simulated upstreams, the gateway, probes, and graceful drain.
public enum GatewayServer {
    /// Connections accepted per read of the listening socket.
    static let acceptsPerRead: UInt = 256
    /// Runs until SIGTERM or SIGINT, then stops taking requests, lets in-flight ones finish
    /// within the drain timeout, and returns. SIGHUP reloads `configFile`.
    public static func run(config: LifelineConfig, configFile: String? = nil, overrides: ServerOverrides = ServerOverrides(),
                           logger: Logger, onReady: @escaping @Sendable (Int, GatewayRuntime) async -> Void = { _, _ in }) async throws
    {
        var config = config
        overrides.apply(to: &config)
        SecretRedactor.shared.register(config.secretValues)
        var services: [any Service] = []
        // First in the group, so it stops last and flushes the spans of requests that finished draining.
        if let exporter = try GatewayTracing.start(config.tracing, logger: logger) {
            services.append(exporter)
            logger.info("tracing on", metadata: ["sample_ratio": .stringConvertible(config.tracing.sampleRatio),
                                                 "service_name": .string(config.tracing.serviceName)])
        }
        // Simulated upstreams start first so the gateway never routes to a port nobody listens on.
        for (modelIndex, model) in config.models.enumerated() {
            for (index, deployment) in model.deployments.enumerated() {
                guard let settings = deployment.simulator else { continue }
                var knobs = SimulatorKnobs()
                knobs.ttftMilliseconds = settings.ttftMilliseconds
                knobs.tokensPerSecond = settings.tokensPerSecond
                let simulator = Simulator(protocols: Simulator.Protocols(serving: deployment.protocol), models: [deployment.model], knobs: knobs,
                                          bedrockCredentials: deployment.awsCredentials)
                let (port, service) = try await startSimulator(simulator, logger: logger)
                services.append(service)
                config.models[modelIndex].deployments[index].baseURL = deployment.loopbackBaseURL(port: port)
                logger.info("simulated upstream started", metadata: ["deployment": .string(deployment.name), "port": .stringConvertible(port)])
            }
        }
        let clock = GatewayRuntime.monotonicClock()
        let metrics = GatewayMetrics()
        // Managed processes get their ports now, so every deployment has its base URL before routing
        // starts; their services come first, so shutdown stops them last, after in-flight requests.
        var processes: [ManagedProcess] = []
        for (modelIndex, model) in config.models.enumerated() {
            for (index, deployment) in model.deployments.enumerated() {
                guard let settings = deployment.process else { continue }
                let process = try await managedProcess(deployment, settings, dataDirectory: config.server.dataDirectory,
                                                       clock: clock, metrics: metrics, logger: logger)
                config.models[modelIndex].deployments[index].baseURL = process.baseURL
                processes.append(process)
                services.append(ManagedProcessService(process: process))
            }
        }
        let storePath: String
        let store: any LifelineStore
        if let url = config.storage.postgresURL {
            let postgres = try await PostgresStore.open(url: url, logger: logger)
            (storePath, store) = (postgres.location, postgres)
        } else {
            storePath = config.server.dataDirectory + "/lifeline.sqlite"
            store = try await SQLiteStore.open(path: storePath, logger: logger)
        }
        let keys = try await KeyRegistry.load(store: store, auth: config.auth, host: config.server.host, clock: clock)
        if keys.mode == .required, !keys.hasUsableKeys {
            try? await store.close()
            throw GatewayStartError(message: """
            auth is required (Lifeline listens on \(config.server.host), which is not loopback) and no usable API key exists yet.
            Create one first: lifeline keys create --name NAME --offline --data-dir \(config.server.dataDirectory)
            (or set auth.mode: optional in the config to allow anonymous callers).
            """)
        }
        let sliStore = await StoredSLIBucketStore(store: store, logger: logger)
        let runtime = GatewayRuntime(config: config, logger: logger, store: store, keys: keys, clock: clock, sliStore: sliStore,
                                     metrics: metrics, processes: processes)
        await runtime.status.load(pool: runtime.pool, at: runtime.wallClock())
        await runtime.restoreDeliveries()
        try? await keys.reconcile(with: runtime.usage, priming: true)
        // SLI counts kept before (by earlier processes, or by the other instances) count from the first evaluation.
        try? await runtime.shareCounters()
        logger.info("store opened", metadata: ["path": .string(storePath), "keys": .stringConvertible(keys.list().count),
                                               "auth": .string(keys.mode.rawValue)])
        let token = try AdminToken.resolve(configured: config.admin.token, dataDirectory: config.server.dataDirectory, logger: logger)
        StartupWarnings.log(config: config, authMode: keys.mode, logger: logger)
        let reload: @Sendable () async -> Response = { reloadResponse(runtime: runtime, configFile: configFile, overrides: overrides) }
        let router = GatewayRoutes.router(runtime: runtime, adminToken: token, reload: reload)
        let settings = config
        let connectionLimits = ConnectionLimits(settings.server, metrics: metrics)
        let readPolicy = RequestReadDeadlineHandler.Policy(settings.server)
        logger.info("connection limits", metadata: ["max_connections": .stringConvertible(connectionLimits.maximum),
                                                    "max_connections_per_client": .stringConvertible(connectionLimits.maximumPerClient)])
        let app = Application(
            router: router,
            server: .http1(configuration: .init(
                // Per connection, in front of the router: caps on open connections, and deadlines for reading a request.
                additionalChannelHandlers: [ConnectionLimitHandler(limits: connectionLimits),
                                            RequestReadDeadlineHandler(policy: readPolicy, metrics: metrics)],
                idleTimeout: .milliseconds(Int64(settings.server.idleTimeoutSeconds * 1000)))),
            configuration: .init(address: .hostname(settings.server.host, port: settings.server.port), serverName: nil, backlog: 4096),
            onServerRunning: { channel in
                // NIO accepts 4 connections per read of the listening socket, and a busy event
                // loop reads it once per turn: a burst of 1,000 clients then waits seconds to be
                // accepted while the kernel holds them. Take up to 256 a turn.
                try? await channel.setOption(ChannelOptions.maxMessagesPerRead, value: Self.acceptsPerRead)
                runtime.readiness.set(true)
                let port = channel.localAddress?.port ?? settings.server.port
                runtime.serverStarted(url: "http://\(settings.server.host):\(port)")
                logger.info("lifeline is ready", metadata: ["address": .string("http://\(settings.server.host):\(port)")])
                await onReady(port, runtime)
            },
            logger: logger)
        services.append(app)
        services.append(HealthProber(runtime: runtime))
        services.append(runtime.usage)
        services.append(runtime.traffic)
        services.append(AdmissionTicker(admission: runtime.admission))
        services.append(SchedulingLagProbe(lag: .shared, metrics: runtime.metrics))
        services.append(PeriodicEvaluator(clock: runtime.clock, interval: { runtime.config.alerting.evaluationIntervalSeconds },
                                          evaluate: { runtime.evaluateAlerts() }))
        services.append(PeriodicEvaluator(clock: runtime.clock, interval: { runtime.config.status.evaluationIntervalSeconds },
                                          evaluate: { runtime.evaluateStatus() }))
        // Store-kept cache entries past their stale window go on every instance (one indexed delete).
        services.append(PeriodicEvaluator(clock: runtime.clock, interval: { AnswerCaches.sweepIntervalSeconds },
                                          evaluate: { runtime.answerCaches.scheduleSweep() }))
        services.append(runtime.notifier)
        services.append(StoreSync(runtime: runtime, interval: config.storage.keyRefreshSeconds))
        services.append(ReloadOnHangup(reload: reload))
        services.append(ReadinessService(readiness: runtime.readiness))
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(Int64(config.server.drainTimeoutSeconds * 1000))
        // Closing the store must finish even when this task was cancelled, so it runs in a task of its own.
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            await Task { await runtime.shutdown() }.value
            throw error
        }
        await Task { await runtime.shutdown() }.value
    }

    /// Re-reads the config file; an invalid one is refused with every error and changes nothing.
    static func reloadResponse(runtime: GatewayRuntime, configFile: String?, overrides: ServerOverrides) -> Response {
        guard let configFile else {
            return adminError(409, "This server runs on the embedded zero config; start it with --config to reload.")
        }
        do {
            var (next, warnings) = try ConfigLoader.loadChecked(file: configFile)
            ConfigLoader.log(warnings, logger: runtime.logger)
            SecretRedactor.shared.register(next.secretValues)
            overrides.apply(to: &next)
            try runtime.reload(next)
            return jsonResponse(.ok, ["reloaded": true, "models": .array(next.models.map { .string($0.name) })])
        } catch {
            runtime.logger.error("configuration reload refused", metadata: ["errors": .string(error.description)])
            return jsonResponse(.badRequest, [
                "error": ["message": .string("The new configuration is invalid; nothing was changed."), "type": "invalid_request_error",
                          "param": .null, "code": "invalid_config"],
                "errors": .array(error.issues.map { ["path": .string($0.path), "message": .string($0.message)] }),
            ])
        }
    }

    /// A managed process for `deployment`, on a free loopback port when its config leaves the port to Lifeline.
    static func managedProcess(_ deployment: DeploymentConfig, _ settings: ProcessConfig, dataDirectory: String,
                               clock: @escaping @Sendable () -> Double, metrics: GatewayMetrics, logger: Logger) async throws -> ManagedProcess
    {
        // A child an earlier run left behind holds its port and memory: stop it before taking a port.
        let pidFile = "\(dataDirectory)/processes/\(deployment.name).pid"
        if let stale = await ProcessRecord.stopStale(at: pidFile, grace: min(settings.stopGraceSeconds, 5)) {
            logger.warning("managed process left by an earlier run", metadata: ["deployment": .string(deployment.name), "outcome": .string(stale)])
        }
        var baseURL = deployment.baseURL
        let port: Int
        if settings.picksPort {
            port = try await freeLoopbackPort()
            baseURL = deployment.loopbackBaseURL(port: port)
        } else {
            let url = URL(string: baseURL)
            port = url?.port ?? (url?.scheme == "https" ? 443 : 80)
        }
        let logFile = settings.logFile ?? "\(dataDirectory)/processes/\(deployment.name).log"
        return ManagedProcess(deployment: deployment.name, config: settings, baseURL: baseURL, port: port, logFile: logFile,
                              pidFile: pidFile, clock: clock, metrics: metrics, logger: logger)
    }

    /// A port nothing listens on right now, found by binding port 0 on loopback and closing again.
    static func freeLoopbackPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        guard port > 0 else { throw GatewayStartError(message: "no free loopback port for a managed process") }
        return port
    }

    /// Binds a simulator on a free loopback port before the gateway starts, so its port is known.
    static func startSimulator(_ simulator: Simulator, logger: Logger) async throws -> (Int, any Service) {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var simulatorLogger = logger
        simulatorLogger.logLevel = .warning
        let app = simulator.application(host: "127.0.0.1", port: 0, logger: simulatorLogger) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let service = PreStartedService(app)
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw GatewayStartError(message: "a simulator did not start") }
        return (port, service)
    }
}

/// `--host` and `--port` from the command line: they win over the file, at start and on every reload.
public struct ServerOverrides: Sendable {
    public var host: String?
    public var port: Int?

    public init(host: String? = nil, port: Int? = nil) {
        self.host = host
        self.port = port
    }

    public func apply(to config: inout LifelineConfig) {
        if let host { config.server.host = host }
        if let port { config.server.port = port }
    }
}

struct GatewayStartError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Flips readiness off as soon as shutdown begins (it is signalled before the server drains).
struct ReadinessService: Service {
    let readiness: Readiness
    func run() async throws {
        try? await gracefulShutdown()
        readiness.set(false)
    }
}

/// SIGHUP reloads the config file, as daemons do.
struct ReloadOnHangup: Service {
    let reload: @Sendable () async -> Response

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await withGracefulShutdownHandler {
            for await _ in signals.cancelOnGracefulShutdown() { _ = await reload() }
        } onGracefulShutdown: {}
    }
}

/// A service that is already running in its own task; the group only stops it.
///
/// It is stopped the way the group stops its own services, by a graceful shutdown of its inner
/// group (the server closes its listener and finishes what it serves), not by cancelling its
/// task: a cancelled Hummingbird server logs "Waiting on child channel: CancellationError()" at
/// error level, once per simulator, on every clean SIGTERM. Only if this service itself is
/// cancelled (the outer drain timeout ran out) is the inner task cancelled too.
final class PreStartedService: Service, Sendable {
    private let group: ServiceGroup
    private let task: Task<Void, any Error>
    private let stop: AsyncStream<Void>.Continuation
    private let stopped: AsyncStream<Void>

    init(_ app: some ApplicationProtocol) {
        let (stopped, stop) = AsyncStream<Void>.makeStream()
        self.stopped = stopped
        self.stop = stop
        let group = ServiceGroup(services: [app], logger: app.logger)
        self.group = group
        task = Task {
            try await group.run()
        }
    }

    func run() async throws {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                for await _ in stopped {}
            } onGracefulShutdown: { [stop] in
                stop.finish()
            }
            await group.triggerGracefulShutdown()
            _ = await task.result
        } onCancel: { [task] in
            task.cancel()
        }
    }
}
