/// A webhook that hears about incidents and maintenance, as Statuspage's webhook subscribers do.
public struct Subscriber: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Registered from the public API; an operator must approve it before anything is sent.
        case pending
        case active
    }

    public var id: String
    /// Where updates are POSTed. Treated as a credential: shown only to operators.
    public var endpoint: String
    /// SHA-256 (hex) of the token that lets the subscriber remove itself.
    public var tokenHash: String
    public var state: State
    /// Component names it wants to hear about; empty means all.
    public var components: [String]
    public var createdAt: Double
    /// Updates from this moment on are sent; nothing older is replayed.
    public var approvedAt: Double?

    public init(id: String, endpoint: String, tokenHash: String, state: State, components: [String], createdAt: Double,
                approvedAt: Double? = nil)
    {
        self.id = id
        self.endpoint = endpoint
        self.tokenHash = tokenHash
        self.state = state
        self.components = components
        self.createdAt = createdAt
        self.approvedAt = approvedAt
    }

    func wants(_ components: [String]) -> Bool {
        self.components.isEmpty || !Set(self.components).isDisjoint(with: components)
    }
}

/// One thing a subscriber is owed: an incident update, a published postmortem, or a maintenance update.
public struct SubscriberEvent: Sendable, Equatable {
    public enum Subject: String, Sendable {
        case incident, maintenance
    }

    public var subscriberID: String
    public var subject: Subject
    public var subjectID: String
    /// The update's id, or `postmortem`.
    public var event: String
    public var at: Double

    /// Unique per subscriber and event: what the delivery log deduplicates on.
    public var key: String { "subscriber|\(subscriberID)|\(subjectID)|\(event)" }
}

/// Which events active subscribers have not been sent yet. Pure; the caller says what was sent.
/// Each update of a published incident or of a maintenance, and each published postmortem, made
/// after the subscriber was approved and about a component it follows, is owed exactly once.
public enum SubscriberDispatch {
    /// - Parameter since: nothing older is owed (a subscriber that missed updates long ago gets no backlog).
    public static func due(subscribers: [Subscriber], incidents: [Incident], maintenances: [Maintenance], since: Double = -.infinity,
                           sent: (String) -> Bool) -> [SubscriberEvent]
    {
        var events: [SubscriberEvent] = []
        for subscriber in subscribers where subscriber.state == .active {
            guard let approvedAt = subscriber.approvedAt else { continue }
            let from = max(approvedAt, since)
            func owe(_ subject: SubscriberEvent.Subject, _ id: String, _ event: String, _ at: Double) {
                guard at >= from else { return }
                let due = SubscriberEvent(subscriberID: subscriber.id, subject: subject, subjectID: id, event: event, at: at)
                if !sent(due.key) { events.append(due) }
            }
            for incident in incidents where incident.published && subscriber.wants(incident.components) {
                for update in incident.updates { owe(.incident, incident.id, update.id, update.createdAt) }
                if let published = incident.postmortemPublishedAt { owe(.incident, incident.id, "postmortem", published) }
            }
            for maintenance in maintenances where subscriber.wants(maintenance.components) {
                for update in maintenance.updates { owe(.maintenance, maintenance.id, update.id, update.createdAt) }
            }
        }
        return events.sorted { ($0.at, $0.key) < ($1.at, $1.key) }
    }
}
