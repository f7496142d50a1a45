import Foundation
import LifelineCore
import LifelineStore
import LifelineWire
import Synchronization

/// Webhook subscribers of the status page: registered from the public API (pending until an
/// operator approves them, so the page cannot be made to post to arbitrary addresses) or by an
/// operator (active at once). Each can remove itself with the token it was given.
final class SubscriberRegistry: Sendable {
    /// Approved subscribers: an operator's registration or approval is refused beyond this many.
    static let maximum = 1_000
    /// Public registrations awaiting approval, counted apart from approved ones so that a flood of
    /// them never stands in an operator's way: at most this many in all…
    static let maximumPending = 100
    /// …and this many from one client address (`GatewayRequestContext.clientAddress`).
    static let maximumPendingPerSource = 5

    enum Failure: Error, Equatable {
        case invalid(String, param: String)
        case notFound(String)
        case forbidden
        case full
        /// Too many registrations await approval: from this address (`perSource`) or in all.
        case pendingLimit(perSource: Bool)
    }

    private let subscribers = Mutex<[Subscriber]>([])
    /// Where each pending registration came from, by subscriber id. Kept in memory only: pending
    /// registrations read back from the store count toward `maximumPending` alone.
    private let pendingSources = Mutex<[String: String]>([:])
    private let store: any LifelineStore

    init(store: any LifelineStore) {
        self.store = store
    }

    func load() async throws {
        let saved = try await store.subscribers()
        subscribers.withLock { $0 = saved }
        let pending = Set(saved.filter { $0.state == .pending }.map(\.id))
        pendingSources.withLock { $0 = $0.filter { pending.contains($0.key) } }
    }

    var all: [Subscriber] { subscribers.withLock { $0 } }

    func subscriber(id: String) -> Subscriber? { subscribers.withLock { list in list.first { $0.id == id } } }

    /// Checks the request and adds the subscriber; returns it with the token that removes it (shown once).
    /// A registration that is not `approved` (made without the admin token) is bounded per `source`
    /// address and in all; an approved one only by `maximum`. Without `allowPrivateTargets`, an
    /// endpoint whose host is a loopback or private address (or `localhost`) is refused; names
    /// are checked again when each update is sent.
    func register(endpoint: String?, components: [String]?, knownComponents: [String], approved: Bool, source: String? = nil,
                  allowPrivateTargets: Bool = false,
                  at now: Double) async throws(Failure) -> (Subscriber, token: String)
    {
        guard let endpoint, !endpoint.isEmpty else { throw .invalid("'endpoint' is required: the URL updates are POSTed to.", param: "endpoint") }
        guard endpoint.count <= 2_000, let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty
        else {
            throw .invalid("'endpoint' must be an absolute http or https URL of at most 2000 characters.", param: "endpoint")
        }
        if !allowPrivateTargets, PrivateAddress.literalIsPrivate(host) == true {
            throw .invalid("'endpoint' is a loopback or private address; updates are only sent to public addresses.", param: "endpoint")
        }
        let components = components ?? []
        let known = Set(knownComponents)
        if let unknown = components.first(where: { !known.contains($0) }) {
            throw .invalid("No component is named '\(unknown)' (known: \(knownComponents.joined(separator: ", "))).", param: "components")
        }
        let id = StableID.make("subscriber:\(now):\(UUID().uuidString)")
        if approved {
            guard activeCount < Self.maximum else { throw .full }
        } else {
            try reservePending(id: id, source: source ?? "unknown")
        }
        var random = SystemRandomNumberGenerator()
        let token = "ll-sub-" + (0..<32).map { _ in String(UInt8.random(in: 0...15, using: &random), radix: 16) }.joined()
        let subscriber = Subscriber(id: id, endpoint: endpoint,
                                    tokenHash: KeyRegistry.hash(token), state: approved ? .active : .pending, components: components,
                                    createdAt: now, approvedAt: approved ? now : nil)
        do throws(Failure) {
            try await persist(subscriber)
        } catch {
            _ = pendingSources.withLock { $0.removeValue(forKey: id) }
            throw error
        }
        subscribers.withLock { $0.append(subscriber) }
        return (subscriber, token)
    }

    private var activeCount: Int { subscribers.withLock { $0.count { $0.state != .pending } } }

    /// Counts the registration against its source's and the overall pending bound, or refuses it.
    private func reservePending(id: String, source: String) throws(Failure) {
        let unattributed = subscribers.withLock { $0.filter { $0.state == .pending }.map(\.id) }
        let refusal: Failure? = pendingSources.withLock { sources in
            let pendingInAll = sources.count + unattributed.count { sources[$0] == nil }
            guard pendingInAll < Self.maximumPending else { return .pendingLimit(perSource: false) }
            guard sources.values.count(where: { $0 == source }) < Self.maximumPendingPerSource else { return .pendingLimit(perSource: true) }
            sources[id] = source
            return nil
        }
        if let refusal { throw refusal }
    }

