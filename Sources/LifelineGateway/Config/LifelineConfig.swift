import LifelineCore
import LifelineWire

/// The whole configuration: one tree, every default in this file.
public struct LifelineConfig: Sendable, Equatable {
    public var server = ServerConfig()
    public var routing = RoutingConfig()
    public var admin = AdminConfig()
    public var auth = AuthConfig()
    public var admission = AdmissionConfig()
    public var models: [ModelConfig] = []
    /// SLOs per public model; nil (no `slos:` block) gives every model the default pair.
    public var slos: [SLOConfig]?
    public var alerting = AlertingConfig()
    public var notifications = NotificationsConfig()
    public var status = StatusConfig()
    public var storage = StorageConfig()
    public var tracing = TracingConfig()

    public init() {}

    /// The SLOs tracked: those configured, else availability 99.9 % and latency 99 % under
    /// 2000 ms over 30 days for every model.
    public var objectives: [ServiceLevelObjective] {
        let configured = slos ?? models.map { SLOConfig(model: $0.name, availability: .init(), latency: .init()) }
        return configured.flatMap { slo -> [ServiceLevelObjective] in
            var objectives: [ServiceLevelObjective] = []
            if let availability = slo.availability {
                objectives.append(ServiceLevelObjective(model: slo.model, kind: .availability, target: availability.target,
                                                        periodDays: availability.periodDays))
            }
            if let latency = slo.latency {
                objectives.append(ServiceLevelObjective(model: slo.model, kind: .latency(thresholdSeconds: latency.thresholdMilliseconds / 1000),
                                                        target: latency.target, periodDays: latency.periodDays))
            }
            return objectives
        }
    }

    /// Values that must never appear in a log: upstream keys and the admin token.
    public var secretValues: [String] {
        var values = models.flatMap { $0.deployments.compactMap(\.apiKey) }
        for deployment in models.flatMap(\.deployments) {
            guard let credentials = deployment.awsCredentials else { continue }
            values += [credentials.accessKeyID, credentials.secretAccessKey] + (credentials.sessionToken.map { [$0] } ?? [])
        }
        if let token = admin.token { values.append(token) }
        if let url = storage.postgresURL { values.append(url) }
        for webhook in notifications.webhooks {
            values.append(webhook.url)
            values.append(contentsOf: webhook.headers.values)
        }
        return values
    }

    /// What `lifeline serve` runs with no config: two simulated upstreams behind one public model.
    public static var zeroConfig: LifelineConfig {
        var config = LifelineConfig()
        var simA = DeploymentConfig(name: "sim-a", protocol: .openai, model: "lifeline-sim")
        simA.simulator = SimulatorConfig()
        var simB = DeploymentConfig(name: "sim-b", protocol: .anthropic, model: "lifeline-sim")
        simB.simulator = SimulatorConfig()
        config.models = [ModelConfig(name: "chat-default", deployments: [simA, simB])]
        return config
    }
}

public struct ServerConfig: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// How long in-flight requests may run after SIGTERM.
    public var drainTimeoutSeconds = 30.0
    /// Largest request body accepted.
    public var maxBodyBytes = 4 * 1024 * 1024
    public var dataDirectory = ".lifeline"
    /// A connection that sends and receives nothing for this long is closed (slow or stalled clients).
    public var idleTimeoutSeconds = 30.0
    /// `Host` values accepted (`server.allowed_hosts`); nil: the bind address, `localhost`, the
    /// loopback literals when bound to loopback, and the status page's host. `"*"` accepts any.
    public var allowedHosts: [String]?
    /// The longest a request's headers and body may take to arrive, from its first byte (from the
    /// connection's opening for the first request); the idle timer alone resets on every byte.
    public var requestReadTimeoutSeconds = 30.0
    /// After `bodyRateGraceSeconds`, a body arriving slower than this gets 408 and its connection closes.
    public var minBodyBytesPerSecond = 1_024.0
    public var bodyRateGraceSeconds = 5.0
    /// Open client connections beyond which a new one gets 503; nil: derived from the open-file
    /// limit at start (see `ConnectionLimits`).
    public var maxConnections: Int?
    /// Open connections from one client address beyond which a new one gets 503; nil: the same as
    /// the overall cap (one address may be a reverse proxy, or a benchmark on loopback).
    public var maxConnectionsPerClient: Int?
}

