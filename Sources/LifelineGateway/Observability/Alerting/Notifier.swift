import AsyncHTTPClient
import Foundation
import LifelineCore
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

/// One notification to one webhook target, as the delivery log shows it.
public struct NotificationDelivery: Sendable, Equatable {
    public enum Status: String, Sendable {
        case pending, delivered, failed, suppressed
    }

    public var id: String
    public var target: String
    public var format: WebhookConfig.Format
    public var alertID: String
    public var alert: String
    public var transition: AlertChange.Transition
    public var status: Status
    public var attempts = 0
    public var responseStatus: Int?
    public var error: String?
    public var createdAt: Double
    public var finishedAt: Double?

    public var json: JSONValue {
        [
            "id": .string(id), "target": .string(target), "format": .string(format.rawValue), "alert_id": .string(alertID),
            "alert": .string(alert), "transition": .string(transition.rawValue), "status": .string(status.rawValue),
            "attempts": .number(Double(attempts)), "response_status": responseStatus.map { .number(Double($0)) } ?? .null,
            "error": error.map { .string($0) } ?? .null, "created_at": .string(Timestamp.iso8601(createdAt)),
            "finished_at": finishedAt.map { .string(Timestamp.iso8601($0)) } ?? .null,
        ]
    }
}

/// Sends alert changes to the configured webhooks.
///
/// Each (alert episode, transition, target) is sent at most once: a delivered-set remembers what
/// was queued, so repeated evaluations or a reload never notify twice. A failed attempt
/// (connection error, timeout, 408, 429, 5xx) is retried with full-jitter exponential backoff up
/// to `max_attempts`; any other answer is final. Webhook URLs are credentials and appear in no
/// log line and no API answer: targets are named.
public final class Notifier: Service, Sendable {
    static let deliveriesKept = 200
    static let deliveredKeysKept = 10_000

    struct Job: Sendable {
        var deliveryID: String
        var webhook: WebhookConfig
        var url: String
        var body: [UInt8]
        var maxAttempts: Int
        var backoff: Backoff
    }

    private struct State {
        var deliveries: [NotificationDelivery] = []
        var delivered: Set<String> = []
        var deliveredOrder: [String] = []
        var nextID = 1
    }

    private let state = Mutex(State())
    private let jobs: AsyncStream<Job>
    private let queue: AsyncStream<Job>.Continuation
    private let metrics: GatewayMetrics
    private let logger: Logger
    private let clock: @Sendable () -> Double
    public let suppression: any SuppressionPolicy

    public init(metrics: GatewayMetrics, logger: Logger, suppression: any SuppressionPolicy = NoSuppression(),
                clock: @escaping @Sendable () -> Double)
    {
        (jobs, queue) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
        self.metrics = metrics
        self.logger = logger
        self.suppression = suppression
        self.clock = clock
    }

    /// Queues the change for every target that takes its severity, unless already sent or suppressed.
    public func notify(_ change: AlertChange, config: NotificationsConfig, deployments: [String], alertsURL: String) {
        let now = clock()
        for webhook in config.webhooks where webhook.severities.contains(change.alert.severity) {
            let key = "\(change.alert.id)|\(change.transition.rawValue)|\(webhook.name)"
            let suppressed = suppression.suppresses(change.alert, deployments: deployments, at: now)
            let delivery: NotificationDelivery? = state.withLock { state in
                guard state.delivered.insert(key).inserted else { return nil }
                state.deliveredOrder.append(key)
                if state.deliveredOrder.count > Self.deliveredKeysKept {
                    state.delivered.remove(state.deliveredOrder.removeFirst())
                }
                let delivery = NotificationDelivery(
                    id: "ntf_\(state.nextID)", target: webhook.name, format: webhook.format, alertID: change.alert.id,
                    alert: change.alert.alert, transition: change.transition, status: suppressed ? .suppressed : .pending,
                    createdAt: now, finishedAt: suppressed ? now : nil)
                state.nextID += 1
                state.deliveries.append(delivery)
                if state.deliveries.count > Self.deliveriesKept { state.deliveries.removeFirst(state.deliveries.count - Self.deliveriesKept) }
                return delivery
            }
            guard let delivery else { continue }
            if suppressed {
                metrics.notificationDelivery(target: webhook.name, outcome: "suppressed")
                continue
            }
            let (url, body) = WebhookPayload.request(for: webhook, change: change, alertsURL: alertsURL, now: now)
            queue.yield(Job(deliveryID: delivery.id, webhook: webhook, url: url, body: JSONCoding.encode(body),
                            maxAttempts: config.maxAttempts, backoff: config.backoff))
        }
    }

    /// Recent deliveries, newest first.
    public var deliveries: [NotificationDelivery] { state.withLock { $0.deliveries.reversed() } }

    /// Delivers queued notifications until shutdown; deliveries in flight may finish while the server drains.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            for await job in jobs.cancelOnGracefulShutdown() {
                group.addTask { await self.deliver(job) }
            }
        }
    }

    func deliver(_ job: Job) async {
        var random = SystemRandomNumberGenerator()
        var attempt = 0
        var responseStatus: Int?
        var failure = ""
        while attempt < job.maxAttempts {
            attempt += 1
            update(job.deliveryID) { $0.attempts = attempt }
            var retryable = true
            do {
                var request = HTTPClientRequest(url: job.url)
                request.method = .POST
                request.headers.add(name: "content-type", value: "application/json")
                request.headers.add(name: "user-agent", value: "lifeline/\(LifelineVersion.current)")
                for (name, value) in job.webhook.headers { request.headers.replaceOrAdd(name: name, value: value) }
                request.body = .bytes(ByteBuffer(bytes: job.body))
                let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(job.webhook.timeoutMilliseconds)))
                _ = try? await response.body.collect(upTo: 64 * 1024)
                let code = Int(response.status.code)
                responseStatus = code
                if (200..<300).contains(code) {
                    finish(job, status: .delivered, responseStatus: code, error: nil)
                    return
                }
                failure = "HTTP \(code)"
                retryable = code >= 500 || code == 429 || code == 408
            } catch {
                // Only the error's kind: its text could quote the (secret) URL.
                failure = Self.describe(error)
            }
            guard retryable, attempt < job.maxAttempts, !Task.isCancelled else { break }
            update(job.deliveryID) { $0.error = failure; $0.responseStatus = responseStatus }
            let delay = job.backoff.delay(beforeRetry: attempt, using: &random)
            try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
        }
        finish(job, status: .failed, responseStatus: responseStatus, error: failure)
    }

    private func finish(_ job: Job, status: NotificationDelivery.Status, responseStatus: Int?, error: String?) {
        let now = clock()
        var finished: NotificationDelivery?
        update(job.deliveryID) {
            $0.status = status
            $0.responseStatus = responseStatus
            $0.error = error
            $0.finishedAt = now
            finished = $0
        }
        metrics.notificationDelivery(target: job.webhook.name, outcome: status.rawValue)
        guard let finished else { return }
        let metadata: Logger.Metadata = [
            "target": .string(finished.target), "alert": .string(finished.alert), "transition": .string(finished.transition.rawValue),
            "attempts": .stringConvertible(finished.attempts),
        ]
        if status == .delivered {
            logger.info("notification delivered", metadata: metadata)
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
