import Foundation
import Hummingbird
import LifelineCore
import LifelineWire
import NIOCore

/// Refuses admin requests without the operator's bearer token.
struct AdminAuthMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let token: AdminToken

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let header = request.headers[.authorization] ?? ""
        guard header.hasPrefix("Bearer "), token.matches(String(header.dropFirst(7))) else {
            var response = adminError(401, "A valid admin token is required (Authorization: Bearer …).")
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        return try await next(request, context)
    }
}

func adminError(_ status: Int, _ message: String, param: String? = nil) -> Response {
    jsonResponse(.init(code: status), ErrorBody.openAI(message: message, type: ErrorBody.openAIType(status: status), param: param))
}

/// `/admin/v1/…`: deployments (list, drain, undrain), drill faults, config reload, answer cache purge, alerts, notification deliveries.
enum AdminRoutes {
    static func add(to router: Router<GatewayRequestContext>, runtime: GatewayRuntime, token: AdminToken, reload: @escaping @Sendable () async -> Response) {
        let admin = router.group("/admin/v1").add(middleware: AdminAuthMiddleware(token: token))

        admin.get("/deployments") { _, _ in
            jsonResponse(.ok, ["data": .array(runtime.pool.deployments.map { describe($0, runtime: runtime) })])
        }
        admin.post("/deployments/{name}/drain") { _, context in setDrained(true, context, runtime) }
        admin.post("/deployments/{name}/undrain") { _, context in setDrained(false, context, runtime) }

        admin.get("/faults") { _, _ in jsonResponse(.ok, ["data": .array(runtime.faults.list().map(\.json))]) }
        admin.post("/faults") { request, _ in
            do throws(GatewayError) {
                let body = try await readJSON(request, limit: 64 * 1024)
                let known = Set(runtime.pool.deployments.map(\.name))
                let fault: DrillFault
                do throws(RequestError) { fault = try DrillFault.parse(body, knownDeployments: known) } catch { throw GatewayError(error) }
                let added = runtime.faults.add(fault)
                runtime.logger.notice("drill fault injected", metadata: [
                    "id": .string(added.id), "deployment": .string(added.deployment), "kind": .string(added.kind.rawValue)])
                return jsonResponse(.created, added.json)
            } catch {
                return error.response(for: .openai)
            }
        }
        admin.delete("/faults/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard runtime.faults.remove(id: id) else { return adminError(404, "No active fault has id '\(id)'.", param: "id") }
            runtime.logger.notice("drill fault cleared", metadata: ["id": .string(id)])
            return jsonResponse(.ok, ["id": .string(id), "deleted": true])
        }
        admin.delete("/faults") { _, _ in
            runtime.faults.removeAll()
            return jsonResponse(.ok, ["deleted": true])
        }
        admin.post("/config/reload") { _, _ in await reload() }
        admin.delete("/cache") { request, _ in await purgeCache(request, runtime) }
        KeyRoutes.add(to: admin, runtime: runtime)
        StatusAdminRoutes.add(to: admin, runtime: runtime)

        admin.get("/alerts") { _, _ in jsonResponse(.ok, runtime.deploymentAlerts.merged(into: runtime.slo.json)) }
        admin.get("/capacity") { _, _ in
            do {
                return jsonResponse(.ok, try await CapacityReport.build(runtime: runtime))
            } catch {
                return adminError(503, "The traffic history could not be read from the store: \(error)")
            }
        }
        admin.get("/notifications") { _, _ in
            jsonResponse(.ok, ["data": .array(runtime.notifier.deliveries.map(\.json))])
        }
    }