public struct AuthConfig: Sendable, Equatable {
    public enum Mode: String, Sendable { case optional, required }
    /// Nil: `optional` on a loopback address, `required` on any other.
    public var mode: Mode?
    /// The tier and limits of callers that present no Lifeline key.
    public var anonymousTier = Priority.normal
    public var anonymousLimits = CallerLimitPolicy()
    /// Reverse proxies whose `X-Forwarded-For` names the client (`auth.trusted_proxies`); empty:
    /// the TCP peer is the client and the header is ignored.
    public var trustedProxies: [IPAddressRange] = []

    /// The mode in force for a listen address.
    public func effectiveMode(host: String) -> Mode {
        mode ?? (AuthConfig.isLoopback(host) ? .optional : .required)
    }

    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// Gateway-wide admission: the adaptive concurrency limit and the priority queue in front of it.
public struct AdmissionConfig: Sendable, Equatable {
    /// The whole gateway's limit: it starts above any one deployment's, since it spans them all.
    public var concurrency: ConcurrencyLimitPolicy = {
        var policy = ConcurrencyLimitPolicy()
        policy.initialLimit = 4096
        return policy
    }()
    /// Each deployment's own adaptive limit: routing skips a deployment at its limit.
    public var deploymentConcurrency = ConcurrencyLimitPolicy()
    public var queue = AdmissionQueuePolicy()
}

/// Where state is kept: SQLite under `server.data_dir` (the default), or a shared PostgreSQL.
public struct StorageConfig: Sendable, Equatable {
    /// `storage.postgres.url`, e.g. `${DATABASE_URL}`; a secret (it carries the password).
    public var postgresURL: String?
    /// How often keys changed elsewhere are read from the store (`storage.key_refresh_s`).
    public var keyRefreshSeconds = 1.0
    /// How long a stored Responses answer is kept (`storage.responses.ttl_s`; OpenAI keeps them 30 days).
    public var responsesTTLSeconds = 30.0 * 86_400
    /// The most stored Responses answers kept; beyond it the oldest go (`storage.responses.max_stored`).
    public var maxStoredResponses = 100_000
}

/// OpenTelemetry traces over OTLP/HTTP (`tracing:`); off until `otlp_endpoint` is set. Read at start only.
public struct TracingConfig: Sendable, Equatable {
    /// The collector's OTLP/HTTP traces URL; one with no path gets `/v1/traces`. Nil: tracing is off.
    public var otlpEndpoint: String?
    /// The share of new traces kept, 0...1; a client's `traceparent` decides for its own trace.
    public var sampleRatio = 1.0
    /// The `service.name` resource attribute of every span.
    public var serviceName = "lifeline"

    public init() {}

    public var enabled: Bool { otlpEndpoint != nil }

    /// The URL spans are posted to: the endpoint as written, or with `/v1/traces` when it has no path.
    public var tracesURL: String? {
        guard let endpoint = otlpEndpoint else { return nil }
        let trimmed = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        guard let schemeEnd = trimmed.range(of: "://") else { return endpoint }
        return trimmed[schemeEnd.upperBound...].contains("/") ? endpoint : trimmed + "/v1/traces"
    }
}

public struct AdminConfig: Sendable, Equatable {
    /// Bearer token for `/admin/v1/…`; else `LIFELINE_ADMIN_TOKEN`; else generated at first start.
    public var token: String?
}

public struct RoutingConfig: Sendable, Equatable {
    /// Attempts per request, the first included, across deployments.
    public var maxAttempts = 3
    /// Resumptions per stream after its first byte.
    public var maxResumptions = 2
    public var outlierDetection = OutlierDetectionPolicy()
    public var retryBudget = RetryBudgetPolicy()
    /// Wait before each retry: a random time up to base × 2^(retry-1), capped.
    public var backoff = Backoff()
}

public struct ModelConfig: Sendable, Equatable {
    public var name: String
    public var deployments: [DeploymentConfig]
    /// Off unless configured: a second attempt when the first is slow to start streaming.
    public var hedging: HedgingConfig?
    /// Off unless configured: an exact-match answer cache that also answers, stale, when every
    /// deployment fails (`cache`).
    public var cache: AnswerCachePolicy?

