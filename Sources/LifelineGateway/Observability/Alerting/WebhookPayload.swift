import Foundation
import LifelineWire

/// The body (and URL) of one notification in each webhook format.
enum WebhookPayload {
    /// How long Alertmanager should keep a firing alert open without hearing from Lifeline
    /// again: each transition is sent once, so the resolved notification is what closes it.
    static let alertmanagerHoldSeconds = 24 * 3600.0

    static func request(for webhook: WebhookConfig, change: AlertChange, alertsURL: String, now: Double) -> (url: String, body: JSONValue) {
        (url(for: webhook), body(for: webhook, change: change, alertsURL: alertsURL, now: now))
    }

    /// Where a webhook's notifications are POSTed: Alertmanager's alerts endpoint under its URL.
    static func url(for webhook: WebhookConfig) -> String {
        webhook.format == .alertmanager ? webhook.url + "/api/v2/alerts" : webhook.url
    }

    static func body(for webhook: WebhookConfig, change: AlertChange, alertsURL: String, now: Double) -> JSONValue {
        switch webhook.format {
        case .slack: slack(change, alertsURL: alertsURL)
        case .json: json(change, alertsURL: alertsURL)
        case .alertmanager: alertmanager(change, alertsURL: alertsURL, now: now)
        }
    }

    static func title(_ change: AlertChange) -> String {
        let alert = change.alert
        if let deployment = alert.deployment {
            let what = alert.sli == DeploymentProblem.Kind.credentialsRejected.rawValue ? "rejects Lifeline's credentials" : "answers not found"
            return "[\(change.transition.rawValue.uppercased())] \(alert.severity.rawValue): deployment \(deployment) \(what)"
        }
        return "[\(change.transition.rawValue.uppercased())] \(alert.severity.rawValue): \(alert.model) \(alert.sli) error budget burn (\(alert.longWindow)/\(alert.shortWindow))"
    }

    /// Slack incoming webhook: `text` for notifications and old clients, `blocks` for the message.
    static func slack(_ change: AlertChange, alertsURL: String) -> JSONValue {
        let alert = change.alert
        let burns = "*Burn rate \(alert.longWindow)*\n\(AlertRecord.number(alert.longBurn))"
        let shortBurns = "*Burn rate \(alert.shortWindow)*\n\(AlertRecord.number(alert.shortBurn))"
        var fields: [JSONValue] = alert.deployment.map { deployment in [
            ["type": "mrkdwn", "text": .string("*Deployment*\n`\(deployment)`")],
            ["type": "mrkdwn", "text": .string("*Upstream status*\n\(alert.problemStatus.map(String.init) ?? "-")")],
            ["type": "mrkdwn", "text": .string("*Since*\n\(Timestamp.iso8601(alert.startedAt))")],
        ] } ?? [
            ["type": "mrkdwn", "text": .string(burns)],
            ["type": "mrkdwn", "text": .string(shortBurns)],
            ["type": "mrkdwn", "text": .string("*Threshold*\n\(AlertRecord.number(alert.threshold))")],
            ["type": "mrkdwn", "text": .string("*SLO*\n`\(alert.slo)` \(AlertRecord.percent(alert.target))")],
            ["type": "mrkdwn", "text": .string("*Since*\n\(Timestamp.iso8601(alert.startedAt))")],
        ]
        if let resolvedAt = alert.resolvedAt {
            fields.append(["type": "mrkdwn", "text": .string("*Resolved*\n\(Timestamp.iso8601(resolvedAt))")])
        }
        let header = String(title(change).prefix(150))
        return [
            "text": .string("\(header): \(alert.summary)"),
            "blocks": [
                ["type": "header", "text": ["type": "plain_text", "text": .string(header)]],
                ["type": "section", "text": ["type": "mrkdwn", "text": .string(alert.summary)]],
                ["type": "section", "fields": .array(fields)],
                ["type": "context", "elements": [["type": "mrkdwn", "text": .string("Lifeline · `\(alert.alert)` · <\(alertsURL)|alerts>")]]],
            ],
        ]
    }

    /// Lifeline's own format: everything a receiver needs, flat and stable.
    static func json(_ change: AlertChange, alertsURL: String) -> JSONValue {
        let alert = change.alert
        var body: [String: JSONValue] = [
            "version": 1, "id": .string(alert.id), "alert": .string(alert.alert), "severity": .string(alert.severity.rawValue),
            "state": .string(change.transition.rawValue), "slo": .string(alert.slo), "model": .string(alert.model),
            "sli": .string(alert.sli), "target": .number(alert.target), "threshold": .number(AlertRecord.rounded(alert.threshold)),
            "burn_rates": alert.burnRatesJSON,
            "windows": ["long": .string(alert.longWindow), "short": .string(alert.shortWindow)],
            "started_at": .string(Timestamp.iso8601(alert.startedAt)),
            "resolved_at": alert.resolvedAt.map { .string(Timestamp.iso8601($0)) } ?? .null,
            "summary": .string(alert.summary), "url": .string(alertsURL),
        ]
        if let threshold = alert.latencyThresholdMilliseconds { body["threshold_ms"] = .number(threshold) }
        if let deployment = alert.deployment {
            for key in ["slo", "target", "threshold", "burn_rates", "windows"] { body[key] = nil }
            body["deployment"] = .string(deployment)
            body["status"] = alert.problemStatus.map { .number(Double($0)) } ?? .null
        }
        return .object(body)
    }

    /// Alertmanager's `POST /api/v2/alerts` body; names and labels match the shipped Prometheus rules.
    static func alertmanager(_ change: AlertChange, alertsURL: String, now: Double) -> JSONValue {
        let alert = change.alert
        let endsAt = alert.resolvedAt ?? max(now, alert.startedAt) + alertmanagerHoldSeconds
        if let deployment = alert.deployment {
            return [[
                "labels": ["alertname": .string(alert.alertName), "severity": .string(alert.severity.rawValue), "model": .string(alert.model),
                           "deployment": .string(deployment), "service": "lifeline"],
                "annotations": ["summary": .string(title(change)), "description": .string(alert.summary)],
                "startsAt": .string(Timestamp.iso8601(alert.startedAt)),
                "endsAt": .string(Timestamp.iso8601(endsAt)),
                "generatorURL": .string(alertsURL),
            ]]
        }
        return [[
            "labels": [
                "alertname": .string(alert.alertName),
                "severity": .string(alert.severity.rawValue), "model": .string(alert.model), "slo": .string(alert.slo),
                "long_window": .string(alert.longWindow), "short_window": .string(alert.shortWindow), "service": "lifeline",
            ],
            "annotations": [
                "summary": .string(title(change)),
                "description": .string(alert.summary),
                "burn_rate_\(alert.longWindow)": .string(AlertRecord.number(alert.longBurn)),
                "burn_rate_\(alert.shortWindow)": .string(AlertRecord.number(alert.shortBurn)),
            ],
            "startsAt": .string(Timestamp.iso8601(alert.startedAt)),
            "endsAt": .string(Timestamp.iso8601(endsAt)),
            "generatorURL": .string(alertsURL),
        ]]
    }
}