    /// Activates a pending subscriber: updates from now on are sent to it.
    func approve(id: String, at now: Double) async throws(Failure) -> Subscriber {
        guard var subscriber = subscriber(id: id) else { throw .notFound(id) }
        guard subscriber.state == .pending else { return subscriber }
        guard activeCount < Self.maximum else { throw .full }
        subscriber.state = .active
        subscriber.approvedAt = now
        try await persist(subscriber)
        let approved = subscriber
        _ = pendingSources.withLock { $0.removeValue(forKey: id) }
        subscribers.withLock { list in
            if let index = list.firstIndex(where: { $0.id == id }) { list[index] = approved }
        }
        return approved
    }

    /// Removes a subscriber: an operator may remove any, a subscriber itself with its token.
    func remove(id: String, token: String?, asOperator: Bool) async throws(Failure) {
        guard let subscriber = subscriber(id: id) else { throw .notFound(id) }
        if !asOperator {
            // Hashed and compared as API keys are.
            guard let token, KeyRegistry.constantTimeEqual(KeyRegistry.hash(token), subscriber.tokenHash) else { throw .forbidden }
        }
        do {
            _ = try await store.removeSubscriber(id: id)
        } catch {
            throw .invalid("The subscriber could not be removed: \(error)", param: "id")
        }
        subscribers.withLock { $0.removeAll { $0.id == id } }
        _ = pendingSources.withLock { $0.removeValue(forKey: id) }
    }

    private func persist(_ subscriber: Subscriber) async throws(Failure) {
        do {
            try await store.save(subscriber)
        } catch {
            throw .invalid("The subscriber could not be saved: \(error)", param: "endpoint")
        }
    }

    /// The public view: no endpoint beyond its host (the full URL may carry a credential).
    static func publicJSON(_ subscriber: Subscriber) -> JSONValue {
        [
            "id": .string(subscriber.id), "mode": "webhook", "state": .string(subscriber.state.rawValue),
            "endpoint_host": .string(URL(string: subscriber.endpoint)?.host ?? ""),
            "components": .array(subscriber.components.map(JSONValue.string)),
            "created_at": .string(Timestamp.iso8601(subscriber.createdAt)),
            "approved_at": subscriber.approvedAt.map { .string(Timestamp.iso8601($0)) } ?? .null,
        ]
    }

    /// What operators see: the endpoint in full, to judge it before approving.
    static func adminJSON(_ subscriber: Subscriber) -> JSONValue {
        var object = publicJSON(subscriber).objectValue ?? [:]
        object["endpoint"] = .string(subscriber.endpoint)
        return .object(object)
    }
}

/// Turns what subscribers are owed into deliveries: Statuspage's webhook shape
/// (`meta`, `page`, `incident` with its `incident_updates`), one POST per update.
enum SubscriberNotifications {
    /// Updates older than this are not sent to a subscriber that missed them (a restart long after).
    static let horizonSeconds = 7 * 86_400.0

    static func dispatch(subscribers: SubscriberRegistry, notifier: Notifier, documents: StatuspageDocuments,
                         notifications: NotificationsConfig, now: Double)
    {
        let snapshot = documents.snapshot
        let due = SubscriberDispatch.due(subscribers: subscribers.all, incidents: snapshot.incidents, maintenances: snapshot.maintenances,
                                         since: now - horizonSeconds, sent: notifier.wasSent)
        for event in due {
            guard let subscriber = subscribers.subscriber(id: event.subscriberID) else { continue }
            let subject: JSONValue
            let name: String
            switch event.subject {
            case .incident:
                guard let incident = snapshot.incidents.first(where: { $0.id == event.subjectID }) else { continue }
                subject = documents.incident(incident)
                name = incident.name
            case .maintenance:
                guard let maintenance = snapshot.maintenances.first(where: { $0.id == event.subjectID }) else { continue }
                subject = documents.maintenance(maintenance)
                name = maintenance.name
            }
            let (indicator, description) = documents.indicator
            let body: JSONValue = [
                "meta": [
                    "unsubscribe": .string(snapshot.pageURL + "/api/v2/subscribers/" + subscriber.id),
                    "documentation": .string(snapshot.pageURL + "/status"),
                    "generated_at": .string(Timestamp.iso8601(now)),
                ],
                "page": ["id": .string(documents.pageID), "status_indicator": .string(indicator), "status_description": .string(description)],
                "incident": subject,
                "lifeline": ["subject": .string(event.subject.rawValue), "event": .string(event.event)],
            ]
            let delivery = NotificationDelivery(id: Notifier.newID(), kind: .subscriber, target: subscriber.id, format: "statuspage",
                                                subjectID: event.subjectID, subject: name, event: event.event, status: .pending, createdAt: now)
            notifier.send(delivery, key: event.key, body: JSONCoding.encode(body), to: target(subscriber, notifications))
        }
    }

    static func target(_ subscriber: Subscriber, _ notifications: NotificationsConfig) -> WebhookTarget {
        WebhookTarget(url: subscriber.endpoint, notifications: notifications)
    }
}
