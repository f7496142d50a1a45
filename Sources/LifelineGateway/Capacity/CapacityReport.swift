import LifelineCore
import LifelineStore
import LifelineWire

/// `GET /admin/v1/capacity`: the capacity planner's report for the live deployments, from the
/// stored traffic history and what is not yet written.
enum CapacityReport {
    static func build(runtime: GatewayRuntime) async throws -> JSONValue {
        let now = runtime.wallClock()
        let pool = runtime.pool
        var models: [String: [DeploymentLimits]] = [:]
        for name in pool.modelNames {
            guard let group = pool.models[name] else { continue }
            models[name] = zip(group.deployments, group.concurrency).map { deployment, load in
                DeploymentLimits(name: deployment.name, model: name, configuredRequestsPerMinute: deployment.config.requestsPerMinute,
                                 configuredTokensPerMinute: deployment.config.tokensPerMinute, learnedConcurrency: load.limit)
            }
        }
        let since = Int(now) - trafficKeptDays * 86_400
        let history = try await runtime.store.traffic(since: since) + runtime.traffic.unwritten
        let reports = CapacityPlanner.plan(models: models, history: history, now: now)
        return [
            "generated_at": .string(Timestamp.iso8601(now)),
            "history_since": .string(Timestamp.iso8601(Double(history.map(\.minute).min() ?? Int(now)))),
            "models": .array(reports.map(json)),
            "warnings": .array(reports.flatMap(\.warnings).map(JSONValue.string)),
        ]
    }

    static func json(_ load: Load) -> JSONValue {
        ["requests_per_minute": .number(rounded(load.requestsPerMinute)), "requests_per_second": .number(rounded(load.requestsPerMinute / 60)),
         "tokens_per_minute": .number(rounded(load.tokensPerMinute)), "concurrency": .number(rounded(load.concurrency))]
    }

    static func json(_ report: CapacityPlanner.ModelReport) -> JSONValue {
        let forecast = report.forecast
        var forecastJSON: [String: JSONValue] = [
            "method": .string(forecast.method), "history_hours": .number(Double(forecast.historyHours)),
            "horizon_hours": .number(Double(forecast.horizonHours)),
            "hours_to_capacity": forecast.hoursToCapacity.map { .number(Double($0)) } ?? .null,
            "earliest_hours": forecast.earliestHours.map { .number(Double($0)) } ?? .null,
            "latest_hours": forecast.latestHours.map { .number(Double($0)) } ?? .null,
        ]
        if let day = forecast.nextDay {
            forecastJSON["next_day_requests_per_minute"] = ["mean": .number(rounded(day.mean)), "low": .number(rounded(max(0, day.low))),
                                                            "high": .number(rounded(day.high))]
        }
        return [
            "model": .string(report.name), "current": json(report.current), "peak": json(report.peak), "capacity": json(report.capacity),
            "headroom": report.headroom.map { .number(rounded($0)) } ?? .null,
            "binding": report.bindingDimension.map(JSONValue.string) ?? .null,
            "survives_largest_failure": report.survivesLargestFailure.map(JSONValue.bool) ?? .null,
            "forecast": .object(forecastJSON), "warnings": .array(report.warnings.map(JSONValue.string)),
            "deployments": .array(report.deployments.map { deployment in
                [
                    "deployment": .string(deployment.name), "current": json(deployment.current), "peak": json(deployment.peak),
                    "capacity": json(deployment.capacity),
                    "capacity_known": ["requests_per_minute": .bool(deployment.capacityKnown.requests),
                                       "tokens_per_minute": .bool(deployment.capacityKnown.tokens)],
                    "learned_concurrency_limit": .number(deployment.capacity.concurrency),
                    "mean_latency_s": deployment.meanLatencySeconds.map { .number(rounded($0)) } ?? .null,
                    "rate_limited_share": .number(rounded(deployment.rateLimitedShare)),
                ]
            }),
        ]
    }

    static func rounded(_ value: Double) -> Double { value.isFinite ? (value * 1000).rounded() / 1000 : 0 }
}
