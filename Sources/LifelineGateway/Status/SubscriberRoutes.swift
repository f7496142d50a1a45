import Foundation
import HTTPTypes
import Hummingbird
import LifelineCore
import LifelineWire

/// `POST /api/v2/subscribers` and `DELETE /api/v2/subscribers/{id}` (public: a registration waits
/// for an operator's approval unless it carries the admin token; removal takes the subscriber's
/// own token), and `/admin/v1/subscribers` to list, approve and remove them.
enum SubscriberRoutes {
    static func add(to router: Router<GatewayRequestContext>, runtime: GatewayRuntime, adminToken: AdminToken) {
        let registry = runtime.subscribers
        router.post("/api/v2/subscribers") { request, context in
            do throws(GatewayError) {
                let body = try await JSONContentType.readBody(request, limit: 16 * 1024, metrics: runtime.metrics)
                let asOperator = bearer(request).map(adminToken.matches) ?? false
                // Statuspage nests the fields under "subscriber"; a flat body works too.
                let fields = body["subscriber"]?.objectValue ?? body.objectValue
                guard let fields else { return adminError(400, "The body must be a JSON object.", param: "body") }
                let allowed: Set<String> = ["endpoint", "components"]
                if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
                    return adminError(400, "Unknown field '\(unknown)'.", param: unknown)
                }
                if let endpoint = fields["endpoint"], endpoint.stringValue == nil {
                    return adminError(400, "'endpoint' must be a string.", param: "endpoint")
                }
                var components: [String]?
                if let value = fields["components"] {
                    guard let list = value.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                        return adminError(400, "'components' must be a list of component names.", param: "components")
                    }
                    components = list.compactMap(\.stringValue)
                }
                do throws(SubscriberRegistry.Failure) {
                    let (subscriber, token) = try await registry.register(
                        endpoint: fields["endpoint"]?.stringValue, components: components, knownComponents: runtime.status.componentNames,
                        approved: asOperator, source: context.clientAddress,
                        allowPrivateTargets: runtime.config.notifications.allowPrivateTargets, at: runtime.wallClock())
                    runtime.logger.notice("status subscriber registered", metadata: [
                        "id": .string(subscriber.id), "state": .string(subscriber.state.rawValue)])
                    var answer = (asOperator ? SubscriberRegistry.adminJSON(subscriber) : SubscriberRegistry.publicJSON(subscriber)).objectValue ?? [:]
                    answer["token"] = .string(token)
                    answer["message"] = .string(subscriber.state == .pending
                        ? "Registered; an operator must approve it before updates are sent. Keep the token: it removes the subscription."
                        : "Registered and active. Keep the token: it removes the subscription.")
                    return jsonResponse(.created, .object(answer))
                } catch {
                    if case .pendingLimit = error {
                        runtime.metrics.requestRefused(reason: .subscriberPendingLimit)
                        runtime.logger.notice("status subscriber registration refused: too many await approval",
                                              metadata: ["client": .string(context.clientAddress ?? "unknown")])
                    }
                    return failure(error)
                }
            } catch {
                return error.response(for: .openai)
            }
        }
        router.delete("/api/v2/subscribers/{id}") { request, context in
            let id = context.parameters.get("id") ?? ""
            let presented = bearer(request)
            let asOperator = presented.map(adminToken.matches) ?? false
            do throws(SubscriberRegistry.Failure) {
                try await registry.remove(id: id, token: presented, asOperator: asOperator)
                runtime.logger.notice("status subscriber removed", metadata: ["id": .string(id)])
                return jsonResponse(.ok, ["id": .string(id), "deleted": true])
            } catch {
                return failure(error)
            }
        }

        let admin = router.group("/admin/v1/subscribers").add(middleware: AdminAuthMiddleware(token: adminToken))
        admin.get { _, _ in jsonResponse(.ok, ["data": .array(registry.all.map(SubscriberRegistry.adminJSON))]) }
        admin.post("/{id}/approve") { _, context in
            let id = context.parameters.get("id") ?? ""
            do throws(SubscriberRegistry.Failure) {
                let subscriber = try await registry.approve(id: id, at: runtime.wallClock())
                runtime.logger.notice("status subscriber approved", metadata: ["id": .string(id)])
                return jsonResponse(.ok, SubscriberRegistry.adminJSON(subscriber))
            } catch {
                return failure(error)
            }
        }
        admin.delete("/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            do throws(SubscriberRegistry.Failure) {
                try await registry.remove(id: id, token: nil, asOperator: true)
                return jsonResponse(.ok, ["id": .string(id), "deleted": true])
            } catch {
                return failure(error)
            }
        }
    }

    static func bearer(_ request: Request) -> String? {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return nil }
        return String(header.dropFirst(7))
    }

    static func failure(_ error: SubscriberRegistry.Failure) -> Response {
        switch error {
        case .invalid(let message, let param): adminError(400, message, param: param)
        case .notFound(let id): adminError(404, "No subscriber has id '\(id)'.", param: "id")
        case .forbidden: adminError(403, "Removing a subscriber takes its own token (Authorization: Bearer …) or the admin token.")
        case .full: adminError(409, "The page has as many approved subscribers as it takes (\(SubscriberRegistry.maximum)).")
        case .pendingLimit(let perSource):
            perSource
                ? adminError(429, "This address has \(SubscriberRegistry.maximumPendingPerSource) registrations awaiting approval already; an operator must approve or remove them first.")
                : adminError(429, "\(SubscriberRegistry.maximumPending) registrations await approval already; try again after an operator has reviewed them.")
        }
    }
}
