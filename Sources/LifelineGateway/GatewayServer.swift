import Hummingbird
import LifelineSimulator
import LifelineWire
import Logging
import NIOCore
import ServiceLifecycle

/// Starts everything `lifeline serve` runs: simulated upstreams, the gateway, and graceful drain.
public enum GatewayServer {
    /// Runs until SIGTERM or SIGINT, then stops taking requests, lets in-flight ones finish
    /// within the drain timeout, and returns.
    public static func run(config: LifelineConfig, logger: Logger, onReady: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        var config = config
        var services: [any Service] = []
        // Simulated upstreams start first so the gateway never routes to a port nobody listens on.
        for (modelIndex, model) in config.models.enumerated() {
            for (index, deployment) in model.deployments.enumerated() {
                guard let settings = deployment.simulator else { continue }
                var knobs = SimulatorKnobs()
                knobs.ttftMilliseconds = settings.ttftMilliseconds
                knobs.tokensPerSecond = settings.tokensPerSecond
                let simulator = Simulator(protocols: .both, models: [deployment.model], knobs: knobs)
                let (port, service) = try await startSimulator(simulator, logger: logger)
                services.append(service)
                config.models[modelIndex].deployments[index].baseURL = deployment.protocol == .openai
                    ? "http://127.0.0.1:\(port)/v1" : "http://127.0.0.1:\(port)"
                logger.info("simulated upstream started", metadata: ["deployment": .string(deployment.name), "port": .stringConvertible(port)])
            }
        }
        let settings = config
        let pool = DeploymentPool(config: settings)
        let readiness = Readiness()
        let router = GatewayRoutes.router(pool: pool, config: config, readiness: readiness)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(config.server.host, port: config.server.port), serverName: nil, backlog: 4096),
            onServerRunning: { channel in
                readiness.set(true)
                let port = channel.localAddress?.port ?? settings.server.port
                logger.info("lifeline is ready", metadata: ["address": .string("http://\(settings.server.host):\(port)")])
                await onReady(port)
            },
            logger: logger)
        services.append(app)
        services.append(ReadinessService(readiness: readiness))
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(Int64(config.server.drainTimeoutSeconds * 1000))
        let group = ServiceGroup(configuration: groupConfiguration)
        try await group.run()
        await pool.shutdown()
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

/// A service that is already running in its own task; the group only stops it.
final class PreStartedService: Service, Sendable {
    private let task: Task<Void, any Error>
    private let stop: AsyncStream<Void>.Continuation
    private let stopped: AsyncStream<Void>

    init(_ app: some ApplicationProtocol) {
        let (stopped, stop) = AsyncStream<Void>.makeStream()
        self.stopped = stopped
        self.stop = stop
        task = Task {
            try await ServiceGroup(services: [app], logger: app.logger).run()
        }
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            for await _ in stopped {}
        } onGracefulShutdown: { [stop] in
            stop.finish()
        }
        task.cancel()
        _ = await task.result
    }
}
