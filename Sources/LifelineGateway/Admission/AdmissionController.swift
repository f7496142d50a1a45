import LifelineCore
import Prometheus
import ServiceLifecycle
import Synchronization

/// Gateway-wide admission: the adaptive concurrency limit with a priority queue in front.
///
/// A request either gets a slot now, waits briefly in the queue (most important first), or is
/// shed with a Retry-After computed from how fast slots are freeing up. Finished requests feed
/// their latency to the limit, which grows while latency holds and shrinks when it climbs.
final class AdmissionController: Sendable {
    enum Decision: Sendable {
        case admitted(Ticket)
        case shed(reason: String, retryAfterSeconds: Int)
        /// The request was cancelled (its client left) while it waited.
        case cancelled
    }

    /// Proof of a slot; hand it back with `release`.
    struct Ticket: Sendable {
        let id: UInt64
        let priority: Priority
        let inFlightAtStart: Int
        /// Demand was over the limit when this request got its slot: others waited, one was shed
        /// within the last second, or it waited itself.
        let contended: Bool
    }

    private struct State {
        var queue: AdmissionQueue
        var limit: GradientConcurrencyLimit
        var waiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        /// Decided before the waiter began to wait (admitted or shed in between).
        var earlyAnswers: [UInt64: Bool] = [:]
        var nextID: UInt64 = 0
        /// When the most recent requests finished, for the drain rate behind Retry-After.
        var recentCompletions: [Double] = []
    }

    private let state: Mutex<State>
    private let clock: @Sendable () -> Double
    private let metrics: GatewayMetrics
    /// The gateway's admission gauges, set on every change.
    private let limitGauges: GatewayMetrics.LimitGauges
    private let inFlightGauge: Gauge
    private let queueGauge: Gauge
    /// A request started waiting: the ticker, idle while no one waits, starts its clock.
    let arrivals: AsyncStream<Void>
    private let arrived: AsyncStream<Void>.Continuation

    init(config: AdmissionConfig, clock: @escaping @Sendable () -> Double, metrics: GatewayMetrics) {
        let limit = GradientConcurrencyLimit(policy: config.concurrency)
        state = Mutex(State(queue: AdmissionQueue(policy: config.queue, limit: limit.slots), limit: limit))
        self.clock = clock
        self.metrics = metrics
        (arrivals, arrived) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
        limitGauges = metrics.limitGauges(scope: "gateway")
        (inFlightGauge, queueGauge) = metrics.admissionGauges()
        limitGauges.limit(limit.slots)
        limitGauges.latency(recent: nil, baseline: nil)
        // Present from the start, not only after the first request.
        inFlightGauge.set(0.0)
        queueGauge.set(0.0)
        metrics.schedulingLag(SchedulingLag.shared.seconds)
        metrics.hostCPUBusy(SchedulingLag.shared.hostBusy)
        metrics.cpuThrottled(SchedulingLag.shared.throttled)
    }

