import LifelineCore
import Prometheus
import Synchronization

/// Each deployment's adaptive concurrency limit, the attempts it has in flight, and the
/// attempts waiting for one of its slots.
///
/// A deployment at its limit is busy, not broken: an attempt waits briefly for a slot instead
/// of being refused, and a slot freed by a finished attempt, or added by a grown limit, goes to
/// the most important waiter, the longest waiting among equals.
final class DeploymentSlots: Sendable {
    private struct Waiter {
        let id: UInt64
        let priority: Priority
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var limits: [GradientConcurrencyLimit]
        var inFlight: [Int]
        var waiting: [[Waiter]]
        /// Waiters between taking a number and storing their continuation.
        var arriving: Set<UInt64> = []
        /// Answers given to arriving waiters (timed out or cancelled before they were stored).
        var early: [UInt64: Bool] = [:]
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>
    /// Each deployment's gauges, set on every change.
    private let limitGauges: [GatewayMetrics.LimitGauges]
    private let inFlightGauges: [Gauge]
    /// Most attempts that may wait at one deployment; beyond it they are refused at once.
    private let maximumWaiting: Int

    init(names: [String], policy: ConcurrencyLimitPolicy, maximumWaiting: Int, metrics: GatewayMetrics) {
        let limits = Array(repeating: GradientConcurrencyLimit(policy: policy), count: names.count)
        state = Mutex(State(limits: limits, inFlight: Array(repeating: 0, count: names.count),
                            waiting: Array(repeating: [], count: names.count)))
        self.maximumWaiting = maximumWaiting
        limitGauges = names.map { metrics.limitGauges(scope: $0) }
        inFlightGauges = names.map { metrics.deploymentInFlightGauge($0) }
        for (gauges, limit) in zip(limitGauges, limits) {
            gauges.limit(limit.slots)
            gauges.latency(recent: nil, baseline: nil)
        }
        for gauge in inFlightGauges { gauge.set(0.0) }
    }

    /// Each deployment's limit and attempts in flight.
    var snapshot: [(limit: Int, inFlight: Int)] {
        state.withLock { state in zip(state.limits, state.inFlight).map { ($0.slots, $1) } }
    }

    /// Attempts waiting for one of a deployment's slots.
    func waiting(_ position: Int) -> Int {
        state.withLock { $0.waiting[position].count + $0.arriving.count }
    }

    /// One deployment's limit and attempts in flight.
    func load(_ position: Int) -> (limit: Int, inFlight: Int) {
        state.withLock { ($0.limits[position].slots, $0.inFlight[position]) }
    }

    /// Takes a slot now if one is free, else waits up to `wait` seconds for one, behind the
    /// waiters of its own priority and above, ahead of the less important ones.
    func acquire(_ position: Int, wait: Double, priority: Priority) async -> Bool {
        let (taken, id) = state.withLock { state -> (inFlight: Int?, id: UInt64?) in
            if state.inFlight[position] < state.limits[position].slots, state.waiting[position].isEmpty {
                state.inFlight[position] += 1
                return (state.inFlight[position], nil)
            }
            guard wait > 0, state.waiting[position].count < maximumWaiting else { return (nil, nil) }
            state.nextID += 1
            state.arriving.insert(state.nextID)
            return (nil, state.nextID)
        }
        if let taken {
            inFlightGauges[position].set(Double(taken))
            return true
        }
        guard let id else { return false }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: .seconds(wait))
            self?.giveUp(id, position)
        }
        defer { timer.cancel() }
        let granted = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let answer = state.withLock { state -> Bool? in
                    state.arriving.remove(id)
                    if let answer = state.early.removeValue(forKey: id) { return answer }
                    let waiter = Waiter(id: id, priority: priority, continuation: continuation)
                    let place = state.waiting[position].firstIndex { $0.priority < priority } ?? state.waiting[position].endIndex
                    state.waiting[position].insert(waiter, at: place)
                    return nil
                }
                if let answer { continuation.resume(returning: answer) }
            }
        } onCancel: {
            giveUp(id, position)
        }
        if granted { report(position) }
        return granted
    }

    /// A waiter whose time ran out, or whose request was cancelled, leaves without a slot.
    private func giveUp(_ id: UInt64, _ position: Int) {
        let continuation = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            if let index = state.waiting[position].firstIndex(where: { $0.id == id }) {
                return state.waiting[position].remove(at: index).continuation
            }
            // Not stored yet: leave the answer for it. (Gone from both: it already has a slot.)
            if state.arriving.contains(id) { state.early[id] = false }
            return nil
        }
        continuation?.resume(returning: false)
    }

    /// An attempt ended: its slot goes to the next waiter, if any.
    func release(_ position: Int) {
        let (woken, inFlight) = state.withLock { state -> ([Waiter], Int) in
            state.inFlight[position] = max(0, state.inFlight[position] - 1)
            return (Self.admitWaiting(&state, position), state.inFlight[position])
        }
        for waiter in woken { waiter.continuation.resume(returning: true) }
        inFlightGauges[position].set(Double(inFlight))
    }

    /// An answer's latency (time to first token for streams) trains the deployment's limit.
    func recordLatency(_ position: Int, seconds: Double) {
        let host = SchedulingLag.shared.now
        let (woken, slots, recent, baseline) = state.withLock { state -> ([Waiter], Int, Double?, Double?) in
            state.limits[position].record(latency: seconds, inFlight: state.inFlight[position], hostLag: host.lag, hostBusy: host.busy,
                                          contended: !state.waiting[position].isEmpty)
            let limit = state.limits[position]
            return (Self.admitWaiting(&state, position), limit.slots, limit.recentLatency, limit.baseline)
        }
        for waiter in woken { waiter.continuation.resume(returning: true) }
        limitGauges[position].limit(slots)
        limitGauges[position].latency(recent: recent, baseline: baseline)
    }

    /// The upstream refused for overload (429: `saidByUpstream`), timed out or refused the
    /// connection (which count only while this host had the CPU to notice in time).
    func recordOverload(_ position: Int, at now: Double, saidByUpstream: Bool) {
        let host = SchedulingLag.shared.now
        let slots = state.withLock { state -> Int in
            state.limits[position].recordOverload(at: now, saidByUpstream: saidByUpstream, hostLag: host.lag, hostBusy: host.busy)
            return state.limits[position].slots
        }
        limitGauges[position].limit(slots)
    }

    private static func admitWaiting(_ state: inout State, _ position: Int) -> [Waiter] {
        var woken: [Waiter] = []
        while !state.waiting[position].isEmpty, state.inFlight[position] < state.limits[position].slots {
            woken.append(state.waiting[position].removeFirst())
            state.inFlight[position] += 1
        }
        return woken
    }

    private func report(_ position: Int) {
        let inFlight = state.withLock { $0.inFlight[position] }
        inFlightGauges[position].set(Double(inFlight))
    }
}
