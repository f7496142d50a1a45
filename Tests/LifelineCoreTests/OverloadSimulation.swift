import LifelineCore

/// The gateway's admission (the real limit and queue) in front of an upstream that serves a
/// fixed number of requests at once and queues the rest, run as events on a simulated clock.
///
/// The shape is the overload benchmark's: clients each send one stream after another and wait
/// their Retry-After when refused; the upstream's first token comes after its queue and a fixed
/// delay, and every answer then streams for about the same time. The limit learns each first
/// token when the answer ends, as the gateway's does (or when it comes, as a deployment's does),
/// so its news is as late as in the real thing.
struct OverloadSimulation {
    struct Shape {
        var clients = 80
        var upstreamSlots = 16
        var firstToken = 0.05
        var streaming = 0.55
        /// Each answer's first token and streaming time vary by up to this share either way, as
        /// a real upstream's do (the benchmark's p99 is about a tenth over its median).
        var jitter = 0.1
        var seed: UInt64 = 1
        var seconds = 120.0
        /// Figures are kept from this time on, once the limit has had time to settle.
        var warmUp = 20.0
        /// A refused client asks again after this long.
        var retryAfter = 2.0
        /// The limit learns each first token when it comes, as each deployment's limit does (at
        /// the response's head); otherwise when the answer ends, as the gateway's limit does.
        var learnsAtFirstToken = false
    }

    struct Outcome {
        /// The limit, and the requests at the upstream (served and queued), every half second.
        var limits: [Double] = []
        var upstreamInFlight: [Int] = []
        /// Seconds from a request's arrival at the gateway to its last token, for those admitted.
        var admittedTotals: [Double] = []
        var shed = 0
        /// Refusals by priority.
        var shedByPriority: [Priority: Int] = [:]
        /// Answers completed by priority.
        var servedByPriority: [Priority: Int] = [:]
        /// Seconds measured (the run after its warm-up).
        var seconds = 0.0

        /// Of the requests of `priority` answered or refused, the share answered.
        func success(of priority: Priority) -> Double {
            let served = Double(servedByPriority[priority] ?? 0)
            return served / max(1, served + Double(shedByPriority[priority] ?? 0))
        }

