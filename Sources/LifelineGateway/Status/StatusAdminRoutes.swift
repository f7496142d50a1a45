import Foundation
import HTTPTypes
import Hummingbird
import LifelineCore
import LifelineWire

/// `/admin/v1/incidents` and `/admin/v1/maintenances`: what operators say on the status page.
enum StatusAdminRoutes {
    static func add(to admin: RouterGroup<GatewayRequestContext>, runtime: GatewayRuntime) {
        let center = runtime.status
        admin.get("/incidents") { _, _ in
            let documents = StatuspageDocuments(snapshot: runtime.statusSnapshot())
            return jsonResponse(.ok, ["data": .array(center.allIncidents.map { describe($0, documents) })])
        }
        admin.post("/incidents") { request, _ in
            await handle(request, runtime) { (body: JSONValue) throws(StatusCenter.Failure) -> (HTTPResponse.Status, Incident) in
                let fields = try IncidentFields.parse(body, creating: true)
                let incident = try center.createIncident(
                    name: fields.name!, body: fields.body ?? StatusCenter.defaultBody(fields.status ?? .investigating),
                    status: fields.status ?? .investigating, impact: fields.impact, components: fields.components ?? [:],
                    published: fields.publish ?? true, at: runtime.wallClock())
                runtime.logger.notice("incident created", metadata: ["id": .string(incident.id)])
                return (.created, incident)
            }
        }
        let update: @Sendable (Request, GatewayRequestContext) async throws -> Response = { request, context in
            let id = context.parameters.get("id") ?? ""
            return await handle(request, runtime) { (body: JSONValue) throws(StatusCenter.Failure) -> (HTTPResponse.Status, Incident) in
                let fields = try IncidentFields.parse(body, creating: false)
                return (.ok, try center.updateIncident(id: id, status: fields.status, body: fields.body, name: fields.name, impact: fields.impact,
                                                       components: fields.components, publish: fields.publish, at: runtime.wallClock()))
            }
        }
        admin.patch("/incidents/{id}", use: update)
        admin.post("/incidents/{id}/updates", use: update)
        admin.post("/incidents/{id}/resolve") { request, context in
            let id = context.parameters.get("id") ?? ""
            return await handle(request, runtime) { (body: JSONValue) throws(StatusCenter.Failure) -> (HTTPResponse.Status, Incident) in
                let fields = try IncidentFields.parse(body, creating: false)
                return (.ok, try center.updateIncident(id: id, status: .resolved, body: fields.body ?? StatusCenter.defaultBody(.resolved),
                                                       name: nil, impact: nil, components: nil, publish: nil, at: runtime.wallClock()))
            }
        }
        admin.post("/incidents/{id}/publish") { request, context in
            let id = context.parameters.get("id") ?? ""
            return await handle(request, runtime) { (_: JSONValue) throws(StatusCenter.Failure) -> (HTTPResponse.Status, Incident) in
                (.ok, try center.updateIncident(id: id, status: nil, body: nil, name: nil, impact: nil, components: nil, publish: true,
                                                at: runtime.wallClock()))
            }
        }

        admin.get("/incidents/{id}/postmortem") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let incident = center.incident(id: id) else { return failure(.notFound(id)) }
            return jsonResponse(.ok, postmortem(incident))
        }
        // Edit the text (`body`), write it anew from what was recorded (`redraft`), or publish it (`publish`).
        let changePostmortem: @Sendable (Request, GatewayRequestContext) async throws -> Response = { request, context in
            let id = context.parameters.get("id") ?? ""
            do throws(GatewayError) {
                let body = try await readJSON(request, limit: 128 * 1024)
                guard let object = body.objectValue else { return adminError(400, "The body must be a JSON object.", param: "body") }
                let allowed: Set<String> = ["body", "redraft", "publish"]
                if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
                    return adminError(400, "Unknown field '\(unknown)'.", param: unknown)
                }
                var text: String?
                if let value = object["body"] {
                    guard let string = value.stringValue, !string.isEmpty, string.count <= 100_000 else {
                        return adminError(400, "'body' must be a string of 1 to 100000 characters.", param: "body")
                    }
                    text = string
                }
                for flag in ["redraft", "publish"] where object[flag] != nil && object[flag]?.boolValue == nil {
                    return adminError(400, "'\(flag)' must be true or false.", param: flag)
                }
                do throws(StatusCenter.Failure) {
                    let incident = try center.changePostmortem(id: id, body: text, redraft: object["redraft"]?.boolValue ?? false,
                                                               publish: object["publish"]?.boolValue ?? false, at: runtime.wallClock())
                    runtime.evaluateStatus()
                    return jsonResponse(.ok, postmortem(incident))
                } catch {
                    return failure(error)
                }
            } catch {
                return error.response(for: .openai)
            }
        }
        admin.put("/incidents/{id}/postmortem", use: changePostmortem)
        admin.patch("/incidents/{id}/postmortem", use: changePostmortem)
        admin.post("/incidents/{id}/postmortem/publish") { _, context in
            let id = context.parameters.get("id") ?? ""
            do throws(StatusCenter.Failure) {
                let incident = try center.changePostmortem(id: id, publish: true, at: runtime.wallClock())
                runtime.logger.notice("postmortem published", metadata: ["id": .string(id)])
                runtime.evaluateStatus()
                return jsonResponse(.ok, postmortem(incident))
            } catch {
                return failure(error)
            }
        }

        admin.get("/maintenances") { _, _ in
            let documents = StatuspageDocuments(snapshot: runtime.statusSnapshot())
            return jsonResponse(.ok, ["data": .array(center.allMaintenances.map { describe($0, documents) })])
        }
        admin.post("/maintenances") { request, _ in
            do throws(GatewayError) {
                let body = try await readJSON(request, limit: 64 * 1024)
                let object = body.objectValue ?? [:]
                let allowed: Set<String> = ["name", "message", "deployments", "scheduled_for", "scheduled_until"]
                if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
                    return adminError(400, "Unknown field '\(unknown)'.", param: unknown)
                }
                let deployments = object["deployments"]?.arrayValue?.compactMap(\.stringValue) ?? []
                guard let from = object["scheduled_for"]?.stringValue.flatMap(parseTime) else {
                    return adminError(400, "'scheduled_for' must be an ISO-8601 time such as 2027-01-31T00:00:00Z.", param: "scheduled_for")
                }
                guard let until = object["scheduled_until"]?.stringValue.flatMap(parseTime) else {
                    return adminError(400, "'scheduled_until' must be an ISO-8601 time such as 2027-01-31T01:00:00Z.", param: "scheduled_until")
                }
                let message = object["message"]?.stringValue ?? "Planned maintenance of \(deployments.joined(separator: ", "))."
                let name = object["name"]?.stringValue ?? "Planned maintenance"
                do throws(StatusCenter.Failure) {
                    let maintenance = try center.scheduleMaintenance(name: name, message: message, deployments: deployments, from: from,
                                                                     until: until, pool: runtime.pool, at: runtime.wallClock())
                    runtime.logger.notice("maintenance scheduled", metadata: ["id": .string(maintenance.id)])
                    return jsonResponse(.created, describe(maintenance, StatuspageDocuments(snapshot: runtime.statusSnapshot())))
                } catch {
                    return failure(error)
                }
            } catch {
                return error.response(for: .openai)
            }
        }
        admin.post("/maintenances/{id}/complete") { _, context in
            let id = context.parameters.get("id") ?? ""
            do throws(StatusCenter.Failure) {
                let maintenance = try center.completeMaintenance(id: id, pool: runtime.pool, at: runtime.wallClock())
                runtime.evaluateStatus()
                let current = center.allMaintenances.first { $0.id == maintenance.id } ?? maintenance
                return jsonResponse(.ok, describe(current, StatuspageDocuments(snapshot: runtime.statusSnapshot())))
            } catch {
                return failure(error)
            }
        }
    }

    static func parseTime(_ text: String) -> Double? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date.timeIntervalSince1970 }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)?.timeIntervalSince1970
    }

    /// The Statuspage shape plus what only operators see.
    static func describe(_ incident: Incident, _ documents: StatuspageDocuments) -> JSONValue {
        var object = documents.incident(incident).objectValue ?? [:]
        object["published"] = .bool(incident.published)
        object["automatic"] = .bool(incident.automatic)
        // Operators see the draft too.
        object["postmortem_body"] = incident.postmortemBody.map(JSONValue.string) ?? .null
        object["postmortem_body_last_updated_at"] = incident.postmortemUpdatedAt.map { .string(Timestamp.iso8601($0)) } ?? .null
        return .object(object)
    }

    /// An incident's postmortem as operators see it: the draft too, and the figures it was drafted from.
    static func postmortem(_ incident: Incident) -> JSONValue {
        let evidence = incident.evidence
        return [
            "incident_id": .string(incident.id), "incident": .string(incident.name), "status": .string(incident.status.rawValue),
            "body": incident.postmortemBody.map(JSONValue.string) ?? .null,
            "updated_at": incident.postmortemUpdatedAt.map { .string(Timestamp.iso8601($0)) } ?? .null,
            "published_at": incident.postmortemPublishedAt.map { .string(Timestamp.iso8601($0)) } ?? .null,
            "published": .bool(incident.postmortemPublishedAt != nil),
            "impact": [
                "requests": .number(Double(evidence.requests)), "failed_requests": .number(Double(evidence.failedRequests)),
                "slow_requests": .number(Double(evidence.slowRequests)), "callers_affected": .number(Double(evidence.callers.count)),
                "tokens_lost": .number(Double(evidence.tokensLost)), "worst_error_share": .number(evidence.worstErrorShare),
                "worst_slow_share": .number(evidence.worstSlowShare),
                "failovers": .object(evidence.failovers.mapValues { .number(Double($0)) }),
                "ejections": .object(evidence.ejections.mapValues { .number(Double($0)) }),
                "upstream_failures": .object(evidence.upstreamFailures.mapValues { .object($0.mapValues { .number(Double($0)) }) }),
                "deployments": .array(evidence.involvedDeployments.map(JSONValue.string)),
            ],
        ]
    }

    static func describe(_ maintenance: Maintenance, _ documents: StatuspageDocuments) -> JSONValue {
        var object = documents.maintenance(maintenance).objectValue ?? [:]
        object["deployments"] = .array(maintenance.deployments.map(JSONValue.string))
        object["message"] = .string(maintenance.message)
        return .object(object)
    }

    static func failure(_ error: StatusCenter.Failure) -> Response {
        switch error {
        case .notFound(let id): adminError(404, "Nothing has id '\(id)'.", param: "id")
        case .invalid(let message, let param): adminError(400, message, param: param)
        }
    }

    /// Reads the body (empty means `{}`), runs `work`, answers the incident in the admin shape or the error.
    private static func handle(_ request: Request, _ runtime: GatewayRuntime,
                               _ work: (JSONValue) throws(StatusCenter.Failure) -> (HTTPResponse.Status, Incident)) async -> Response
    {
        let json: JSONValue
        do {
            let bytes = try await request.body.collect(upTo: 64 * 1024)
            json = bytes.readableBytes == 0 ? [:] : try JSONCoding.decode(bytes.readableBytesView)
        } catch {
            return adminError(400, "The body must be JSON within 64 KiB: \(error)")
        }
        do throws(StatusCenter.Failure) {
            let (status, incident) = try work(json)
            runtime.evaluateStatus()
            return jsonResponse(status, describe(incident, StatuspageDocuments(snapshot: runtime.statusSnapshot())))
        } catch {
            return failure(error)
        }
    }
}

