import Foundation
import LifelineCore
import LifelineWire
import Logging
import Yams

/// One thing wrong in a config file, with the path of the field.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var issues: [ConfigIssue]
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

/// Reads YAML into `LifelineConfig`, collecting every problem instead of stopping at the first.
public enum ConfigLoader {
    public static func load(file: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> LifelineConfig {
        try loadChecked(file: file, environment: environment).config
    }

    public static func parse(_ yaml: String, environment: [String: String]) throws(ConfigError) -> LifelineConfig {
        try parseChecked(yaml, environment: environment).config
    }

    /// Like `load`, with the warnings: things that load but are likely mistakes (a secret that
    /// looks like an unexpanded variable), each with its path.
    public static func loadChecked(file: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError)
        -> (config: LifelineConfig, warnings: [ConfigIssue])
    {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigError(issues: [ConfigIssue(path: "", message: "cannot read \(file)")])
        }
        return try parseChecked(String(decoding: data, as: UTF8.self), environment: environment)
    }

    public static func parseChecked(_ yaml: String, environment: [String: String]) throws(ConfigError)
        -> (config: LifelineConfig, warnings: [ConfigIssue])
    {
        let tree: JSONValue
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw ConfigError(issues: [ConfigIssue(path: "", message: "the file is empty")])
            }
            tree = value(of: node)
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(issues: [ConfigIssue(path: "", message: "not valid YAML: \(error)")])
        }
        var reader = ConfigReader(environment: environment)
        let config = reader.readConfig(tree)
        if !reader.issues.isEmpty { throw ConfigError(issues: reader.issues) }
        return (config, reader.warnings)
    }

    /// One log warning per config warning, with its path (the values themselves are never logged).
    public static func log(_ warnings: [ConfigIssue], logger: Logger) {
        for warning in warnings {
            logger.warning("configuration warning", metadata: ["path": .string(warning.path), "problem": .string(warning.message)])
        }
    }

    /// YAML scalars keep their resolved type (int, float, bool, null, string).
    static func value(of node: Node) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            if scalar.style != .plain { return .string(scalar.string) }
            if node.null != nil { return .null }
            if let bool = node.bool { return .bool(bool) }
            if let int = node.int { return .number(Double(int)) }
            if let float = node.float { return .number(float) }
            return .string(scalar.string)
        case .mapping(let mapping):
            var object: [String: JSONValue] = [:]
            for (key, value) in mapping { object[key.string ?? "\(key)"] = self.value(of: value) }
            return .object(object)
        case .sequence(let sequence):
            return .array(sequence.map { value(of: $0) })
        case .alias(let alias):
            return .string("\(alias)")
        }
    }
}

/// Walks the YAML tree with paths; unknown keys and wrong types become issues.
struct ConfigReader {
    let environment: [String: String]
    var issues: [ConfigIssue] = []
    var warnings: [ConfigIssue] = []

    init(environment: [String: String]) { self.environment = environment }

    /// A secret field (API key, token, URL with a password, webhook header): read like any string,
    /// with a warning when its text holds a variable that `${NAME}` substitution did not expand.
    mutating func secret(_ object: [String: JSONValue], _ key: String, _ path: String) -> String? {
        if let raw = object[key]?.stringValue, let reference = Self.unexpandedVariable(in: raw) {
            warnings.append(ConfigIssue(path: join(path, key), message: reference))
        }
        return string(object, key, path)
    }

    /// What looks like an environment variable left as text: `$NAME`, `${NAME` without its
    /// closing brace, or `%NAME%`. Only the reference is quoted, never the rest of the value.
    static func unexpandedVariable(in raw: String) -> String? {
        let characters = Array(raw)
        func name(from start: Int) -> String {
            String(characters[start...].prefix { $0.isLetter || $0.isNumber || $0 == "_" })
        }
        var index = 0
        while index < characters.count {
            if characters[index] == "$", index + 1 < characters.count {
                if characters[index + 1] == "{" {
                    let variable = name(from: index + 2)
                    let end = index + 2 + variable.count
                    if end < characters.count, characters[end] == "}" { index = end + 1; continue }
                    if !variable.isEmpty {
                        return "looks like an unexpanded environment variable (${\(variable) has no closing brace); write ${\(variable)}"
                    }
                } else if characters[index + 1].isLetter || characters[index + 1] == "_" {
                    let variable = name(from: index + 1)
                    return "looks like an unexpanded environment variable ($\(variable)); only ${\(variable)} is substituted"
                }
            } else if characters[index] == "%" {
                let variable = name(from: index + 1)
                let end = index + 1 + variable.count
                if !variable.isEmpty, end < characters.count, characters[end] == "%", variable.first?.isLetter == true {
                    return "looks like an unexpanded environment variable (%\(variable)%); write ${\(variable)}"
                }
            }
            index += 1
        }
        return nil
    }

    mutating func fail(_ path: String, _ message: String) { issues.append(ConfigIssue(path: path, message: message)) }

    mutating func object(_ value: JSONValue?, _ path: String, allowed: Set<String>) -> [String: JSONValue] {
        guard let value, !value.isNull else { return [:] }
        guard let object = value.objectValue else { fail(path, "expected a mapping, got \(value.typeName)"); return [:] }
        for key in object.keys.sorted() where !allowed.contains(key) {
            fail(join(path, key), "unknown key (known: \(allowed.sorted().joined(separator: ", ")))")
        }
        return object
    }

