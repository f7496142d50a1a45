import ArgumentParser
import Foundation
import LifelineCore
import LifelineGateway
import LifelineSimulator
import LifelineWire
import Logging
import NIOCore
import NIOPosix

@main
struct Lifeline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lifeline",
        abstract: "A self-hosted AI gateway that keeps answering when model providers fail.",
        version: LifelineVersion.description(environment: ProcessInfo.processInfo.environment),
        subcommands: [Serve.self, Simulate.self, CheckConfig.self, Keys.self, Deployments.self, Drill.self, Incidents.self,
                      MaintenanceCommand.self, Subscribers.self, Reload.self, CacheCommand.self, Backup.self, Restore.self, Capacity.self])

    static func main() async {
        // Run Swift concurrency on NIO's event loops: a request then stays on one thread
        // from socket to upstream and back instead of hopping between two pools.
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info
    @Option(help: "Log format: text (one readable line per event) or json (one JSON object per line).")
    var logFormat: LogFormat = .text

    /// Every logger of the process writes in the chosen format, with known secrets removed.
    func makeLogger(_ label: String) -> Logger {
        let format = logFormat
        LoggingSystem.bootstrap { label in LogSetup.handler(label: label, format: format) }
        var logger = Logger(label: label)
        logger.logLevel = logLevel
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway (with no config: two simulated upstreams on loopback).")

    @Option(help: "YAML config file (default: $LIFELINE_CONFIG, else the embedded zero config).")
    var config: String?
    @Option(help: "Listen address; overrides the config.")
    var host: String?
    @Option(help: "Listen port; overrides the config (0 picks a free port).")
    var port: Int?
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.makeLogger("lifeline")
        let settings: LifelineConfig
        if let file = config ?? ProcessInfo.processInfo.environment["LIFELINE_CONFIG"] {
            do {
                let warnings: [ConfigIssue]
                (settings, warnings) = try ConfigLoader.loadChecked(file: file)
                ConfigLoader.log(warnings, logger: logger)
            } catch {
                printError("\(file): invalid configuration\n\(error.description)")
                throw ExitCode(2)
            }
        } else {
            settings = .zeroConfig
        }
        try await GatewayServer.run(config: settings, configFile: config ?? ProcessInfo.processInfo.environment["LIFELINE_CONFIG"],
                                    overrides: ServerOverrides(host: host, port: port), logger: logger)
    }
}

struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a deterministic model server (OpenAI, Anthropic, Gemini, Azure OpenAI or Bedrock protocol) with fault knobs.")

    @Option(help: "Listen address.") var host = "127.0.0.1"
    @Option(help: "Listen port (0 picks a free port).") var port = 9001
    @Option(name: .customLong("protocol"), help: "openai, anthropic, both (OpenAI and Anthropic), gemini, azure_openai or bedrock (Converse).")
    var wireProtocol = "both"
    @Option(help: "Bedrock: the access key id whose signatures are checked (with --aws-secret-access-key-env); without it only the Authorization header's shape is.")
    var awsAccessKeyId: String?
    @Option(help: "Bedrock: the environment variable holding the secret access key that signatures are checked with.")
    var awsSecretAccessKeyEnv: String?
    @Option(help: "Model ids listed at /v1/models (any name is answered).") var model: [String] = ["lifeline-sim"]
    @Option(help: "Time to first token, in milliseconds.") var ttftMs = 0
    @Option(help: "Token pace; 0 sends as fast as possible.") var tokensPerSecond = 0.0
    @Option(help: "Share of requests answered with --error-status (0 to 1).") var errorRate = 0.0
    @Option(help: "Status for injected errors.") var errorStatus = 500
    @Option(help: "Message of injected errors (default: a sentence naming the status).") var errorMessage: String?
    @Option(help: "Share of requests answered 429 (0 to 1).") var rateLimitRate = 0.0
    @Option(help: "Retry-After seconds on 429.") var retryAfter = 1
    @Option(help: "Cut each answer after this many tokens (0: never).") var disconnectAfterTokens = 0
    @Option(help: "End each stream after this many tokens with the protocol's in-band error for --error-status (0: never).")
    var streamErrorAfterTokens = 0
    @Flag(help: "Accept requests and never answer.") var hang = false
    @Option(help: "Requests served at once; more wait their turn (0: unlimited).") var capacity = 0
    @Option(help: "Content filter: off, prompt (refuse every prompt) or completion (cut every answer halfway).") var contentFilter = "off"
    @Flag(help: "Answer an assistant prefill from the start, as chat servers that take it for an earlier turn do.")
    var restartOnPrefill = false
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        guard let protocols = Simulator.Protocols(rawValue: wireProtocol) else {
            throw ValidationError("--protocol must be openai, anthropic, both, gemini, azure_openai or bedrock")
        }
        guard let filter = SimulatorKnobs.ContentFilter(rawValue: contentFilter) else {
            throw ValidationError("--content-filter must be off, prompt or completion")
        }
        var credentials: AWSCredentials?
        switch (awsAccessKeyId, awsSecretAccessKeyEnv) {
        case (nil, nil): break
        case (let id?, let variable?):
            guard let secret = ProcessInfo.processInfo.environment[variable], !secret.isEmpty else {
                throw ValidationError("--aws-secret-access-key-env: environment variable \(variable) is not set")
            }
            credentials = AWSCredentials(accessKeyID: id, secretAccessKey: secret)
        default:
            throw ValidationError("--aws-access-key-id and --aws-secret-access-key-env go together")
        }
        var knobs = SimulatorKnobs()
        knobs.ttftMilliseconds = ttftMs
        knobs.tokensPerSecond = tokensPerSecond
        knobs.errorRate = errorRate
        knobs.errorStatus = errorStatus
        knobs.errorMessage = errorMessage
        knobs.rateLimitRate = rateLimitRate
        knobs.retryAfterSeconds = retryAfter
        knobs.disconnectAfterTokens = disconnectAfterTokens
        knobs.streamErrorAfterTokens = streamErrorAfterTokens
        knobs.hang = hang
        knobs.capacity = capacity
        knobs.contentFilter = filter
        knobs.restartOnPrefill = restartOnPrefill
        let logger = logging.makeLogger("lifeline.simulator")
        let simulator = Simulator(protocols: protocols, models: model, knobs: knobs, bedrockCredentials: credentials)
        let app = simulator.application(host: host, port: port, logger: logger) { port in
            logger.info("simulator listening", metadata: ["address": .string("http://\(host):\(port)")])
        }
        try await app.runService()
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-config", abstract: "Validate a config file and print every error with its path; --probe also calls each deployment.")

    @Argument(help: "The YAML file to check.") var file: String
    @Flag(help: "Also call each deployment (its model list, else a 1-token request) and report refused credentials, wrong URLs and unreachable servers.")
    var probe = false
    @Option(help: "With --probe: how long each deployment may take to answer, in milliseconds.") var probeTimeoutMs = 10_000

    func run() async throws {
        let config: LifelineConfig
        do {
            let warnings: [ConfigIssue]
            (config, warnings) = try ConfigLoader.loadChecked(file: file)
            let deployments = config.models.reduce(0) { $0 + $1.deployments.count }
            for warning in warnings { printError("\(file): warning: \(warning.description)") }
            print("\(file): ok (\(config.models.count) models, \(deployments) deployments)"
                  + (warnings.isEmpty ? "" : ", \(warnings.count) warning\(warnings.count == 1 ? "" : "s")"))
        } catch {
            printError(error.issues.map { "\(file): \($0.description)" }.joined(separator: "\n"))
            throw ExitCode(1)
        }
        guard probe else { return }
        let results = await DeploymentCheck.run(config, timeoutMilliseconds: max(1, probeTimeoutMs))
        for result in results {
            print("\(result.deployment) (model \(result.model)): \(result.verdict.description)")
        }
        let failed = results.filter { !$0.verdict.passed }
        if !failed.isEmpty {
            printError("\(file): \(failed.count) of \(results.count) deployments failed the probe: \(failed.map(\.deployment).joined(separator: ", "))")
            throw ExitCode(1)
        }
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