/// The fields of an incident request; names the first wrong one.
struct IncidentFields {
    var name: String?
    var body: String?
    var status: IncidentStatus?
    var impact: IncidentImpact?
    var components: [String: ComponentStatus]?
    var publish: Bool?

    static func parse(_ json: JSONValue, creating: Bool) throws(StatusCenter.Failure) -> IncidentFields {
        guard let object = json.objectValue else { throw .invalid("The body must be a JSON object.", param: "body") }
        let allowed: Set<String> = ["name", "body", "message", "status", "impact", "components", "published"]
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) { throw .invalid("Unknown field '\(unknown)'.", param: unknown) }
        var fields = IncidentFields()
        if let value = object["name"] {
            guard let text = value.stringValue, !text.isEmpty, text.count <= 200 else {
                throw .invalid("'name' must be a string of 1 to 200 characters.", param: "name")
            }
            fields.name = text
        } else if creating {
            throw .invalid("'name' is required.", param: "name")
        }
        if let value = object["body"] ?? object["message"] {
            guard let text = value.stringValue, !text.isEmpty, text.count <= 5000 else {
                throw .invalid("'body' must be a string of 1 to 5000 characters.", param: "body")
            }
            fields.body = text
        }
        if let value = object["status"] {
            guard let status = value.stringValue.flatMap(IncidentStatus.init(rawValue:)) else {
                throw .invalid("'status' must be investigating, identified, monitoring or resolved.", param: "status")
            }
            fields.status = status
        }
        if let value = object["impact"] {
            guard let impact = value.stringValue.flatMap(IncidentImpact.init(rawValue:)) else {
                throw .invalid("'impact' must be none, minor, major or critical.", param: "impact")
            }
            fields.impact = impact
        }
        if let value = object["components"] {
            guard let map = value.objectValue else {
                throw .invalid("'components' must map component names to statuses.", param: "components")
            }
            var components: [String: ComponentStatus] = [:]
            for (name, status) in map {
                guard let parsed = status.stringValue.flatMap(ComponentStatus.init(rawValue:)) else {
                    throw .invalid("components.\(name) must be operational, degraded_performance, partial_outage, major_outage or under_maintenance.",
                                   param: "components.\(name)")
                }
                components[name] = parsed
            }
            fields.components = components
        }
        if let value = object["published"] {
            guard let flag = value.boolValue else { throw .invalid("'published' must be true or false.", param: "published") }
            fields.publish = flag
        }
        return fields
    }
}
