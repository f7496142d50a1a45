import Foundation
import LifelineCore
import LifelineWire

/// One episode of a burn-rate alert, from firing to resolution, as operators and receivers see it.
public struct AlertRecord: Sendable, Equatable {
    /// The episode: the alert's name and when it started, so a later episode is a new id.
    public var id: String
    /// `slo:rule`, e.g. `chat-default:availability:burn-1h`.
    public var alert: String
    public var slo: String
    public var model: String
    /// `availability` or `latency`.
    public var sli: String
    public var severity: AlertSeverity
    public var rule: String
    /// The rule's windows by their unscaled names, e.g. `1h` and `5m`.
    public var longWindow: String
    public var shortWindow: String
    public var threshold: Double
    public var target: Double
    public var periodDays: Double
    public var latencyThresholdMilliseconds: Double?
    /// Wall-clock seconds since 1970.
    public var startedAt: Double
    public var resolvedAt: Double?
    /// Latest burn rates while firing; at resolution once resolved.
    public var longBurn: Double
    public var shortBurn: Double
    /// The highest long-window burn rate seen while firing.
    public var peakBurn: Double
    /// Set for a deployment alert (no SLO, no burn rate): the deployment whose upstream refuses
    /// Lifeline in a way traffic will not fix, and the status it answers.
    public var deployment: String?
    public var problemStatus: Int?

    public var isFiring: Bool { resolvedAt == nil }
    public var state: String { isFiring ? "firing" : "resolved" }

    init(alert status: SLOEvaluator.AlertStatus, objective: ServiceLevelObjective, startedAt: Double) {
        id = "\(status.id)@\(Int64((startedAt * 1000).rounded()))"
        alert = status.id
        slo = objective.name
        model = objective.model
        sli = objective.kind.name
        if case .latency(let threshold) = objective.kind { latencyThresholdMilliseconds = threshold * 1000 }
        severity = status.rule.severity
        rule = status.rule.name
        longWindow = status.windowNames.long
        shortWindow = status.windowNames.short
        threshold = status.rule.threshold
        target = objective.target
        periodDays = objective.periodDays
        self.startedAt = startedAt
        longBurn = status.longBurn
        shortBurn = status.shortBurn
        peakBurn = status.longBurn
    }

    /// A deployment alert: `deployment:<name>:<problem>`, page severity, firing since the problem began.
    init(deployment name: String, model: String, problem: DeploymentProblem.Kind, status: Int, startedAt: Double) {
        alert = "deployment:\(name):\(problem.rawValue)"
        id = "\(alert)@\(Int64((startedAt * 1000).rounded()))"
        slo = ""
        self.model = model
        sli = problem.rawValue
        severity = .page
        rule = problem.rawValue
        longWindow = ""
        shortWindow = ""
        threshold = 0
        target = 0
        periodDays = 0
        self.startedAt = startedAt
        longBurn = 0
        shortBurn = 0
        peakBurn = 0
        deployment = name
        problemStatus = status
    }

    /// The Alertmanager/Prometheus alert name, matching the shipped rules.
    public var alertName: String {
        switch (deployment, sli) {
        case (_?, DeploymentProblem.Kind.credentialsRejected.rawValue): "LifelineUpstreamCredentialsRejected"
        case (_?, _): "LifelineUpstreamNotFound"
        case (nil, "latency"): "LifelineLatencyBudgetBurn"
        case (nil, _): "LifelineAvailabilityBudgetBurn"
        }
    }

    /// One sentence for humans: what burns, how fast, against which promise.
    public var summary: String {
        if let deployment {
            let kind = DeploymentProblem.Kind(rawValue: sli) ?? .credentialsRejected
            let status = problemStatus.map { " (HTTP \($0))" } ?? ""
            if isFiring {
                return "\(kind.advice(deployment: deployment).prefix(1).uppercased() + kind.advice(deployment: deployment).dropFirst())\(status). "
                    + "Lifeline fails over to \(model)'s other deployments; traffic will not fix this."
            }
            return "Deployment '\(deployment)' answers again after \(Self.duration((resolvedAt ?? startedAt) - startedAt))."
        }
        let what = sli == "latency"
            ? "\(model) latency (first token within \(Self.number(latencyThresholdMilliseconds ?? 0)) ms)"
            : "\(model) availability"
        let promise = "target \(Self.percent(target)) over \(Self.number(periodDays)) days"
        if isFiring {
            return "\(what) is burning its error budget \(Self.number(longBurn))× too fast "
                + "(\(longWindow): \(Self.number(longBurn)), \(shortWindow): \(Self.number(shortBurn)); "
                + "\(severity.rawValue) at \(Self.number(threshold))); \(promise)."
        }
        let lasted = Self.duration((resolvedAt ?? startedAt) - startedAt)
        return "\(what) burn rate is back under \(Self.number(threshold)) "
            + "(\(longWindow): \(Self.number(longBurn)), \(shortWindow): \(Self.number(shortBurn))) after \(lasted); "
            + "peak \(Self.number(peakBurn)); \(promise)."
    }

    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id), "alert": .string(alert), "slo": .string(slo), "model": .string(model), "sli": .string(sli),
            "severity": .string(severity.rawValue), "state": .string(state), "rule": .string(rule),
            "since": .string(Timestamp.iso8601(startedAt)), "until": resolvedAt.map { .string(Timestamp.iso8601($0)) } ?? .null,
            "threshold": .number(Self.rounded(threshold)), "target": .number(target), "period_days": .number(periodDays),
            "windows": ["long": .string(longWindow), "short": .string(shortWindow)],
            "burn_rates": burnRatesJSON,
            "peak_burn_rate": .number(Self.rounded(peakBurn)),
            "summary": .string(summary),
        ]
        if let latencyThresholdMilliseconds { object["threshold_ms"] = .number(latencyThresholdMilliseconds) }
        if let deployment {
            // No SLO behind it: the deployment and what it answered instead of burn rates.
            for key in ["slo", "threshold", "target", "period_days", "windows", "burn_rates", "peak_burn_rate"] { object[key] = nil }
            object["deployment"] = .string(deployment)
            object["status"] = problemStatus.map { .number(Double($0)) } ?? .null
        }
        return .object(object)
    }

    /// `{long window: burn, short window: burn}`; empty for a deployment alert, which has no windows.
    var burnRatesJSON: JSONValue {
        guard deployment == nil else { return [:] }
        return .object([longWindow: .number(Self.rounded(longBurn)), shortWindow: .number(Self.rounded(shortBurn))])
    }

    static func rounded(_ value: Double) -> Double { (value * 1_000_000).rounded() / 1_000_000 }

    static func number(_ value: Double) -> String {
        if value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
        return String(format: value >= 100 ? "%.0f" : "%.1f", value)
    }

    static func percent(_ share: Double) -> String {
        var text = String(format: "%.3f", share * 100)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text + " %"
    }

    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return "\(whole / 60)m \(whole % 60)s" }
        return "\(whole / 3600)h \((whole % 3600) / 60)m"
    }
}

/// Wall-clock times as operators read them.
enum Timestamp {
    /// `2025-01-31T12:34:56.789Z`.
    static func iso8601(_ epochSeconds: Double) -> String {
        JSONLogHandler.timestamp(Date(timeIntervalSince1970: epochSeconds))
    }
}