    func acquire(priority: Priority) async -> Decision {
        let now = clock()
        let (id, arrival, evicted, inFlight, contended) = state.withLock { state in
            state.nextID += 1
            let (arrival, evicted) = state.queue.arrive(id: state.nextID, priority: priority, at: now)
            return (state.nextID, arrival, evicted, state.queue.inFlight, state.queue.isContended(at: now))
        }
        resume(evicted, admitted: false)
        switch arrival {
        case .admitted:
            report()
            return .admitted(Ticket(id: id, priority: priority, inFlightAtStart: inFlight, contended: contended))
        case .shed:
            return shed(priority: priority, reason: "queue_full")
        case .queued:
            report()
            arrived.yield()
            let admitted = await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let resumeNow = state.withLock { state -> Bool? in
                        // Admitted or shed between arrival and here: answer at once.
                        if let answer = state.earlyAnswers.removeValue(forKey: id) { return answer }
                        state.waiters[id] = continuation
                        return nil
                    }
                    if let resumeNow { continuation.resume(returning: resumeNow) }
                }
            } onCancel: {
                withdraw(id)
            }
            report()
            if admitted {
                return .admitted(Ticket(id: id, priority: priority, inFlightAtStart: state.withLock { $0.queue.inFlight }, contended: true))
            }
            if Task.isCancelled { return .cancelled }
            return shed(priority: priority, reason: "queue_timeout")
        }
    }

    /// Ends an admitted request; `latency` (time to first token, or the whole answer) trains the
    /// limit, unless the gateway's scheduling or the host's CPUs were short when it was read
    /// (`host`: as it was then; as it is now when not given).
    func release(_ ticket: Ticket, latency: Double?, host: SchedulingLag.Reading? = nil) {
        let now = clock()
        let host = host ?? SchedulingLag.shared.now
        let (admitted, recent, baseline) = state.withLock { state -> ([UInt64], Double?, Double?) in
            if let latency {
                state.limit.record(latency: latency, inFlight: ticket.inFlightAtStart, hostLag: host.lag, hostBusy: host.busy,
                                   contended: ticket.contended)
            }
            state.recentCompletions.append(now)
            if state.recentCompletions.count > 64 { state.recentCompletions.removeFirst() }
            state.queue.limit = state.limit.slots
            return (state.queue.finish(ticket.priority, at: now), state.limit.recentLatency, state.limit.baseline)
        }
        resume(admitted, admitted: true)
        report()
        if latency != nil { limitGauges.latency(recent: recent, baseline: baseline) }
    }

    /// A waiter whose client left gives its place up (if it still holds one: it may have just
    /// been admitted, and then releases its slot as usual).
    private func withdraw(_ id: UInt64) {
        let withdrawn = state.withLock { $0.queue.withdraw(id: id) }
        if withdrawn { resume([id], admitted: false) }
    }

    /// Sheds waiters that waited too long or sit in a standing queue; run on a short tick.
    /// Returns whether no one waits now (read with the expiry, so the queue's standing state
    /// was reset on an empty queue).
    @discardableResult
    func expireWaiters() -> Bool {
        let now = clock()
        let (shed, empty) = state.withLock { state in (state.queue.expire(at: now), state.queue.waiting.isEmpty) }
        resume(shed, admitted: false)
        if !shed.isEmpty { report() }
        return empty
    }

    private func resume(_ ids: [UInt64], admitted: Bool) {
        guard !ids.isEmpty else { return }
        let continuations = state.withLock { state in
            ids.compactMap { id -> CheckedContinuation<Bool, Never>? in
                guard let continuation = state.waiters.removeValue(forKey: id) else {
                    state.earlyAnswers[id] = admitted
                    return nil
                }
                return continuation
            }
        }
        for continuation in continuations { continuation.resume(returning: admitted) }
    }

    private func shed(priority: Priority, reason: String) -> Decision {
        metrics.shed(reason: reason, priority: priority.description)
        let now = clock()
        let (waiting, rate) = state.withLock { state -> (Int, Double) in
            // Completions per second over the recent ones: a count over a span, not an average of
            // instantaneous rates (which close pairs of completions would inflate).
            guard let oldest = state.recentCompletions.first, state.recentCompletions.count >= 2, now > oldest else {
                return (state.queue.waiting.count, 0)
            }
            return (state.queue.waiting.count, Double(state.recentCompletions.count - 1) / (now - oldest))
        }
        let seconds = rate > 0 ? Double(waiting + 1) / rate : 1
        return .shed(reason: reason, retryAfterSeconds: max(1, min(60, Int(seconds.rounded(.up)))))
    }

    private func report() {
        let (limit, inFlight, waiting) = state.withLock { ($0.limit.slots, $0.queue.inFlight, $0.queue.waiting.count) }
        limitGauges.limit(limit)
        inFlightGauge.set(Double(inFlight))
        queueGauge.set(Double(waiting))
    }

    var snapshot: (limit: Int, inFlight: Int, queued: Int) {
        state.withLock { ($0.limit.slots, $0.queue.inFlight, $0.queue.waiting.count) }
    }
}

/// Runs the admission queue's clock: sheds waiters past their time every 10 ms while any wait,
/// and sleeps while none does (an idle gateway is not woken a hundred times a second).
struct AdmissionTicker: Service {
    let admission: AdmissionController

    func run() async throws {
        for await _ in admission.arrivals.cancelOnGracefulShutdown() {
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(10))
                if admission.expireWaiters() { break }
            }
        }
    }
}