    public init(name: String, deployments: [DeploymentConfig]) {
        self.name = name
        self.deployments = deployments
    }
}

public struct DeploymentConfig: Sendable, Equatable {
    public var name: String
    public var `protocol`: WireProtocol
    /// For OpenAI, up to and including `/v1`; for Anthropic and Azure OpenAI, the host root; for
    /// Gemini, up to and including the API version (default: Google's `v1beta`); for Bedrock, the
    /// runtime endpoint (default `https://bedrock-runtime.{region}.amazonaws.com`).
    public var baseURL = ""
    /// For Bedrock, a Bedrock API key (sent as a bearer token) instead of `awsCredentials`.
    public var apiKey: String?
    /// Bedrock: the AWS region requests are signed for (`region`).
    public var region: String?
    /// Bedrock: the access key that signs requests (`access_key_id`, `secret_access_key`,
    /// `session_token`), each usually written as `${ENV}`.
    public var awsCredentials: AWSCredentials?
    public var model: String
    /// Lower is preferred.
    public var priority = 1
    /// Share within a priority.
    public var weight = 1.0
    public var timeouts = TimeoutConfig()
    /// Active probing; off unless configured.
    public var healthCheck: HealthCheckConfig?
    /// The upstream's own limits, if known: routing avoids the deployment before it would refuse.
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?
    /// When present, Lifeline runs a simulator for this deployment on a free loopback port.
    public var simulator: SimulatorConfig?
    /// When present, Lifeline runs this upstream server itself and keeps it running.
    public var process: ProcessConfig?
    public var streamUsage = StreamUsage.reported
    /// How a stream cut mid-answer elsewhere is continued here.
    public var continuation = Continuation.prefill
    /// Azure OpenAI (`api_version`): the `api-version` query parameter, or `v1` for the
    /// `/openai/v1/` API; nil: `UpstreamEndpoint.defaultAzureAPIVersion`.
    public var apiVersion: String?
    /// Azure OpenAI (`deployment`): the deployment name in the URL; nil: `model`.
    public var azureDeployment: String?

    /// How a resumed stream's continuation is asked for.
    public enum Continuation: String, Sendable, CaseIterable {
        /// The text already sent, as a trailing assistant message: upstreams that honour a prefill
        /// (Anthropic's, the simulator) continue it.
        case prefill
        /// The original request again, without that text: for chat servers that take a prefill for
        /// an earlier turn and answer it with a new, shorter answer (llama.cpp's Python server).
        /// At temperature 0 the answer repeats what the client has word for word, and the splicer
        /// drops the repeat; sampled answers are spliced where they match it.
        case replay
    }

    /// Where a stream's token usage comes from.
    public enum StreamUsage: String, Sendable, CaseIterable {
        /// The upstream's own usage event; without one, completion tokens are the text events counted.
        case reported
        /// As `reported`, and when a stream ends without usage the prompt's token count is asked
        /// with a one-token request that is not streamed (for servers such as llama.cpp's that
        /// ignore `stream_options.include_usage`; one more prompt evaluation, cheap with their prompt cache).
        case ask
    }

    public init(name: String, protocol: WireProtocol, model: String) {
        self.name = name
        self.protocol = `protocol`
        self.model = model
    }

    /// A Bedrock deployment with `simulator:` and no credentials signs with these; its simulator
    /// checks the signature with them.
    public static let bedrockSimulatorCredentials = AWSCredentials(accessKeyID: "AKIDLIFELINESIMULATOR", secretAccessKey: "lifeline-simulator-secret")
    public static let bedrockSimulatorRegion = "us-east-1"

