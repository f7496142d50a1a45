import AsyncHTTPClient
import Foundation
import LifelineCore
import LifelineStore
import LifelineWire
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Decides whether a notification is held back, e.g. during planned maintenance of the
/// deployments behind the alert's model. Lifeline has no maintenance windows yet, so the only
/// policy is `NoSuppression`; this is the seam where one will plug in.
public protocol SuppressionPolicy: Sendable {
    func suppresses(_ alert: AlertRecord, deployments: [String], at now: Double) -> Bool
}

public struct NoSuppression: SuppressionPolicy {
    public init() {}
    public func suppresses(_ alert: AlertRecord, deployments: [String], at now: Double) -> Bool { false }
}

/// One webhook delivery, as the delivery log shows it: an alert notification or an update to a
/// status subscriber.
public struct NotificationDelivery: Sendable, Equatable {
    public enum Status: String, Sendable {
        case pending, delivered, failed, suppressed
    }

    public enum Kind: String, Sendable {
        case alert, subscriber
    }

    public var id: String
    public var kind: Kind
    /// The webhook's name, or the subscriber's id.
    public var target: String
    public var format: String
    /// The alert episode, or the incident or maintenance.
    public var subjectID: String
    public var subject: String
    /// `firing`/`resolved`, or the update's id.
    public var event: String
    public var status: Status
    public var attempts = 0
    public var responseStatus: Int?
    public var error: String?
    public var createdAt: Double
    public var finishedAt: Double?

    public var alertID: String { subjectID }
    public var alert: String { subject }
    public var transition: AlertChange.Transition? { kind == .alert ? AlertChange.Transition(rawValue: event) : nil }

    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id), "kind": .string(kind.rawValue), "target": .string(target), "format": .string(format),
            "subject_id": .string(subjectID), "subject": .string(subject), "event": .string(event), "status": .string(status.rawValue),
            "attempts": .number(Double(attempts)), "response_status": responseStatus.map { .number(Double($0)) } ?? .null,
            "error": error.map { .string($0) } ?? .null, "created_at": .string(Timestamp.iso8601(createdAt)),
            "finished_at": finishedAt.map { .string(Timestamp.iso8601($0)) } ?? .null,
        ]
        if kind == .alert {
            object["alert_id"] = .string(subjectID)
            object["alert"] = .string(subject)
            object["transition"] = .string(event)
        }
        return .object(object)
    }

    init(id: String, kind: Kind, target: String, format: String, subjectID: String, subject: String, event: String, status: Status,
         createdAt: Double, finishedAt: Double? = nil)
    {
        self.id = id
        self.kind = kind
        self.target = target
        self.format = format
        self.subjectID = subjectID
        self.subject = subject
        self.event = event
        self.status = status
        self.createdAt = createdAt
        self.finishedAt = finishedAt
    }

    init(_ stored: StoredDelivery) {
        self.init(id: stored.id, kind: Kind(rawValue: stored.kind) ?? .alert, target: stored.target, format: stored.format,
                  subjectID: stored.subjectID, subject: stored.subject, event: stored.event,
                  status: Status(rawValue: stored.status) ?? .failed, createdAt: stored.createdAt, finishedAt: stored.finishedAt)
        attempts = stored.attempts
        responseStatus = stored.responseStatus
        error = stored.error
    }

    func stored(key: String, body: String) -> StoredDelivery {
        StoredDelivery(id: id, key: key, kind: kind.rawValue, target: target, format: format, subjectID: subjectID, subject: subject,
                       event: event, status: status.rawValue, attempts: attempts, responseStatus: responseStatus, error: error, body: body,
                       createdAt: createdAt, finishedAt: finishedAt)
    }
}

/// Where and how one delivery is sent.
public struct WebhookTarget: Sendable {
    public var url: String
    public var headers: [String: String] = [:]
    public var timeoutMilliseconds = 5_000
    public var maxAttempts = 5
    public var backoff = Backoff(base: 0.5, maximum: 30)
    /// `notifications.allow_private_targets`: whether loopback and private addresses may be sent to.
    public var allowPrivateTargets = false

    /// A URL with the retry and target policy of the `notifications` block.
    init(url: String, headers: [String: String] = [:], timeoutMilliseconds: Int = 5_000, notifications: NotificationsConfig) {
        self.url = url
        self.headers = headers
        self.timeoutMilliseconds = timeoutMilliseconds
        maxAttempts = notifications.maxAttempts
        backoff = notifications.backoff
        allowPrivateTargets = notifications.allowPrivateTargets
    }