        /// Nearest-rank percentile of the admitted requests' total time.
        func totalPercentile(_ p: Double) -> Double {
            let sorted = admittedTotals.sorted()
            guard !sorted.isEmpty else { return 0 }
            return sorted[min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))]
        }
    }

    private enum Event {
        case arrive(client: Int)
        case firstToken(UInt64)
        case finish(UInt64)
        case tick
        case sample
    }

    private struct Request {
        var client: Int
        var priority: Priority
        var arrived: Double
        var admitted = 0.0
        var firstToken = 0.0
        var inFlightAtStart = 0
        var contended = false
    }

    let shape: Shape
    var limit: GradientConcurrencyLimit
    var queue: AdmissionQueue

    private var now = 0.0
    private var events: [(time: Double, order: UInt64, event: Event)] = []
    private var order: UInt64 = 0
    private var nextID: UInt64 = 0
    private var requests: [UInt64: Request] = [:]
    private var upstreamBusy = 0
    private var upstreamWaiting: [UInt64] = []
    private var outcome = Outcome()
    private var generator: SeededGenerator

    init(shape: Shape, limit: GradientConcurrencyLimit, queue: AdmissionQueuePolicy) {
        self.shape = shape
        self.limit = limit
        self.queue = AdmissionQueue(policy: queue, limit: limit.slots)
        generator = SeededGenerator(seed: shape.seed)
    }

    /// Runs the whole shape and returns what it measured after the warm-up.
    mutating func run() -> Outcome {
        // Clients start a millisecond apart.
        for client in 0..<shape.clients { schedule(.arrive(client: client), at: Double(client) * 0.001) }
        schedule(.tick, at: 0.01)
        schedule(.sample, at: 0.5)
        var steps = 0
        while let next = events.popLast(), next.time <= shape.seconds, steps < 10_000_000 {
            steps += 1
            now = next.time
            handle(next.event)
        }
        outcome.seconds = shape.seconds - shape.warmUp
        return outcome
    }

    /// The benchmark's mix: 10 % critical, 20 % high, 30 % normal, 40 % low.
    private static func priority(of client: Int) -> Priority {
        switch client % 10 {
        case 0: .critical
        case 1, 2: .high
        case 3, 4, 5: .normal
        default: .low
        }
    }

    private var measuring: Bool { now >= shape.warmUp }

    private mutating func handle(_ event: Event) {
        switch event {
        case .arrive(let client):
            nextID += 1
            let id = nextID
            var request = Request(client: client, priority: Self.priority(of: client), arrived: now)
            let (arrival, evicted) = queue.arrive(id: id, priority: request.priority, at: now)
            for gone in evicted { refuse(gone) }
            switch arrival {
            case .admitted:
                request.inFlightAtStart = queue.inFlight
                request.contended = queue.isContended(at: now)
                requests[id] = request
                dispatch(id)
            case .queued:
                requests[id] = request
            case .shed:
                requests[id] = request
                refuse(id)
            }
        case .firstToken(let id):
            guard let request = requests[id] else { return }
            requests[id]?.firstToken = now
            if shape.learnsAtFirstToken { learn(from: request, at: now) }
        case .finish(let id):
            guard let request = requests.removeValue(forKey: id) else { return }
            if !shape.learnsAtFirstToken { learn(from: request, at: request.firstToken) }
            upstreamBusy -= 1
            if !upstreamWaiting.isEmpty { serve(upstreamWaiting.removeFirst()) }
            if measuring {
                outcome.admittedTotals.append(now - request.arrived)
                outcome.servedByPriority[request.priority, default: 0] += 1
            }
            admitFromQueue(queue.finish(request.priority, at: now))
            schedule(.arrive(client: request.client), at: now)
        case .tick:
            for id in queue.expire(at: now) { refuse(id) }
            schedule(.tick, at: now + 0.01)
        case .sample:
            if measuring {
                outcome.limits.append(limit.limit)
                outcome.upstreamInFlight.append(upstreamBusy + upstreamWaiting.count)
            }
            schedule(.sample, at: now + 0.5)
        }
    }

    /// The request's first token, which came at `firstToken`, trains the limit; a raised limit admits waiters.
    private mutating func learn(from request: Request, at firstToken: Double) {
        limit.record(latency: firstToken - request.admitted, inFlight: request.inFlightAtStart, contended: request.contended)
        queue.limit = limit.slots
        admitFromQueue(queue.admitWaiting(at: now))
    }

    private mutating func admitFromQueue(_ ids: [UInt64]) {
        for id in ids {
            requests[id]?.inFlightAtStart = queue.inFlight
            requests[id]?.contended = true
            dispatch(id)
        }
    }

    private mutating func dispatch(_ id: UInt64) {
        requests[id]?.admitted = now
        if upstreamBusy < shape.upstreamSlots { serve(id) } else { upstreamWaiting.append(id) }
    }

    private mutating func serve(_ id: UInt64) {
        upstreamBusy += 1
        let firstToken = shape.firstToken * Double.random(in: 1 - shape.jitter...1 + shape.jitter, using: &generator)
        let streaming = shape.streaming * Double.random(in: 1 - shape.jitter...1 + shape.jitter, using: &generator)
        schedule(.firstToken(id), at: now + firstToken)
        schedule(.finish(id), at: now + firstToken + streaming)
    }

    private mutating func refuse(_ id: UInt64) {
        guard let request = requests.removeValue(forKey: id) else { return }
        if measuring {
            outcome.shed += 1
            outcome.shedByPriority[request.priority, default: 0] += 1
        }
        schedule(.arrive(client: request.client), at: now + shape.retryAfter)
    }

    private mutating func schedule(_ event: Event, at time: Double) {
        order += 1
        // Kept sorted by time, then by when scheduled; the next event is the last element.
        let entry = (time: time, order: order, event: event)
        var low = 0
        var high = events.count
        while low < high {
            let middle = (low + high) / 2
            let other = events[middle]
            if other.time > time || (other.time == time && other.order > entry.order) { low = middle + 1 } else { high = middle }
        }
        events.insert(entry, at: low)
    }
}
