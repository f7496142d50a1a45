import ServiceLifecycle

/// Probes deployments that have a `health_check` block on their interval, so an ejected
/// deployment comes back as soon as it answers, and a dead one is ejected before users find it.
struct HealthProber: Service {
    let runtime: GatewayRuntime

    func run() async throws {
        var due: [String: Double] = [:]
        await withTaskGroup(of: Void.self) { group in
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                let now = runtime.clock()
                let pool = runtime.pool
                for deployment in pool.deployments {
                    guard let check = deployment.config.healthCheck, let model = pool.group(of: deployment) else { continue }
                    guard now >= due[deployment.name, default: 0] else { continue }
                    due[deployment.name] = now + check.intervalSeconds
                    group.addTask {
                        let healthy = await deployment.client.probe(timeoutMilliseconds: check.timeoutMilliseconds)
                        model.reportProbe(deployment, healthy: healthy)
                    }
                }
                // Ticks are short so a new interval or a reload takes effect quickly.
                try? await Task.sleep(for: .milliseconds(50))
            }
            group.cancelAll()
        }
    }
}