    /// A configured webhook: its URL in its format, its headers and timeout.
    init(_ webhook: WebhookConfig, notifications: NotificationsConfig) {
        self.init(url: WebhookPayload.url(for: webhook), headers: webhook.headers, timeoutMilliseconds: webhook.timeoutMilliseconds,
                  notifications: notifications)
    }
}

/// Sends alert changes to the configured webhooks, and status updates to subscribers.
///
/// Each delivery has a key — (alert episode, transition, target) or (subscriber, update) — and
/// is sent at most once per key: a delivered-set remembers what was queued, and with a store the
/// set and the log outlive restarts, so repeated evaluations, a reload or a restart never notify
/// twice. A delivery queued but not yet tried when the process stopped is sent after the restart;
/// one that was being sent is marked failed rather than risk a duplicate. A failed attempt
/// (connection error, timeout, 408, 429, 5xx) is retried with full-jitter exponential backoff up
/// to `max_attempts`; any other answer is final, a redirect included (redirects are never followed).
/// Each attempt resolves the target and connects only to the address it checked (see
/// `WebhookDestination`); a private or loopback target is refused unless
/// `notifications.allow_private_targets`. Webhook URLs are credentials and appear in no log line
/// and no API answer: targets are named.
public final class Notifier: Service, Sendable {
    static let deliveriesKept = 200
    static let deliveredKeysKept = 50_000

    struct Job: Sendable {
        var delivery: NotificationDelivery
        var key: String
        var target: WebhookTarget?
        var body: [UInt8]
        /// Already in the store (a delivery resumed after a restart).
        var stored = false
    }

    private struct State {
        var deliveries: [NotificationDelivery] = []
        var delivered: Set<String> = []
        var deliveredOrder: [String] = []
    }

    private let state = Mutex(State())
    private let jobs: AsyncStream<Job>
    private let queue: AsyncStream<Job>.Continuation
    private let metrics: GatewayMetrics
    private let logger: Logger
    private let clock: @Sendable () -> Double
    private let store: (any LifelineStore)?
    public let suppression: any SuppressionPolicy

    public init(metrics: GatewayMetrics, logger: Logger, suppression: any SuppressionPolicy = NoSuppression(),
                store: (any LifelineStore)? = nil, clock: @escaping @Sendable () -> Double)
    {
        (jobs, queue) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
        self.metrics = metrics
        self.logger = logger
        self.suppression = suppression
        self.store = store
        self.clock = clock
    }

    /// Loads what was sent before a restart, or by the leader this instance takes over from;
    /// queues deliveries that were never tried again (where `target` still knows where they go)
    /// and closes those that were cut off mid-send.
    public func restore(target: (NotificationDelivery) -> WebhookTarget?) async {
        guard let store else { return }
        do {
            let keys = try await store.deliveryKeys(limit: Self.deliveredKeysKept)
            let recent = try await store.deliveries(limit: Self.deliveriesKept)
            let pending = try await store.pendingDeliveries()
            // Keys this process queued itself (a leader that took over again) stay with their jobs.
            let known = state.withLock { state in
                let known = state.delivered
                for key in keys.reversed() where state.delivered.insert(key).inserted { state.deliveredOrder.append(key) }
                state.deliveries = recent.reversed().map(NotificationDelivery.init)
                return known
            }
            for row in pending where !known.contains(row.key) {
                var delivery = NotificationDelivery(row)
                if row.attempts == 0, let destination = target(delivery) {
                    queue.yield(Job(delivery: delivery, key: row.key, target: destination, body: Array(row.body.utf8), stored: true))
                    continue
                }
                delivery.status = .failed
                delivery.error = "interrupted by a restart; not sent again, to avoid a duplicate"
                delivery.finishedAt = clock()
                update(delivery.id) { $0 = delivery }
                try await store.update(delivery.stored(key: row.key, body: row.body))
            }
        } catch {
            logger.error("the delivery log could not be loaded", metadata: ["error": .string("\(error)")])
        }
    }

    /// Whether a delivery with this key was already queued or sent.
    public func wasSent(_ key: String) -> Bool { state.withLock { $0.delivered.contains(key) } }