    func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Replaces `${NAME}` with the environment's value; an unset variable is an issue.
    mutating func substitute(_ text: String, _ path: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else { result += rest[start.lowerBound...]; return result }
            let name = String(rest[start.upperBound..<end])
            if let value = environment[name] {
                result += value
            } else {
                fail(path, "environment variable \(name) is not set")
            }
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    mutating func string(_ object: [String: JSONValue], _ key: String, _ path: String) -> String? {
        guard let value = object[key], !value.isNull else { return nil }
        if let string = value.stringValue { return substitute(string, join(path, key)) }
        if case .number = value { return JSONCoding.encodeString(value) }
        fail(join(path, key), "expected a string, got \(value.typeName)")
        return nil
    }

    mutating func number(_ object: [String: JSONValue], _ key: String, _ path: String, in range: ClosedRange<Double>) -> Double? {
        guard let value = object[key], !value.isNull else { return nil }
        var number = value.doubleValue
        if number == nil, let text = value.stringValue { number = Double(substitute(text, join(path, key))) }
        guard let number else { fail(join(path, key), "expected a number, got \(value.typeName)"); return nil }
        guard range.contains(number) else {
            fail(join(path, key), "must be from \(formatted(range.lowerBound)) to \(formatted(range.upperBound)), got \(formatted(number))")
            return nil
        }
        return number
    }

    mutating func integer(_ object: [String: JSONValue], _ key: String, _ path: String, in range: ClosedRange<Int>) -> Int? {
        guard let number = number(object, key, path, in: Double(range.lowerBound)...Double(range.upperBound)) else { return nil }
        guard number.rounded() == number else { fail(join(path, key), "must be a whole number"); return nil }
        return Int(number)
    }

    /// A list of strings; `${NAME}` is substituted in each.
    mutating func strings(_ object: [String: JSONValue], _ key: String, _ path: String) -> [String]? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let list = value.arrayValue else { fail(join(path, key), "expected a list, got \(value.typeName)"); return nil }
        var result: [String] = []
        for (index, item) in list.enumerated() {
            if let text = item.stringValue { result.append(substitute(text, "\(join(path, key))[\(index)]")) } else {
                fail("\(join(path, key))[\(index)]", "expected a string, got \(item.typeName)")
            }
        }
        return result
    }

    func formatted(_ number: Double) -> String { number.rounded() == number ? String(Int(number)) : String(number) }

    mutating func readConfig(_ tree: JSONValue) -> LifelineConfig {
        var config = LifelineConfig()
        let root = object(tree, "", allowed: ["server", "routing", "admin", "auth", "admission", "models", "slos", "alerting", "notifications", "status",
                                              "storage", "tracing"])
        let server = object(root["server"], "server", allowed: ["host", "port", "drain_timeout_s", "max_body_bytes", "data_dir", "idle_timeout_s",
                                                                  "allowed_hosts", "request_read_timeout_s", "min_body_bytes_per_second",
                                                                  "body_rate_grace_s", "max_connections", "max_connections_per_client"])
        if let host = string(server, "host", "server") { config.server.host = host }
        if let port = integer(server, "port", "server", in: 0...65535) { config.server.port = port }
        if let drain = number(server, "drain_timeout_s", "server", in: 0...3600) { config.server.drainTimeoutSeconds = drain }
        if let limit = integer(server, "max_body_bytes", "server", in: 1024...1_073_741_824) { config.server.maxBodyBytes = limit }
        if let directory = string(server, "data_dir", "server") { config.server.dataDirectory = directory }
        if let idle = number(server, "idle_timeout_s", "server", in: 0.1...3600) { config.server.idleTimeoutSeconds = idle }
        if let hosts = strings(server, "allowed_hosts", "server") {
            for (index, host) in hosts.enumerated() where HostAllowlist.Entry(host) == nil {
                fail("server.allowed_hosts[\(index)]", "must be a host name or IP address, optionally with :port, or \"*\"; got '\(host)'")
            }
            config.server.allowedHosts = hosts
        }
        readNetworkLimits(server, into: &config.server)

        readRouting(root["routing"], into: &config.routing)
        let admin = object(root["admin"], "admin", allowed: ["token"])
        config.admin.token = secret(admin, "token", "admin")
        let storage = object(root["storage"], "storage", allowed: ["postgres", "key_refresh_s", "responses"])
        if let refresh = number(storage, "key_refresh_s", "storage", in: 0.05...3600) { config.storage.keyRefreshSeconds = refresh }
        if storage["responses"] != nil {
            let responses = object(storage["responses"], "storage.responses", allowed: ["ttl_s", "max_stored"])
            if let ttl = number(responses, "ttl_s", "storage.responses", in: 60...(400 * 86_400)) { config.storage.responsesTTLSeconds = ttl }
            if let limit = integer(responses, "max_stored", "storage.responses", in: 0...100_000_000) { config.storage.maxStoredResponses = limit }
        }
        if storage["postgres"] != nil {
            let postgres = object(storage["postgres"], "storage.postgres", allowed: ["url"])
            if let url = secret(postgres, "url", "storage.postgres") {
                if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
                    config.storage.postgresURL = url
                } else {
                    fail("storage.postgres.url", "must be a postgres://user:password@host:port/database URL")
                }
            } else {
                fail("storage.postgres.url", "required")
            }
        }
        readAuth(root["auth"], into: &config.auth)
        readAdmission(root["admission"], into: &config.admission)

        readAlerting(root["alerting"], into: &config.alerting)
        readNotifications(root["notifications"], into: &config.notifications)
        readStatus(root["status"], into: &config.status)
        readTracing(root["tracing"], into: &config.tracing)

