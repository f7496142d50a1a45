import ServiceLifecycle

/// Evaluates SLO burn rates and alerts every `alerting.evaluation_interval_s`, like a
/// Prometheus rule group, and once more on the way out so the gauges are current.
struct AlertEvaluator: Service {
    let runtime: GatewayRuntime

    func run() async throws {
        var next = runtime.clock()
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let now = runtime.clock()
            if now >= next {
                runtime.evaluateAlerts()
                next = now + runtime.config.alerting.evaluationIntervalSeconds
            }
            // Short ticks so a shutdown or a reloaded interval takes effect quickly.
            try? await Task.sleep(for: .milliseconds(Int64(min(50, max(1, (next - now) * 1000)))))
        }
    }
}