    /// Queues a delivery unless its key was sent before; `target` nil records it as suppressed.
    /// Returns whether it was new.
    @discardableResult
    func send(_ delivery: NotificationDelivery, key: String, body: [UInt8], to target: WebhookTarget?) -> Bool {
        let isNew = state.withLock { state in
            guard state.delivered.insert(key).inserted else { return false }
            state.deliveredOrder.append(key)
            if state.deliveredOrder.count > Self.deliveredKeysKept { state.delivered.remove(state.deliveredOrder.removeFirst()) }
            state.deliveries.append(delivery)
            if state.deliveries.count > Self.deliveriesKept { state.deliveries.removeFirst(state.deliveries.count - Self.deliveriesKept) }
            return true
        }
        guard isNew else { return false }
        queue.yield(Job(delivery: delivery, key: key, target: target, body: body))
        return true
    }

    /// A new delivery id: unique across restarts, ordered by creation within one.
    static func newID() -> String { "ntf_" + String(UInt64.random(in: 0...UInt64.max), radix: 36) }

    /// Queues the change for every target that takes its severity, unless already sent or suppressed.
    public func notify(_ change: AlertChange, config: NotificationsConfig, deployments: [String], alertsURL: String) {
        let now = clock()
        for webhook in config.webhooks where webhook.severities.contains(change.alert.severity) {
            let key = "\(change.alert.id)|\(change.transition.rawValue)|\(webhook.name)"
            guard !wasSent(key) else { continue }
            let suppressed = suppression.suppresses(change.alert, deployments: deployments, at: now)
            let delivery = NotificationDelivery(
                id: Self.newID(), kind: .alert, target: webhook.name, format: webhook.format.rawValue, subjectID: change.alert.id,
                subject: change.alert.alert, event: change.transition.rawValue, status: suppressed ? .suppressed : .pending,
                createdAt: now, finishedAt: suppressed ? now : nil)
            let body = WebhookPayload.body(for: webhook, change: change, alertsURL: alertsURL, now: now)
            let target = WebhookTarget(webhook, notifications: config)
            guard send(delivery, key: key, body: JSONCoding.encode(body), to: suppressed ? nil : target) else { continue }
            if suppressed { metrics.notificationDelivery(target: webhook.name, outcome: "suppressed") }
        }
    }

    /// Recent deliveries, newest first.
    public var deliveries: [NotificationDelivery] { state.withLock { $0.deliveries.reversed() } }