        guard let models = root["models"]?.arrayValue else {
            if let value = root["models"] { fail("models", "expected a list, got \(value.typeName)") } else { fail("models", "at least one model is required") }
            return config
        }
        if models.isEmpty { fail("models", "at least one model is required") }
        var modelNames: Set<String> = []
        var deploymentNames: Set<String> = []
        for (modelIndex, rawModel) in models.enumerated() {
            let path = "models[\(modelIndex)]"
            let model = object(rawModel, path, allowed: ["name", "deployments", "hedging", "cache"])
            let name = string(model, "name", path) ?? ""
            if name.isEmpty { fail(join(path, "name"), "required") }
            else if !modelNames.insert(name).inserted { fail(join(path, "name"), "duplicate model name '\(name)'") }
            var deployments: [DeploymentConfig] = []
            let rawDeployments = model["deployments"]?.arrayValue ?? []
            if rawDeployments.isEmpty { fail(join(path, "deployments"), "at least one deployment is required") }
            for (index, rawDeployment) in rawDeployments.enumerated() {
                if let deployment = readDeployment(rawDeployment, "\(path).deployments[\(index)]") {
                    if !deploymentNames.insert(deployment.name).inserted {
                        fail("\(path).deployments[\(index)].name", "duplicate deployment name '\(deployment.name)'")
                    }
                    deployments.append(deployment)
                }
            }
            var entry = ModelConfig(name: name, deployments: deployments)
            if model["hedging"] != nil {
                let hedgePath = join(path, "hedging")
                let hedge = self.object(model["hedging"], hedgePath, allowed: ["percentile", "min_delay_ms", "max_delay_ms"])
                var settings = HedgingConfig()
                if let value = number(hedge, "percentile", hedgePath, in: 0.5...0.999) { settings.percentile = value }
                if let value = integer(hedge, "min_delay_ms", hedgePath, in: 1...600_000) { settings.minimumDelayMilliseconds = value }
                if let value = integer(hedge, "max_delay_ms", hedgePath, in: 1...600_000) { settings.maximumDelayMilliseconds = value }
                entry.hedging = settings
            }
            if model["cache"] != nil { entry.cache = readCache(model["cache"], join(path, "cache")) }
            config.models.append(entry)
        }
        if let slos = root["slos"], !slos.isNull { config.slos = readSLOs(slos, models: modelNames) }
        return config
    }

    /// `models[].cache`: every field optional, defaults in `AnswerCachePolicy`.
    mutating func readCache(_ raw: JSONValue?, _ path: String) -> AnswerCachePolicy {
        let cache = object(raw, path, allowed: ["ttl_s", "max_entries", "max_bytes", "serve_stale_on_error_s", "cache_sampled", "shared", "store"])
        var policy = AnswerCachePolicy()
        if let value = number(cache, "ttl_s", path, in: 1...31_536_000) { policy.ttlSeconds = value }
        if let value = integer(cache, "max_entries", path, in: 1...10_000_000) { policy.maxEntries = value }
        if let value = integer(cache, "max_bytes", path, in: 1_024...17_179_869_184) { policy.maxBytes = value }
        if let value = number(cache, "serve_stale_on_error_s", path, in: 0...31_536_000) { policy.serveStaleOnErrorSeconds = value }
        for (key, keyPath) in [("cache_sampled", \AnswerCachePolicy.cacheSampled), ("shared", \AnswerCachePolicy.shared), ("store", \AnswerCachePolicy.store)] {
            guard let value = cache[key], !value.isNull else { continue }
            if let flag = value.boolValue { policy[keyPath: keyPath] = flag } else { fail(join(path, key), "expected true or false, got \(value.typeName)") }
        }
        return policy
    }

    /// `slos:` — one entry per public model, each with `availability` and/or `latency`.
    mutating func readSLOs(_ raw: JSONValue?, models: Set<String>) -> [SLOConfig] {
        guard let raw, !raw.isNull else { return [] }
        guard let entries = raw.arrayValue else { fail("slos", "expected a list, got \(raw.typeName)"); return [] }
        var seen: Set<String> = []
        var slos: [SLOConfig] = []
        for (index, entry) in entries.enumerated() {
            let path = "slos[\(index)]"
            let object = object(entry, path, allowed: ["model", "availability", "latency"])
            let model = string(object, "model", path) ?? ""
            if model.isEmpty {
                fail(join(path, "model"), "required (a public model name)")
            } else if !models.contains(model) {
                fail(join(path, "model"), "no model is named '\(model)' (known: \(models.sorted().joined(separator: ", ")))")
            } else if !seen.insert(model).inserted {
                fail(join(path, "model"), "duplicate SLO entry for model '\(model)'")
            }
            var slo = SLOConfig(model: model)
            if object["availability"] != nil {
                let availabilityPath = join(path, "availability")
                let fields = self.object(object["availability"], availabilityPath, allowed: ["target", "period_days"])
                var availability = AvailabilitySLOConfig()
                if let target = number(fields, "target", availabilityPath, in: 0.5...0.99999) { availability.target = target }
                if let days = number(fields, "period_days", availabilityPath, in: 1...365) { availability.periodDays = days }
                slo.availability = availability
            }
            if object["latency"] != nil {
                let latencyPath = join(path, "latency")
                let fields = self.object(object["latency"], latencyPath, allowed: ["target", "threshold_ms", "period_days"])
                var latency = LatencySLOConfig()
                if let target = number(fields, "target", latencyPath, in: 0.5...0.99999) { latency.target = target }
                if let threshold = number(fields, "threshold_ms", latencyPath, in: 1...3_600_000) { latency.thresholdMilliseconds = threshold }
                if let days = number(fields, "period_days", latencyPath, in: 1...365) { latency.periodDays = days }
                slo.latency = latency
            }
            if slo.availability == nil, slo.latency == nil { fail(path, "needs availability, latency or both") }
            slos.append(slo)
        }
        return slos
    }

    mutating func readAlerting(_ raw: JSONValue?, into alerting: inout AlertingConfig) {
        let path = "alerting"
        let object = object(raw, path, allowed: ["window_scale", "evaluation_interval_s", "external_url"])
        if let scale = number(object, "window_scale", path, in: 0.0001...1) { alerting.windowScale = scale }
        if let interval = number(object, "evaluation_interval_s", path, in: 0.05...300) { alerting.evaluationIntervalSeconds = interval }
        if let url = string(object, "external_url", path) {
            if isHTTPURL(url) { alerting.externalURL = url.hasSuffix("/") ? String(url.dropLast()) : url }
            else { fail(join(path, "external_url"), "not a URL (expected http:// or https:// with a host), got '\(url)'") }
        }
    }

    mutating func readStatus(_ raw: JSONValue?, into status: inout StatusConfig) {
        let path = "status"
        let object = object(raw, path, allowed: [
            "page_name", "page_url", "evaluation_interval_s", "window_s", "minimum_requests", "degraded_error_share",
            "partial_outage_error_share", "major_outage_error_share", "latency_quantile", "latency_threshold_ms", "open_after_s",
            "open_after_partial_outage_s", "open_after_major_outage_s", "monitor_after_s", "resolve_after_s", "update_interval_s",
            "require_approval", "time_scale"])
        if let name = string(object, "page_name", path) { status.pageName = name }
        if let url = string(object, "page_url", path) {
            if isHTTPURL(url) { status.pageURL = url.hasSuffix("/") ? String(url.dropLast()) : url } else { fail(join(path, "page_url"), "not an http(s) URL") }
        }
        if let value = number(object, "evaluation_interval_s", path, in: 0.05...300) { status.evaluationIntervalSeconds = value }
        if let value = number(object, "window_s", path, in: 0.5...3600) { status.thresholds.windowSeconds = value }
        if let value = integer(object, "minimum_requests", path, in: 1...1_000_000) { status.thresholds.minimumRequests = value }
        if let value = number(object, "degraded_error_share", path, in: 0.0001...1) { status.thresholds.degradedErrorShare = value }
        if let value = number(object, "partial_outage_error_share", path, in: 0.0001...1) { status.thresholds.partialOutageErrorShare = value }
        if let value = number(object, "major_outage_error_share", path, in: 0.0001...1) { status.thresholds.majorOutageErrorShare = value }
        if let value = number(object, "latency_quantile", path, in: 0.5...0.9999) { status.thresholds.latencyQuantile = value }
        if let value = number(object, "latency_threshold_ms", path, in: 1...600_000) { status.thresholds.latencyThresholdSeconds = value / 1000 }
        if let value = number(object, "open_after_s", path, in: 0...86_400) { status.policy.openAfterSeconds = value }
        if let value = number(object, "open_after_partial_outage_s", path, in: 0...86_400) { status.policy.openAfterPartialOutageSeconds = value }
        if let value = number(object, "open_after_major_outage_s", path, in: 0...86_400) { status.policy.openAfterMajorOutageSeconds = value }
        if let value = number(object, "monitor_after_s", path, in: 0...86_400) { status.policy.monitorAfterSeconds = value }
        if let value = number(object, "resolve_after_s", path, in: 0...86_400) { status.policy.resolveAfterSeconds = value }
        if let value = number(object, "update_interval_s", path, in: 1...86_400) { status.policy.updateIntervalSeconds = value }
        if let value = object["require_approval"] {
            if let flag = value.boolValue { status.policy.requireApproval = flag } else { fail(join(path, "require_approval"), "expected true or false") }
        }
        // Every duration of the status page at once (tests shrink minutes to seconds), like `alerting.window_scale`.
        if let scale = number(object, "time_scale", path, in: 0.0001...1), scale != 1 {
            status.evaluationIntervalSeconds = max(0.05, status.evaluationIntervalSeconds * scale)
            status.thresholds.windowSeconds *= scale
            status.policy.openAfterSeconds *= scale
            status.policy.openAfterPartialOutageSeconds *= scale
            status.policy.openAfterMajorOutageSeconds *= scale
            status.policy.monitorAfterSeconds *= scale
            status.policy.resolveAfterSeconds *= scale
            status.policy.updateIntervalSeconds *= scale
        }
        let shares = status.thresholds
        if !(shares.degradedErrorShare <= shares.partialOutageErrorShare && shares.partialOutageErrorShare <= shares.majorOutageErrorShare) {
            fail(path, "error shares must rise: degraded_error_share ≤ partial_outage_error_share ≤ major_outage_error_share")
        }
    }

    mutating func readNotifications(_ raw: JSONValue?, into notifications: inout NotificationsConfig) {
        let path = "notifications"
        let object = object(raw, path, allowed: ["webhooks", "max_attempts", "backoff", "allow_private_targets"])
        if let value = object["allow_private_targets"] {
            if let flag = value.boolValue { notifications.allowPrivateTargets = flag } else { fail(join(path, "allow_private_targets"), "expected true or false") }
        }
        if let attempts = integer(object, "max_attempts", path, in: 1...20) { notifications.maxAttempts = attempts }
        let backoffPath = join(path, "backoff")
        let backoff = self.object(object["backoff"], backoffPath, allowed: ["base_ms", "max_ms"])
        if let value = number(backoff, "base_ms", backoffPath, in: 0...600_000) { notifications.backoff.base = value / 1000 }
        if let value = number(backoff, "max_ms", backoffPath, in: 0...3_600_000) { notifications.backoff.maximum = value / 1000 }
        guard let rawWebhooks = object["webhooks"], !rawWebhooks.isNull else { return }
        guard let webhooks = rawWebhooks.arrayValue else { fail(join(path, "webhooks"), "expected a list, got \(rawWebhooks.typeName)"); return }
        var names: Set<String> = []
        for (index, rawWebhook) in webhooks.enumerated() {
            let webhookPath = "\(path).webhooks[\(index)]"
            let fields = self.object(rawWebhook, webhookPath, allowed: ["name", "format", "url", "severities", "headers", "timeout_ms"])
            let name = string(fields, "name", webhookPath) ?? ""
            if name.isEmpty { fail(join(webhookPath, "name"), "required") }
            else if !names.insert(name).inserted { fail(join(webhookPath, "name"), "duplicate webhook name '\(name)'") }
            var format = WebhookConfig.Format.json
            if let text = string(fields, "format", webhookPath) {
                if let parsed = WebhookConfig.Format(rawValue: text) { format = parsed }
                else { fail(join(webhookPath, "format"), "must be slack, json or alertmanager, got '\(text)'") }
            } else {
                fail(join(webhookPath, "format"), "required (slack, json or alertmanager)")
            }
            // The URL is often a credential (Slack's are): errors never quote it.
            let url = secret(fields, "url", webhookPath) ?? ""
            if url.isEmpty { fail(join(webhookPath, "url"), "required") }
            else if !isHTTPURL(url) { fail(join(webhookPath, "url"), "not a URL (expected http:// or https:// with a host)") }
            else if !notifications.allowPrivateTargets, let host = URL(string: url)?.host, PrivateAddress.literalIsPrivate(host) == true {
                fail(join(webhookPath, "url"), "a loopback or private address; set notifications.allow_private_targets: true to allow it")
            }
            var webhook = WebhookConfig(name: name, format: format, url: url.hasSuffix("/") ? String(url.dropLast()) : url)
            if let rawSeverities = fields["severities"], !rawSeverities.isNull {
                if let list = rawSeverities.arrayValue {
                    var severities: Set<AlertSeverity> = []
                    for (severityIndex, item) in list.enumerated() {
                        if let text = item.stringValue, let severity = AlertSeverity(rawValue: text) { severities.insert(severity) }
                        else { fail("\(webhookPath).severities[\(severityIndex)]", "must be page or ticket") }
                    }
                    webhook.severities = severities
                } else {
                    fail(join(webhookPath, "severities"), "expected a list, got \(rawSeverities.typeName)")
                }
            }
            if fields["headers"] != nil {
                let headersPath = join(webhookPath, "headers")
                let headers = self.object(fields["headers"], headersPath, allowed: Set(fields["headers"]?.objectValue?.keys.map { $0 } ?? []))
                for key in headers.keys.sorted() {
                    if let value = secret(headers, key, headersPath) { webhook.headers[key] = value }
                }
            }
            if let timeout = integer(fields, "timeout_ms", webhookPath, in: 1...600_000) { webhook.timeoutMilliseconds = timeout }
            notifications.webhooks.append(webhook)
        }
    }

    /// `server.request_read_timeout_s`, `min_body_bytes_per_second`, `body_rate_grace_s`,
    /// `max_connections`, `max_connections_per_client`.
    mutating func readTracing(_ raw: JSONValue?, into tracing: inout TracingConfig) {
        let path = "tracing"
        guard let raw, !raw.isNull else { return }
        let object = object(raw, path, allowed: ["otlp_endpoint", "sample_ratio", "service_name"])
        if let ratio = number(object, "sample_ratio", path, in: 0...1) { tracing.sampleRatio = ratio }
        if let name = string(object, "service_name", path) {
            if name.isEmpty || name.count > 255 || name.contains(where: { $0.isNewline }) {
                fail(join(path, "service_name"), "must be a non-empty name of at most 255 characters on one line")
            } else {
                tracing.serviceName = name
            }
        }
        guard let endpoint = string(object, "otlp_endpoint", path) else {
            // Tracing is off without a collector; a block that sets only the other fields is a mistake.
            if !object.isEmpty { fail(join(path, "otlp_endpoint"), "required to turn tracing on (an OTLP/HTTP collector URL, e.g. http://127.0.0.1:4318)") }
            return
        }
        guard isHTTPURL(endpoint), !endpoint.contains("?"), !endpoint.contains("#") else {
            fail(join(path, "otlp_endpoint"), "not an OTLP/HTTP URL (expected http:// or https:// with a host, no query), got '\(endpoint)'")
            return
        }
        tracing.otlpEndpoint = endpoint
    }

    mutating func readNetworkLimits(_ server: [String: JSONValue], into settings: inout ServerConfig) {
        if let value = number(server, "request_read_timeout_s", "server", in: 0.1...3600) { settings.requestReadTimeoutSeconds = value }
        if let value = number(server, "min_body_bytes_per_second", "server", in: 0...1_073_741_824) { settings.minBodyBytesPerSecond = value }
        if let value = number(server, "body_rate_grace_s", "server", in: 0...3600) { settings.bodyRateGraceSeconds = value }
        if let value = integer(server, "max_connections", "server", in: 1...10_000_000) { settings.maxConnections = value }
        if let value = integer(server, "max_connections_per_client", "server", in: 1...10_000_000) { settings.maxConnectionsPerClient = value }
    }

    func isHTTPURL(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme else { return false }
        return ["http", "https"].contains(scheme) && url.host != nil
    }

    mutating func readRouting(_ raw: JSONValue?, into routing: inout RoutingConfig) {
        let path = "routing"
        let object = object(raw, path, allowed: ["max_attempts", "max_resumptions", "outlier_detection", "retry_budget", "backoff"])
        if let attempts = integer(object, "max_attempts", path, in: 1...10) { routing.maxAttempts = attempts }
        if let resumptions = integer(object, "max_resumptions", path, in: 0...10) { routing.maxResumptions = resumptions }

        let outlierPath = "routing.outlier_detection"
        let outlier = self.object(object["outlier_detection"], outlierPath, allowed: [
            "consecutive_failures", "failure_rate_threshold", "failure_rate_minimum_requests", "failure_rate_window_s",
            "base_ejection_s", "max_ejection_s", "max_ejection_percent", "half_open_trials"])
        var policy = routing.outlierDetection
        if let value = integer(outlier, "consecutive_failures", outlierPath, in: 1...1000) { policy.consecutiveFailures = value }
        if let value = number(outlier, "failure_rate_threshold", outlierPath, in: 0.01...1) { policy.failureRateThreshold = value }
        if let value = integer(outlier, "failure_rate_minimum_requests", outlierPath, in: 1...100_000) { policy.failureRateMinimumRequests = value }
        if let value = number(outlier, "failure_rate_window_s", outlierPath, in: 1...3600) { policy.failureRateWindow = value }
        if let value = number(outlier, "base_ejection_s", outlierPath, in: 0.01...86_400) { policy.baseEjectionTime = value }
        if let value = number(outlier, "max_ejection_s", outlierPath, in: 0.01...86_400) { policy.maximumEjectionTime = value }
        if let value = number(outlier, "max_ejection_percent", outlierPath, in: 0...100) { policy.maximumEjectionPercent = value }
        if let value = integer(outlier, "half_open_trials", outlierPath, in: 1...1000) { policy.halfOpenTrials = value }
        routing.outlierDetection = policy

        let budgetPath = "routing.retry_budget"
        let budget = self.object(object["retry_budget"], budgetPath, allowed: ["ratio", "min_per_second", "window_s"])
        if let value = number(budget, "ratio", budgetPath, in: 0...10) { routing.retryBudget.ratio = value }
        if let value = number(budget, "min_per_second", budgetPath, in: 0...100_000) { routing.retryBudget.minimumPerSecond = value }
        if let value = number(budget, "window_s", budgetPath, in: 1...3600) { routing.retryBudget.window = value }

        let backoffPath = "routing.backoff"
        let backoff = self.object(object["backoff"], backoffPath, allowed: ["base_ms", "max_ms"])
        if let value = number(backoff, "base_ms", backoffPath, in: 0...60_000) { routing.backoff.base = value / 1000 }
        if let value = number(backoff, "max_ms", backoffPath, in: 0...600_000) { routing.backoff.maximum = value / 1000 }
    }

    mutating func readAuth(_ raw: JSONValue?, into auth: inout AuthConfig) {
        let object = object(raw, "auth", allowed: ["mode", "anonymous", "trusted_proxies"])
        for (index, entry) in (strings(object, "trusted_proxies", "auth") ?? []).enumerated() {
            if let range = IPAddressRange(entry) {
                auth.trustedProxies.append(range)
            } else {
                fail("auth.trusted_proxies[\(index)]", "must be an IP address or CIDR block such as 10.0.0.0/8, got '\(entry)'")
            }
        }
        if let mode = string(object, "mode", "auth") {
            if let parsed = AuthConfig.Mode(rawValue: mode) { auth.mode = parsed } else { fail("auth.mode", "must be optional or required, got '\(mode)'") }
        }
        let path = "auth.anonymous"
        let anonymous = self.object(object["anonymous"], path, allowed: ["tier", "rpm", "tpm", "max_concurrency"])
        if let tier = string(anonymous, "tier", path) {
            if let parsed = Priority(name: tier) { auth.anonymousTier = parsed } else { fail("\(path).tier", "must be critical, high, normal or low, got '\(tier)'") }
        }
        auth.anonymousLimits.requestsPerMinute = integer(anonymous, "rpm", path, in: 1...100_000_000)
        auth.anonymousLimits.tokensPerMinute = integer(anonymous, "tpm", path, in: 1...1_000_000_000_000)
        auth.anonymousLimits.maxConcurrency = integer(anonymous, "max_concurrency", path, in: 1...1_000_000)
    }

    mutating func readAdmission(_ raw: JSONValue?, into admission: inout AdmissionConfig) {
        let object = object(raw, "admission", allowed: ["concurrency", "deployment_concurrency", "queue"])
        admission.concurrency = readLimit(object["concurrency"], "admission.concurrency", admission.concurrency)
        admission.deploymentConcurrency = readLimit(object["deployment_concurrency"], "admission.deployment_concurrency",
                                                    admission.deploymentConcurrency)
        let queuePath = "admission.queue"
        let queue = self.object(object["queue"], queuePath, allowed: ["max_length", "max_wait_ms", "standing_wait_ms", "target_ms", "interval_ms", "critical_reserve"])
        if let value = integer(queue, "max_length", queuePath, in: 0...1_000_000) { admission.queue.maximumLength = value }
        if let value = number(queue, "max_wait_ms", queuePath, in: 1...600_000) { admission.queue.maximumWait = value / 1000 }
        if let value = number(queue, "standing_wait_ms", queuePath, in: 1...600_000) { admission.queue.standingWait = value / 1000 }
        if let value = number(queue, "target_ms", queuePath, in: 1...600_000) { admission.queue.target = value / 1000 }
        if let value = number(queue, "interval_ms", queuePath, in: 1...600_000) { admission.queue.interval = value / 1000 }
        if let value = number(queue, "critical_reserve", queuePath, in: 0...10) { admission.queue.criticalReserve = value }
    }

    mutating func readLimit(_ raw: JSONValue?, _ path: String, _ defaults: ConcurrencyLimitPolicy) -> ConcurrencyLimitPolicy {
        var policy = defaults
        let limit = object(raw, path, allowed: ["initial", "min", "max", "tolerance", "min_queue_delay_ms"])
        if let value = number(limit, "initial", path, in: 1...1_000_000) { policy.initialLimit = value }
        if let value = number(limit, "min", path, in: 1...1_000_000) { policy.minimumLimit = value }
        if let value = number(limit, "max", path, in: 1...1_000_000) { policy.maximumLimit = value }
        if let value = number(limit, "tolerance", path, in: 1...100) { policy.tolerance = value }
        if let value = number(limit, "min_queue_delay_ms", path, in: 0...600_000) { policy.minimumQueueDelay = value / 1000 }
        if policy.minimumLimit > policy.maximumLimit { fail(path, "min must not exceed max") }
        policy.initialLimit = min(max(policy.initialLimit, policy.minimumLimit), policy.maximumLimit)
        return policy
    }

    /// `process:` — an upstream server Lifeline runs itself.
    mutating func readProcess(_ raw: JSONValue?, _ path: String) -> ProcessConfig? {
        let fields = object(raw, path, allowed: [
            "command", "arguments", "environment", "working_directory", "health_path", "health_interval_ms", "health_timeout_ms",
            "start_timeout_s", "stop_grace_s", "restart_backoff", "stable_after_s", "log_file"])
        let command = string(fields, "command", path) ?? ""
        if command.isEmpty { fail(join(path, "command"), "required (the executable to run)") }
        var process = ProcessConfig(command: command)
        if let rawArguments = fields["arguments"], !rawArguments.isNull {
            if let list = rawArguments.arrayValue {
                for (index, item) in list.enumerated() {
                    let itemPath = "\(path).arguments[\(index)]"
                    if let text = item.stringValue { process.arguments.append(substitute(text, itemPath)) }
                    else if case .number = item { process.arguments.append(JSONCoding.encodeString(item)) }
                    else { fail(itemPath, "expected a string, got \(item.typeName)") }
                }
            } else {
                fail(join(path, "arguments"), "expected a list, got \(rawArguments.typeName)")
            }
        }
        if fields["environment"] != nil {
            let environmentPath = join(path, "environment")
            let variables = object(fields["environment"], environmentPath, allowed: Set(fields["environment"]?.objectValue?.keys.map { $0 } ?? []))
            for name in variables.keys.sorted() {
                if name.isEmpty || name.contains("=") { fail(join(environmentPath, name), "not a valid environment variable name"); continue }
                if let value = string(variables, name, environmentPath) { process.environment[name] = value }
            }
        }
        if let directory = string(fields, "working_directory", path) {
            if directory.isEmpty { fail(join(path, "working_directory"), "must not be empty") } else { process.workingDirectory = directory }
        }
        if let health = string(fields, "health_path", path) {
            if health.hasPrefix("/") { process.healthPath = health } else { fail(join(path, "health_path"), "must begin with /, got '\(health)'") }
        }
        if let value = integer(fields, "health_interval_ms", path, in: 10...60_000) { process.healthIntervalMilliseconds = value }
        if let value = integer(fields, "health_timeout_ms", path, in: 1...60_000) { process.healthTimeoutMilliseconds = value }
        if let value = number(fields, "start_timeout_s", path, in: 0.1...3600) { process.restart.startTimeout = value }
        if let value = number(fields, "stop_grace_s", path, in: 0...600) { process.stopGraceSeconds = value }
        if let value = number(fields, "stable_after_s", path, in: 0...86_400) { process.restart.stableAfter = value }
        let backoffPath = join(path, "restart_backoff")
        let backoff = object(fields["restart_backoff"], backoffPath, allowed: ["base_ms", "max_ms"])
        if let value = number(backoff, "base_ms", backoffPath, in: 0...600_000) { process.restart.backoffBase = value / 1000 }
        if let value = number(backoff, "max_ms", backoffPath, in: 0...3_600_000) { process.restart.backoffMaximum = value / 1000 }
        if process.restart.backoffBase > process.restart.backoffMaximum { fail(backoffPath, "base_ms must not exceed max_ms") }
        if let file = string(fields, "log_file", path) {
            if file.isEmpty { fail(join(path, "log_file"), "must not be empty") } else { process.logFile = file }
        }
        return process
    }

    /// A Bedrock deployment's region and credentials: an access key (with its secret, and a
    /// session token for temporary credentials) or a Bedrock API key in `api_key`. Required
    /// unless the deployment is simulated, which then signs with the simulator's own.
    mutating func readBedrock(_ object: [String: JSONValue], _ path: String, into deployment: inout DeploymentConfig) {
        let simulated = object["simulator"] != nil
        if let region = string(object, "region", path) {
            if !region.isEmpty, region.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) {
                deployment.region = region
            } else {
                fail(join(path, "region"), "not an AWS region (such as us-east-1), got '\(region)'")
            }
        } else if simulated {
            deployment.region = DeploymentConfig.bedrockSimulatorRegion
        } else if object["region"] == nil {
            fail(join(path, "region"), "required for protocol bedrock (the AWS region, such as us-east-1)")
        }
        let accessKey = secret(object, "access_key_id", path)
        let secretKey = secret(object, "secret_access_key", path)
        let token = secret(object, "session_token", path)
        switch (accessKey, secretKey) {
        case (let id?, let key?):
            for (key, value) in [("access_key_id", id), ("secret_access_key", key)] where value.isEmpty {
                let keyPath = join(path, key)
                // An unset ${ENV} variable is reported already, at this path.
                if !issues.contains(where: { $0.path == keyPath }) { fail(keyPath, "must not be empty") }
            }
            deployment.awsCredentials = AWSCredentials(accessKeyID: id, secretAccessKey: key, sessionToken: token?.isEmpty == true ? nil : token)
        case (nil, nil) where object["access_key_id"] == nil && object["secret_access_key"] == nil:
            if token != nil { fail(join(path, "session_token"), "needs access_key_id and secret_access_key") }
            if simulated, object["api_key"] == nil {
                deployment.awsCredentials = DeploymentConfig.bedrockSimulatorCredentials
            } else if object["api_key"] == nil {
                fail(join(path, "access_key_id"), "required for protocol bedrock (with secret_access_key), unless api_key holds a Bedrock API key")
                fail(join(path, "secret_access_key"), "required for protocol bedrock (with access_key_id), unless api_key holds a Bedrock API key")
            }
        case (nil, _) where object["access_key_id"] == nil:
            fail(join(path, "access_key_id"), "required with secret_access_key")
        case (_, nil) where object["secret_access_key"] == nil:
            fail(join(path, "secret_access_key"), "required with access_key_id")
        default:
            break // an unset ${ENV} variable, already reported at its path
        }
    }

    mutating func readDeployment(_ raw: JSONValue, _ path: String) -> DeploymentConfig? {
        let object = object(raw, path, allowed: ["name", "protocol", "base_url", "api_key", "model", "priority", "weight", "timeouts", "simulator",
                                                 "process", "health_check", "rpm", "tpm", "stream_usage", "continuation", "api_version", "deployment",
                                                 "region", "access_key_id", "secret_access_key", "session_token"])
        let name = string(object, "name", path) ?? ""
        if name.isEmpty { fail(join(path, "name"), "required") }
        var wireProtocol = WireProtocol.openai
        if let text = string(object, "protocol", path) {
            if let parsed = WireProtocol(rawValue: text) { wireProtocol = parsed } else {
                fail(join(path, "protocol"), "must be one of \(WireProtocol.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
            }
        }
        var deployment = DeploymentConfig(name: name, protocol: wireProtocol, model: string(object, "model", path) ?? "")
        if deployment.model.isEmpty { fail(join(path, "model"), "required (the upstream's model id)") }
        deployment.apiKey = secret(object, "api_key", path)
        if let priority = integer(object, "priority", path, in: 0...1000) { deployment.priority = priority }
        if let weight = number(object, "weight", path, in: 0...1_000_000) { deployment.weight = weight }
        deployment.requestsPerMinute = integer(object, "rpm", path, in: 1...100_000_000)
        deployment.tokensPerMinute = integer(object, "tpm", path, in: 1...1_000_000_000_000)
        if object["simulator"] != nil {
            let simulator = self.object(object["simulator"], join(path, "simulator"), allowed: ["ttft_ms", "tokens_per_second"])
            var config = SimulatorConfig()
            if let ttft = integer(simulator, "ttft_ms", join(path, "simulator"), in: 0...600_000) { config.ttftMilliseconds = ttft }
            if let rate = number(simulator, "tokens_per_second", join(path, "simulator"), in: 0...1_000_000) { config.tokensPerSecond = rate }
            deployment.simulator = config
        }
        if let usage = string(object, "stream_usage", path) {
            if let parsed = DeploymentConfig.StreamUsage(rawValue: usage) { deployment.streamUsage = parsed }
            else { fail(join(path, "stream_usage"), "must be reported or ask, got '\(usage)'") }
        }
        if let continuation = string(object, "continuation", path) {
            if let parsed = DeploymentConfig.Continuation(rawValue: continuation) { deployment.continuation = parsed }
            else { fail(join(path, "continuation"), "must be prefill or replay, got '\(continuation)'") }
        }
        if object["process"] != nil {
            deployment.process = readProcess(object["process"], join(path, "process"))
            if deployment.simulator != nil { fail(join(path, "process"), "a deployment has a simulator or a process, not both") }
        }
        if wireProtocol == .bedrock {
            readBedrock(object, path, into: &deployment)
        } else if let key = ["region", "access_key_id", "secret_access_key", "session_token"].first(where: { object[$0] != nil }) {
            fail(join(path, key), "only for protocol bedrock")
        }
        if let url = string(object, "base_url", path) {
            if let parsed = URL(string: url), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil {
                deployment.baseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
            } else {
                fail(join(path, "base_url"), "not a URL (expected http:// or https:// with a host), got '\(url)'")
            }
        } else if deployment.simulator != nil {
            // The simulator's own port.
        } else if wireProtocol == .gemini, deployment.process == nil {
            deployment.baseURL = Self.geminiBaseURL
        } else if wireProtocol == .bedrock {
            if let region = deployment.region { deployment.baseURL = DeploymentConfig.bedrockBaseURL(region: region) }
        } else if let process = deployment.process {
            deployment.process?.picksPort = true
            if !(process.arguments + process.environment.values).contains(where: { $0.contains(ProcessConfig.portPlaceholder) }) {
                fail(join(path, "base_url"), "required unless the process is told its port: put \(ProcessConfig.portPlaceholder) in process.arguments or process.environment")
            }
        } else {
            fail(join(path, "base_url"), "required unless the deployment has a simulator or a process block")
        }
        let timeouts = self.object(object["timeouts"], join(path, "timeouts"), allowed: ["connect_ms", "first_token_ms", "idle_ms", "total_ms"])
        let timeoutPath = join(path, "timeouts")
        if let value = integer(timeouts, "connect_ms", timeoutPath, in: 1...600_000) { deployment.timeouts.connectMilliseconds = value }
        if let value = integer(timeouts, "first_token_ms", timeoutPath, in: 1...3_600_000) { deployment.timeouts.firstTokenMilliseconds = value }
        if let value = integer(timeouts, "idle_ms", timeoutPath, in: 1...3_600_000) { deployment.timeouts.idleMilliseconds = value }
        if let value = integer(timeouts, "total_ms", timeoutPath, in: 1...86_400_000) { deployment.timeouts.totalMilliseconds = value }
        if object["health_check"] != nil {
            let checkPath = join(path, "health_check")
            let check = self.object(object["health_check"], checkPath, allowed: ["interval_s", "timeout_ms"])
            var settings = HealthCheckConfig()
            if let value = number(check, "interval_s", checkPath, in: 0.05...3600) { settings.intervalSeconds = value }
            if let value = integer(check, "timeout_ms", checkPath, in: 1...600_000) { settings.timeoutMilliseconds = value }
            deployment.healthCheck = settings
        }
        readProviderFields(object, path, into: &deployment)
        return deployment
    }
}

