import ServiceLifecycle

/// Runs `evaluate` every `interval()` seconds, like a Prometheus rule group, until shutdown.
/// The interval is read on each round, so a reloaded config takes effect at once.
///
/// It drives SLO burn rates and alerts (`alerting.evaluation_interval_s`) and the status page:
/// component statuses, automatic incidents, maintenance starts and ends, uptime
/// (`status.evaluation_interval_s`).
struct PeriodicEvaluator: Service {
    let clock: @Sendable () -> Double
    let interval: @Sendable () -> Double
    let evaluate: @Sendable () -> Void

    func run() async throws {
        var next = clock()
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let now = clock()
            if now >= next {
                evaluate()
                next = now + interval()
            }
            // Short ticks so a shutdown or a reloaded interval takes effect quickly.
            try? await Task.sleep(for: .milliseconds(Int64(min(50, max(1, (next - now) * 1000)))))
        }
    }
}