    /// Delivers queued notifications until shutdown; deliveries in flight may finish while the server drains.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            // One target hears its deliveries in the order they were made (an incident's updates
            // must not arrive resolved-first); different targets do not wait for each other.
            var tails: [String: Task<Void, Never>] = [:]
            for await job in jobs.cancelOnGracefulShutdown() {
                let key = "\(job.delivery.kind.rawValue)|\(job.delivery.target)"
                let previous = tails[key]
                let next = Task { await previous?.value; await self.deliver(job) }
                tails[key] = next
                group.addTask { await withTaskCancellationHandler { await next.value } onCancel: { next.cancel() } }
            }
        }
    }

    func deliver(_ job: Job) async {
        let body = String(decoding: job.body, as: UTF8.self)
        // Whether the store has the row, so it can be claimed before the first attempt.
        var logged = job.stored
        if !job.stored, let store {
            // The row goes in before anything is sent: a restart then knows this key was used.
            do {
                guard try await store.insert(job.delivery.stored(key: job.key, body: body)) else {
                    // Already in the log (sent before a restart): never again.
                    state.withLock { $0.deliveries.removeAll { $0.id == job.delivery.id } }
                    return
                }
                logged = true
            } catch {
                logger.warning("delivery could not be logged", metadata: ["error": .string("\(error)")])
            }
        }
        guard let target = job.target else { return }
        var random = SystemRandomNumberGenerator()
        var attempt = 0
        var responseStatus: Int?
        var failure = ""
        while attempt < target.maxAttempts {
            attempt += 1
            if attempt == 1, logged, !(await claim(job)) { return }
            update(job.delivery.id) { $0.attempts = attempt }
            var retryable = true
            do {
                let destination = try await WebhookDestination.resolve(url: target.url, allowPrivate: target.allowPrivateTargets)
                let code = try await post(job.body, to: target, via: destination)
                responseStatus = code
                if (200..<300).contains(code) {
                    await finish(job, status: .delivered, responseStatus: code, error: nil)
                    return
                }
                // A 3xx lands here too: redirects are not followed, and not retried.
                failure = "HTTP \(code)"
                retryable = code >= 500 || code == 429 || code == 408
            } catch let refusal as WebhookDestination.Refusal {
                failure = WebhookDestination.describe(refusal)
                if refusal != .unresolved {
                    // Final: the same URL would be refused again.
                    await finish(job, status: .failed, responseStatus: nil, error: failure, outcome: "refused")
                    return
                }
            } catch {
                // Only the error's kind: its text could quote the (secret) URL.
                failure = Self.describe(error)
            }
            guard retryable, attempt < target.maxAttempts, !Task.isCancelled else { break }
            update(job.delivery.id) { $0.error = failure; $0.responseStatus = responseStatus }
            let delay = target.backoff.delay(beforeRetry: attempt, using: &random)
            try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
        }
        await finish(job, status: .failed, responseStatus: responseStatus, error: failure)
    }

    /// One POST over a client pinned to the checked address; returns the status code.
    private func post(_ body: [UInt8], to target: WebhookTarget, via destination: WebhookDestination) async throws -> Int {
        let client = destination.makeClient()
        do {
            var request = HTTPClientRequest(url: target.url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.headers.add(name: "user-agent", value: "lifeline/\(LifelineVersion.current)")
            for (name, value) in target.headers { request.headers.replaceOrAdd(name: name, value: value) }
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await client.execute(request, timeout: .milliseconds(Int64(target.timeoutMilliseconds)))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            try? await client.shutdown()
            return Int(response.status.code)
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// Takes the delivery in the store before its first attempt. With several instances the one
    /// whose claim succeeds sends it: a new leader resuming what the old one queued, and the old
    /// one if it was only cut off from the database, never both. A shared store that does not
    /// answer leaves the delivery pending there, for whichever instance leads next; one process
    /// owning an SQLite file sends anyway.
    private func claim(_ job: Job) async -> Bool {
        guard let store else { return true }
        for attempt in 0..<3 {
            do {
                guard try await store.claim(deliveryID: job.delivery.id) else {
                    state.withLock { $0.deliveries.removeAll { $0.id == job.delivery.id } }
                    logger.notice("delivery taken by another instance", metadata: ["id": .string(job.delivery.id)])
                    return false
                }
                return true
            } catch {
                if attempt < 2 { try? await Task.sleep(for: .milliseconds(200)) }
            }
        }
        guard store.isShared else { return true }
        update(job.delivery.id) { $0.error = "the store did not answer; left pending for the instance that leads next" }
        logger.warning("delivery left pending: the store did not answer", metadata: ["id": .string(job.delivery.id)])
        return false
    }

    /// Writes the delivery's current state to the store, if there is one.
    private func persist(_ job: Job) async {
        guard let store, let current = state.withLock({ $0.deliveries.last { $0.id == job.delivery.id } }) else { return }
        do {
            try await store.update(current.stored(key: job.key, body: ""))
        } catch {
            logger.warning("delivery could not be logged", metadata: ["error": .string("\(error)")])
        }
    }

    /// `outcome` is the metric's label when it says more than the status (`refused`: a private target).
    private func finish(_ job: Job, status: NotificationDelivery.Status, responseStatus: Int?, error: String?, outcome: String? = nil) async {
        let now = clock()
        var finished: NotificationDelivery?
        update(job.delivery.id) {
            $0.status = status
            $0.responseStatus = responseStatus
            $0.error = error
            $0.finishedAt = now
            finished = $0
        }
        await persist(job)
        // Subscribers share one label value: their number is not bounded by the config.
        metrics.notificationDelivery(target: job.delivery.kind == .subscriber ? "subscribers" : job.delivery.target,
                                     outcome: outcome ?? status.rawValue)
        guard let finished else { return }
        let metadata: Logger.Metadata = [
            "kind": .string(finished.kind.rawValue), "target": .string(finished.target), "subject": .string(finished.subject),
            "event": .string(finished.event), "attempts": .stringConvertible(finished.attempts),
        ]
        if status == .delivered {
            logger.info("notification delivered", metadata: metadata)
        } else if outcome == "refused" {
            // The host only: the rest of the URL (path, query, user info) may be a credential.
            let host = URL(string: job.target?.url ?? "")?.host ?? ""
            logger.warning("notification target refused", metadata: metadata.merging(["error": .string(error ?? ""), "host": .string(host)]) { $1 })
        } else {
            logger.warning("notification failed", metadata: metadata.merging(["error": .string(error ?? "")]) { $1 })
        }
    }

    private func update(_ id: String, _ change: (inout NotificationDelivery) -> Void) {
        state.withLock { state in
            if let index = state.deliveries.lastIndex(where: { $0.id == id }) { change(&state.deliveries[index]) }
        }
    }

    static func describe(_ error: any Error) -> String {
        if let client = error as? HTTPClientError { return "\(client)" }
        if error is CancellationError { return "cancelled" }
        return "request failed (\(type(of: error)))"
    }
}
