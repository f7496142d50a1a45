import ServiceLifecycle

/// Advances the status page every `status.evaluation_interval_s`: component statuses, the
/// automatic incident, maintenance starts and ends, uptime.
struct StatusEvaluator: Service {
    let runtime: GatewayRuntime

    func run() async throws {
        var next = runtime.clock()
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let now = runtime.clock()
            if now >= next {
                runtime.evaluateStatus()
                next = now + runtime.config.status.evaluationIntervalSeconds
            }
            try? await Task.sleep(for: .milliseconds(Int64(min(50, max(1, (next - now) * 1000)))))
        }
    }
}