    /// `DELETE /admin/v1/cache[?model=M]`: drops cached answers (they hold conversation text).
    static func purgeCache(_ request: Request, _ runtime: GatewayRuntime) async -> Response {
        let model = request.uri.queryParameters.get("model")
        if let model, runtime.answerCaches.policy(for: model) == nil {
            let cached = runtime.config.models.filter { $0.cache != nil }.map(\.name)
            return adminError(404, "No model named '\(model)' has a cache (cached models: \(cached.isEmpty ? "none" : cached.joined(separator: ", "))).",
                              param: "model")
        }
        let purged = runtime.answerCaches.purge(model: model)
        // The store's rows go too, whether or not the model keeps new entries there now.
        let stored: Int
        do {
            stored = try await runtime.answerCaches.purgeStored(model: model)
        } catch {
            runtime.logger.error("answer cache purge failed in the store", metadata: ["model": .string(model ?? "*"), "error": .string("\(error)")])
            return adminError(503, "Purged \(purged) cached answers from memory, but the store did not answer; its cached answers are still there. Retry.")
        }
        runtime.logger.notice("answer cache purged", metadata: ["model": .string(model ?? "*"), "entries": .stringConvertible(purged),
                                                                "stored": .stringConvertible(stored)])
        return jsonResponse(.ok, ["purged": .number(Double(purged)), "stored": .number(Double(stored)), "model": model.map { .string($0) } ?? .null])
    }

    static func setDrained(_ drained: Bool, _ context: GatewayRequestContext, _ runtime: GatewayRuntime) -> Response {
        let name = context.parameters.get("name") ?? ""
        guard let deployment = runtime.pool.deployment(named: name) else {
            return adminError(404, "No deployment is named '\(name)'.", param: "name")
        }
        deployment.setDrained(drained)
        runtime.logger.notice(drained ? "deployment drained" : "deployment undrained", metadata: ["deployment": .string(name)])
        return jsonResponse(.ok, describe(deployment, runtime: runtime))
    }

    /// One deployment as operators see it: a single `state` word plus the details behind it.
    static func describe(_ deployment: Deployment, runtime: GatewayRuntime) -> JSONValue {
        let faults = runtime.faults.list().filter { $0.deployment == deployment.name }
        var breaker: JSONValue = ["state": "closed", "ejections": 0]
        var state = "healthy"
        if let group = runtime.pool.group(of: deployment) {
            let health = group.breakerState(deployment)
            switch health.state {
            case .closed: breaker = ["state": "closed", "ejections": .number(Double(health.ejections))]
            case .open(let until):
                state = "ejected"
                breaker = ["state": "open", "ejections": .number(Double(health.ejections)),
                           "ejected_for_s": .number((until - health.now) * 1000 .rounded() / 1000)]
            case .halfOpen:
                state = "half_open"
                breaker = ["state": "half_open", "ejections": .number(Double(health.ejections))]
            }
            if health.coolingUntil > health.now, state == "healthy" { state = "cooling" }
        }
        if !faults.isEmpty, state == "healthy" { state = "faulted" }
        // A managed process that is not running takes no traffic whatever its breaker says.
        if let process = deployment.process, !process.acceptsTraffic { state = process.stateName }
        if deployment.isDrained { state = "draining" }
        return [
            "name": .string(deployment.name), "model": .string(deployment.model), "protocol": .string(deployment.config.protocol.rawValue),
            "base_url": .string(deployment.config.baseURL), "upstream_model": .string(deployment.config.model),
            "priority": .number(Double(deployment.config.priority)), "weight": .number(deployment.config.weight),
            "state": .string(state), "drained": .bool(deployment.isDrained), "breaker": breaker,
            "faults": .array(faults.map { .string($0.id) }), "simulated": .bool(deployment.config.simulator != nil),
            "process": deployment.process?.json ?? .null,
            "problem": deployment.problems.problem.map { problemJSON($0, runtime: runtime) } ?? .null,
        ]
    }

    /// A refusal traffic will not fix, with wall-clock times (the log keeps monotonic ones).
    static func problemJSON(_ problem: DeploymentProblem, runtime: GatewayRuntime) -> JSONValue {
        let offset = runtime.wallClock() - runtime.clock()
        return [
            "kind": .string(problem.kind.rawValue), "status": .number(Double(problem.status)),
            "summary": .string(problem.kind.headline), "count": .number(Double(problem.count)),
            "since": .string(Timestamp.iso8601(problem.since + offset)), "last_at": .string(Timestamp.iso8601(problem.lastAt + offset)),
        ]
    }
}
