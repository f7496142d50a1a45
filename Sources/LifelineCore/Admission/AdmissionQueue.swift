/// How requests wait for a slot, and when they are shed.
public struct AdmissionQueuePolicy: Sendable, Equatable {
    /// Requests that may wait at once: enough to absorb a burst of new streams while the limit
    /// learns that the upstream takes them.
    public var maximumLength = 1024
    /// Longest a request waits before it is shed.
    public var maximumWait = 2.0
    /// CoDel: when even the shortest wait in the queue stays above `target` for `interval`,
    /// the queue is standing, not absorbing a burst: shed from the back.
    public var target = 0.1
    public var interval = 0.5
    /// Critical requests may use this share of the limit above it, so they are shed last; and
    /// as many critical requests may always be in flight, even while a limit that just fell
    /// under what is in flight waits for the rest to drain.
    public var criticalReserve = 0.1
    /// Once the queue stands (its head has waited over `target`), a request below critical that
    /// has waited this long is shed. The queue then serves the newest first, so such a request
    /// would be served only in a lull, carrying its whole wait into the answer's latency, or shed
    /// at `maximumWait` anyway; shed now, its client hears Retry-After sooner and the admitted
    /// requests keep a short wait.
    public var standingWait = 0.25

    public init() {}
}

/// Admission under a concurrency limit: admit while slots are free, otherwise wait in a short
/// queue ordered by priority then arrival; shed the least important first.
public struct AdmissionQueue: Sendable, Equatable {
    public struct Waiter: Sendable, Equatable {
        public var id: UInt64
        public var priority: Priority
        public var arrived: Double
    }

    public enum Arrival: Sendable, Equatable {
        case admitted
        case queued
        case shed
    }

    public let policy: AdmissionQueuePolicy
    public private(set) var inFlight = 0
    /// Of `inFlight`, how many are critical.
    public private(set) var criticalInFlight = 0
    public private(set) var waiting: [Waiter] = []
    public var limit: Int
    private var standingSince: Double?
    /// When a request was last shed or pushed out.
    private var lastShed: Double?
    /// For how long after a shed demand still counts as over the limit.
    private static let contentionMemory = 1.0

    public init(policy: AdmissionQueuePolicy, limit: Int) {
        self.policy = policy
        self.limit = limit
    }

    private func hasSlot(for priority: Priority) -> Bool {
        guard priority == .critical else { return inFlight < limit }
        let reserve = max(1, Int((Double(limit) * policy.criticalReserve).rounded(.up)))
        return inFlight < limit + reserve || criticalInFlight < reserve
    }

    private mutating func take(_ priority: Priority) {
        inFlight += 1
        if priority == .critical { criticalInFlight += 1 }
    }

    /// A new request. Returns its fate and any waiters it pushed out of a full queue.
    public mutating func arrive(id: UInt64, priority: Priority, at now: Double) -> (Arrival, evicted: [UInt64]) {
        let aheadOfIt = waiting.contains { $0.priority >= priority }
        if !aheadOfIt, hasSlot(for: priority) {
            take(priority)
            return (.admitted, [])
        }
        guard policy.maximumLength > 0 else {
            lastShed = now
            return (.shed, [])
        }
        var evicted: [UInt64] = []
        if waiting.count >= policy.maximumLength {
            lastShed = now
            // Full: the newest of the least important goes, unless that is the newcomer.
            guard let victim = lastOfLowest(), waiting[victim].priority < priority else { return (.shed, []) }
            evicted.append(waiting.remove(at: victim).id)
        }
        let position = waiting.firstIndex { $0.priority < priority } ?? waiting.endIndex
        waiting.insert(Waiter(id: id, priority: priority, arrived: now), at: position)
        return (.queued, evicted)
    }

    /// An admitted request of `priority` ended; returns waiters that now get a slot.
    public mutating func finish(_ priority: Priority, at now: Double) -> [UInt64] {
        inFlight = max(0, inFlight - 1)
        if priority == .critical { criticalInFlight = max(0, criticalInFlight - 1) }
        var admitted = admitWaiting(at: now)
        // A limit that fell under what is in flight drains first, but not at critical requests'
        // cost: the slot just freed goes to a critical request at the head of the queue.
        if admitted.isEmpty, let next = nextIndex(at: now), waiting[next].priority == .critical {
            take(.critical)
            admitted.append(waiting.remove(at: next).id)
        }
        return admitted
    }

    /// Admits queued requests while slots are free (after a finish or a raised limit).
    public mutating func admitWaiting(at now: Double) -> [UInt64] {
        var admitted: [UInt64] = []
        while let next = nextIndex(at: now), hasSlot(for: waiting[next].priority) {
            take(waiting[next].priority)
            admitted.append(waiting.remove(at: next).id)
        }
        return admitted
    }

    /// Which waiter a free slot goes to: the most important first; among those, the first to
    /// arrive while the queue drains quickly, and the last to arrive once its head has waited
    /// over `target` (adaptive LIFO). In a standing queue, first come, first served would make
    /// every admitted request carry the whole queue's wait; newest first keeps the admitted ones
    /// quick, and those left behind reach `standingWait` and are shed with a Retry-After.
    /// Critical requests are shed last of all, so they are always served oldest first: newest
    /// first would leave the oldest of them waiting until `maximumWait` shed it.
    private func nextIndex(at now: Double) -> Int? {
        guard let first = waiting.first else { return nil }
        guard isStanding(at: now), first.priority != .critical else { return 0 }
        return waiting.lastIndex { $0.priority == first.priority }
    }

    private func isStanding(at now: Double) -> Bool {
        guard let first = waiting.first else { return false }
        return now - first.arrived > policy.target
    }

    /// Whether demand exceeds the limit: requests wait, or one was shed within the last second.
    /// A queue that sheds early is often empty for a moment while the limit still binds.
    public func isContended(at now: Double) -> Bool {
        if !waiting.isEmpty { return true }
        guard let lastShed else { return false }
        return now - lastShed < Self.contentionMemory
    }

    /// A waiter that gave up (its client left) leaves the queue.
    public mutating func withdraw(id: UInt64) -> Bool {
        guard let index = waiting.firstIndex(where: { $0.id == id }) else { return false }
        waiting.remove(at: index)
        return true
    }

    /// Sheds waiters that waited too long (`maximumWait`; in a standing queue `standingWait` for
    /// those below critical), and one from the back of a queue that stays standing.
    public mutating func expire(at now: Double) -> [UInt64] {
        let longest = policy.maximumWait
        let standingLongest = isStanding(at: now) ? policy.standingWait : .infinity
        let late = { (waiter: Waiter) -> Bool in
            let wait = now - waiter.arrived
            return wait >= longest || (waiter.priority != .critical && wait >= standingLongest)
        }
        var shed = waiting.filter(late).map(\.id)
        waiting.removeAll(where: late)
        let shortestWait = waiting.map { now - $0.arrived }.min()
        if let shortestWait, shortestWait > policy.target {
            let since = standingSince ?? now
            standingSince = since
            if now - since >= policy.interval, let victim = lastOfLowest() {
                shed.append(waiting.remove(at: victim).id)
                standingSince = now
            }
        } else {
            standingSince = nil
        }
        if !shed.isEmpty { lastShed = now }
        return shed
    }

    private func lastOfLowest() -> Int? {
        guard let lowest = waiting.map(\.priority).min() else { return nil }
        return waiting.lastIndex { $0.priority == lowest }
    }
}
