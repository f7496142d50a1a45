import LifelineCore
import LifelineWire

/// The `/api/v2/` documents in Atlassian Statuspage's shape: the same field names, value sets
/// and nesting, so tools that read Statuspage read Lifeline.
struct StatuspageDocuments {
    let snapshot: StatusCenter.Snapshot

    var pageID: String { StableID.make("page:\(snapshot.pageName)") }

    static func time(_ seconds: Double?) -> JSONValue { seconds.map { .string(Timestamp.iso8601($0)) } ?? .null }

    var page: JSONValue {
        ["id": .string(pageID), "name": .string(snapshot.pageName), "url": .string(snapshot.pageURL + "/status"),
         "time_zone": "Etc/UTC", "updated_at": Self.time(snapshot.updatedAt)]
    }

    /// The overall indicator: the worst of component statuses and unresolved incidents' impacts;
    /// `maintenance` when a maintenance is the only thing going on.
    var indicator: (indicator: String, description: String) {
        let worstComponent = snapshot.components.map(\.status).max() ?? .operational
        let worstIncident = snapshot.incidents.filter { !$0.isResolved }.map(\.impact).max() ?? .none
        switch max(worstComponent.impact, worstIncident) {
        case .critical: return ("critical", "Major System Outage")
        case .major: return ("major", "Partial System Outage")
        case .minor: return ("minor", "Partially Degraded Service")
        case .none:
            if snapshot.components.contains(where: { $0.status == .underMaintenance }) { return ("maintenance", "Service Under Maintenance") }
            return ("none", "All Systems Operational")
        }
    }

    var status: JSONValue {
        let (indicator, description) = indicator
        return ["indicator": .string(indicator), "description": .string(description)]
    }

    func component(_ name: String) -> JSONValue? {
        guard let entry = snapshot.components.first(where: { $0.component.name == name }) else { return nil }
        return component(entry)
    }

    func component(_ entry: (component: StatusComponent, status: ComponentStatus, updatedAt: Double)) -> JSONValue {
        ["id": .string(entry.component.id), "name": .string(entry.component.name), "status": .string(entry.status.rawValue),
         "created_at": Self.time(0), "updated_at": Self.time(entry.updatedAt), "position": .number(Double(entry.component.position)),
         "description": .string(entry.component.description), "showcase": true, "start_date": .null, "group_id": .null,
         "page_id": .string(pageID), "group": false, "only_show_if_degraded": false]
    }

    var components: JSONValue { .array(snapshot.components.map(component)) }

    func incident(_ incident: Incident) -> JSONValue {
        let published = incident.postmortemPublishedAt
        var previous: [String: ComponentStatus] = [:]
        let updates: [JSONValue] = incident.updates.map { update in
            let affected: [JSONValue] = update.affected.keys.sorted().map { name in
                let entry: JSONValue = [
                    "code": .string(StableID.make("component:\(name)")), "name": .string(name),
                    "old_status": .string((previous[name] ?? .operational).rawValue), "new_status": .string(update.affected[name]!.rawValue),
                ]
                previous[name] = update.affected[name]
                return entry
            }
            return ["id": .string(update.id), "status": .string(update.status.rawValue), "body": .string(update.body),
                    "incident_id": .string(incident.id), "created_at": Self.time(update.createdAt), "updated_at": Self.time(update.createdAt),
                    "display_at": Self.time(update.createdAt), "affected_components": .array(affected), "deliver_notifications": true,
                    "custom_tweet": .null, "tweet_id": .null]
        }
        return ["id": .string(incident.id), "name": .string(incident.name), "status": .string(incident.status.rawValue),
                "created_at": Self.time(incident.createdAt), "updated_at": Self.time(incident.updatedAt),
                "monitoring_at": Self.time(incident.monitoringAt), "resolved_at": Self.time(incident.resolvedAt),
                "impact": .string(incident.impact.rawValue), "shortlink": .string(snapshot.pageURL + "/status#incident-" + incident.id),
                "started_at": Self.time(incident.startedAt), "page_id": .string(pageID),
                "incident_updates": .array(updates.reversed()), "components": .array(incident.components.compactMap(component)),
                // As Statuspage: the postmortem is public once published, and null before.
                "postmortem_body": published.map { _ in .string(incident.postmortemBody ?? "") } ?? .null,
                "postmortem_body_last_updated_at": published.map { _ in Self.time(incident.postmortemUpdatedAt) } ?? .null,
                "postmortem_published_at": Self.time(published), "postmortem_ignored": false,
                "postmortem_notified_subscribers": .bool(published != nil), "postmortem_notified_twitter": false]
    }

    func maintenance(_ maintenance: Maintenance) -> JSONValue {
        let updates: [JSONValue] = maintenance.updates.map { update in
            ["id": .string(update.id), "status": .string(update.status.rawValue), "body": .string(update.body),
             "incident_id": .string(maintenance.id), "created_at": Self.time(update.createdAt), "updated_at": Self.time(update.createdAt),
             "display_at": Self.time(update.createdAt),
             "affected_components": .array(maintenance.components.map { name in
                 ["code": .string(StableID.make("component:\(name)")), "name": .string(name), "old_status": "operational",
                  "new_status": "under_maintenance"]
             })]
        }
        return ["id": .string(maintenance.id), "name": .string(maintenance.name), "status": .string(maintenance.status.rawValue),
                "created_at": Self.time(maintenance.createdAt), "updated_at": Self.time(maintenance.updatedAt),
                "monitoring_at": .null, "resolved_at": Self.time(maintenance.completedAt), "impact": "maintenance",
                "shortlink": .string(snapshot.pageURL + "/status#maintenance-" + maintenance.id),
                "started_at": Self.time(maintenance.startedAt ?? maintenance.scheduledFor), "page_id": .string(pageID),
                "incident_updates": .array(updates.reversed()), "components": .array(maintenance.components.compactMap(component)),
                "scheduled_for": Self.time(maintenance.scheduledFor), "scheduled_until": Self.time(maintenance.scheduledUntil)]
    }

    var unresolved: [Incident] { snapshot.incidents.filter { !$0.isResolved } }
    var upcoming: [Maintenance] { snapshot.maintenances.filter { $0.status == .scheduled }.sorted { $0.scheduledFor < $1.scheduledFor } }
    var active: [Maintenance] { snapshot.maintenances.filter(\.isActive) }

    var summaryDocument: JSONValue {
        ["page": page, "components": components, "incidents": .array(unresolved.map(incident)),
         "scheduled_maintenances": .array((active + upcoming).map(maintenance)), "status": status]
    }
    var statusDocument: JSONValue { ["page": page, "status": status] }
    var componentsDocument: JSONValue { ["page": page, "components": components] }
    /// The 50 most recent incidents, as Statuspage lists them.
    var incidentsDocument: JSONValue { ["page": page, "incidents": .array(snapshot.incidents.prefix(50).map(incident))] }
    var unresolvedDocument: JSONValue { ["page": page, "incidents": .array(unresolved.map(incident))] }
    var maintenancesDocument: JSONValue { ["page": page, "scheduled_maintenances": .array(snapshot.maintenances.prefix(50).map(maintenance))] }
    var upcomingDocument: JSONValue { ["page": page, "scheduled_maintenances": .array(upcoming.map(maintenance))] }
    var activeDocument: JSONValue { ["page": page, "scheduled_maintenances": .array(active.map(maintenance))] }
}