extension ConfigReader {
    /// Google's Gemini API, the base URL of a `gemini` deployment that names none.
    static let geminiBaseURL = "https://generativelanguage.googleapis.com/v1beta"

    /// The fields of the hosted providers' protocols (Gemini, Azure OpenAI): what goes into their
    /// URLs is checked to be a plain path segment, and their key is required.
    mutating func readProviderFields(_ object: [String: JSONValue], _ path: String, into deployment: inout DeploymentConfig) {
        let segment = { (text: String) in !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) } }
        let apiVersion = string(object, "api_version", path)
        let azureDeployment = string(object, "deployment", path)
        if deployment.protocol != .azureOpenAI {
            if apiVersion != nil { fail(join(path, "api_version"), "only for protocol azure_openai") }
            if azureDeployment != nil { fail(join(path, "deployment"), "only for protocol azure_openai") }
        }
        switch deployment.protocol {
        case .gemini:
            let model = deployment.model.hasPrefix("models/") ? String(deployment.model.dropFirst(7)) : deployment.model
            if !deployment.model.isEmpty, !segment(model) {
                fail(join(path, "model"), "a Gemini model id holds only letters, digits, '-', '_' and '.', got '\(deployment.model)'")
            }
        case .azureOpenAI:
            if let apiVersion {
                if segment(apiVersion) { deployment.apiVersion = apiVersion }
                else { fail(join(path, "api_version"), "expected an Azure API version such as 2024-10-21, or v1, got '\(apiVersion)'") }
            }
            if let azureDeployment {
                if segment(azureDeployment) { deployment.azureDeployment = azureDeployment }
                else { fail(join(path, "deployment"), "an Azure deployment name holds only letters, digits, '-', '_' and '.', got '\(azureDeployment)'") }
            } else if !deployment.model.isEmpty, !segment(deployment.model), deployment.apiVersion != "v1" {
                fail(join(path, "deployment"), "required when model '\(deployment.model)' is not a valid Azure deployment name")
            }
        default:
            return
        }
        if deployment.apiKey == nil, deployment.simulator == nil, object["api_key"] == nil {
            fail(join(path, "api_key"), "required for protocol \(deployment.protocol.rawValue) (write it as ${ENV_VAR})")
        }
    }
}
