/// Statuspage's incident statuses.
public enum IncidentStatus: String, Sendable, CaseIterable {
    case investigating, identified, monitoring, resolved
}

/// Statuspage's impacts, least to most severe.
public enum IncidentImpact: String, Sendable, CaseIterable, Comparable {
    case none, minor, major, critical

    var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (lhs: IncidentImpact, rhs: IncidentImpact) -> Bool { lhs.rank < rhs.rank }
}

/// One message in an incident's timeline, with the components it was about then.
public struct IncidentUpdate: Sendable, Equatable {
    public var id: String
    public var incidentID: String
    public var status: IncidentStatus
    public var body: String
    /// Wall-clock seconds.
    public var createdAt: Double
    /// Component name → status at the time of the update.
    public var affected: [String: ComponentStatus]

    public init(id: String, incidentID: String, status: IncidentStatus, body: String, createdAt: Double,
                affected: [String: ComponentStatus] = [:])
    {
        self.id = id
        self.incidentID = incidentID
        self.status = status
        self.body = body
        self.createdAt = createdAt
        self.affected = affected
    }
}

/// An incident as the page shows it: opened automatically from traffic, or by an operator.
public struct Incident: Sendable, Equatable {
    public var id: String
    public var name: String
    public var status: IncidentStatus
    public var impact: IncidentImpact
    /// Wall-clock seconds.
    public var createdAt: Double
    public var updatedAt: Double
    public var startedAt: Double
    public var monitoringAt: Double?
    public var resolvedAt: Double?
    /// Component names affected at any time during the incident.
    public var components: [String]
    /// Opened by the tracker rather than an operator.
    public var automatic: Bool
    /// Drafts (approval mode) are not public until published.
    public var published: Bool
    /// Newest last.
    public var updates: [IncidentUpdate]
    /// What Lifeline measured while the incident lasted, for its postmortem.
    public var evidence = IncidentEvidence()
    /// The postmortem: drafted when the incident resolves, edited by operators, public once published.
    public var postmortemBody: String?
    public var postmortemUpdatedAt: Double?
    public var postmortemPublishedAt: Double?

    public init(id: String, name: String, status: IncidentStatus, impact: IncidentImpact, createdAt: Double,
                components: [String], automatic: Bool, published: Bool, updates: [IncidentUpdate] = [])
    {
        self.id = id
        self.name = name
        self.status = status
        self.impact = impact
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.startedAt = createdAt
        self.components = components
        self.automatic = automatic
        self.published = published
        self.updates = updates
    }

    public var isResolved: Bool { status == .resolved }

    /// Adds an update and moves the incident to its status, keeping the timestamps Statuspage keeps.
    public mutating func add(status: IncidentStatus, body: String, at now: Double, affected: [String: ComponentStatus] = [:]) {
        let update = IncidentUpdate(id: StableID.make("\(id):update:\(updates.count)"), incidentID: id, status: status, body: body,
                                    createdAt: now, affected: affected)
        updates.append(update)
        self.status = status
        updatedAt = now
        for name in affected.keys.sorted() where !components.contains(name) { components.append(name) }
        if status == .monitoring, monitoringAt == nil { monitoringAt = now }
        if status == .resolved { resolvedAt = now } else { resolvedAt = nil }
    }
}

/// Statuspage's maintenance statuses.
public enum MaintenanceStatus: String, Sendable, CaseIterable {
    case scheduled
    case inProgress = "in_progress"
    case verifying
    case completed
}

/// Planned work on deployments: announced ahead, drains them while it lasts.
public struct Maintenance: Sendable, Equatable {
    public var id: String
    public var name: String
    public var message: String
    public var deployments: [String]
    /// Component names shown under maintenance while it is in progress.
    public var components: [String]
    public var scheduledFor: Double
    public var scheduledUntil: Double
    public var status: MaintenanceStatus
    public var createdAt: Double
    public var updatedAt: Double
    public var startedAt: Double?
    public var completedAt: Double?
    /// Newest last.
    public var updates: [MaintenanceUpdate]

    public init(id: String, name: String, message: String, deployments: [String], components: [String], scheduledFor: Double,
                scheduledUntil: Double, createdAt: Double)
    {
        self.id = id
        self.name = name
        self.message = message
        self.deployments = deployments
        self.components = components
        self.scheduledFor = scheduledFor
        self.scheduledUntil = scheduledUntil
        status = .scheduled
        self.createdAt = createdAt
        updatedAt = createdAt
        updates = [MaintenanceUpdate(id: StableID.make("\(id):update:0"), status: .scheduled, body: message, createdAt: createdAt)]
    }

    /// What the schedule calls for at `now`, or nil when the status is already right.
    /// A completed maintenance stays completed, even if its window is edited later.
    public func transition(at now: Double) -> MaintenanceStatus? {
        switch status {
        case .completed: return nil
        case .scheduled where now >= scheduledUntil: return .completed
        case .scheduled where now >= scheduledFor: return .inProgress
        case .inProgress, .verifying: return now >= scheduledUntil ? .completed : nil
        case .scheduled: return nil
        }
    }

    public mutating func move(to next: MaintenanceStatus, body: String, at now: Double) {
        status = next
        updatedAt = now
        if next == .inProgress { startedAt = now }
        if next == .completed { completedAt = now }
        updates.append(MaintenanceUpdate(id: StableID.make("\(id):update:\(updates.count)"), status: next, body: body, createdAt: now))
    }

    public var isActive: Bool { status == .inProgress || status == .verifying }
}

/// One message in a maintenance's timeline.
public struct MaintenanceUpdate: Sendable, Equatable {
    public var id: String
    public var status: MaintenanceStatus
    public var body: String
    public var createdAt: Double

    public init(id: String, status: MaintenanceStatus, body: String, createdAt: Double) {
        self.id = id
        self.status = status
        self.body = body
        self.createdAt = createdAt
    }
}