    /// Bedrock's runtime endpoint in a region.
    public static func bedrockBaseURL(region: String) -> String { "https://bedrock-runtime.\(region).amazonaws.com" }
}

public struct TimeoutConfig: Sendable, Equatable {
    public var connectMilliseconds = 2_000
    /// From sending the request to the first token (or the whole answer when not streaming).
    public var firstTokenMilliseconds = 15_000
    /// Longest silence between two chunks of a stream.
    public var idleMilliseconds = 30_000
    public var totalMilliseconds = 600_000
}

public struct HedgingConfig: Sendable, Equatable {
    /// Hedge after this percentile of recent times to first token…
    public var percentile = 0.95
    /// …but never sooner or later than these.
    public var minimumDelayMilliseconds = 100
    public var maximumDelayMilliseconds = 5_000
    public init() {}
}

public struct HealthCheckConfig: Sendable, Equatable {
    public var intervalSeconds = 10.0
    public var timeoutMilliseconds = 2_000
    public init() {}
}

/// An upstream server that Lifeline starts, health-checks, restarts when it dies and stops
/// on shutdown (a local model server, for instance).
public struct ProcessConfig: Sendable, Equatable {
    /// The executable: a path (relative ones from the working directory) or a name looked up in PATH.
    public var command: String
    /// `{port}` in an argument or environment value becomes the deployment's port.
    public var arguments: [String] = []
    /// Added to Lifeline's own environment.
    public var environment: [String: String] = [:]
    /// Nil: Lifeline's own working directory.
    public var workingDirectory: String?
    /// Requested with GET on the base URL's origin; any 2xx means healthy.
    public var healthPath = "/v1/models"
    public var healthIntervalMilliseconds = 500
    public var healthTimeoutMilliseconds = 2_000
    /// SIGTERM, then SIGKILL after this long.
    public var stopGraceSeconds = 10.0
    /// Where the process's output goes; nil: `<data_dir>/processes/<deployment>.log`.
    public var logFile: String?
    public var restart = ProcessRestartPolicy()
    /// True when the base URL was left out and Lifeline picks a free loopback port at start.
    public var picksPort = false

    /// Stands for the deployment's port in `arguments` and `environment`.
    public static let portPlaceholder = "{port}"

    public init(command: String) {
        self.command = command
    }
}

public struct SimulatorConfig: Sendable, Equatable {
    public var ttftMilliseconds = 120
    public var tokensPerSecond = 60.0
}

/// The SLOs of one public model (`slos:` entries).
public struct SLOConfig: Sendable, Equatable {
    public var model: String
    public var availability: AvailabilitySLOConfig?
    public var latency: LatencySLOConfig?

    public init(model: String, availability: AvailabilitySLOConfig? = nil, latency: LatencySLOConfig? = nil) {
        self.model = model
        self.availability = availability
        self.latency = latency
    }
}

/// Share of requests not failed by the service (client 4xx excluded; 5xx and shedding count as bad).
public struct AvailabilitySLOConfig: Sendable, Equatable {
    public var target = 0.999
    public var periodDays = 30.0
    public init() {}
}

/// Share of answered requests whose first token (or whole answer, not streamed) came within the threshold.
public struct LatencySLOConfig: Sendable, Equatable {
    public var target = 0.99
    public var thresholdMilliseconds = 2000.0
    public var periodDays = 30.0
    public init() {}
}

public struct AlertingConfig: Sendable, Equatable {
    /// Multiplies every alert window and the SLI bucket width (1 in production; tests use
    /// 1/720 so that one hour lasts five seconds).
    public var windowScale = 1.0
    /// How often burn rates are computed and alerts advanced.
    public var evaluationIntervalSeconds = 5.0
    /// Base URL for links in notifications (default: the server's own address).
    public var externalURL: String?
}

public struct NotificationsConfig: Sendable, Equatable {
    public var webhooks: [WebhookConfig] = []
    /// Attempts per delivery, the first included, with full-jitter exponential backoff between them.
    public var maxAttempts = 5
    public var backoff = Backoff(base: 0.5, maximum: 30)
    /// Whether webhooks and status subscribers may target loopback, link-local and private
    /// addresses. Off: such targets are refused when configured, registered and sent to.
    public var allowPrivateTargets = false
}

public struct WebhookConfig: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable {
        /// Slack incoming webhook: `{"text", "blocks"}`.
        case slack
        /// Lifeline's own JSON: alert, severity, state, SLO, burn rates, times, summary.
        case json
        /// Alertmanager's API: POST `url/api/v2/alerts`.
        case alertmanager
    }

    public var name: String
    public var format: Format
    /// Kept secret: Slack webhook URLs are credentials.
    public var url: String
    /// Severities delivered to this target.
    public var severities: Set<AlertSeverity> = Set(AlertSeverity.allCases)
    public var headers: [String: String] = [:]
    public var timeoutMilliseconds = 5_000

    public init(name: String, format: Format, url: String) {
        self.name = name
        self.format = format
        self.url = url
    }
}

/// The public status page and automatic incidents.
public struct StatusConfig: Sendable, Equatable {
    public var pageName = "Lifeline"
    /// The page's public address (default: the server's own).
    public var pageURL: String?
    /// How often component statuses, incidents and maintenances are advanced.
    public var evaluationIntervalSeconds = 5.0
    public var thresholds = StatusThresholds()
    public var policy = IncidentPolicy()
    public init() {}
}
