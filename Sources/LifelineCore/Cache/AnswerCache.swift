/// An exact-match answer cache: bounded by entries and bytes, least recently used out first,
/// with a TTL and a stale window past it. A pure value: time comes in as `now` (seconds).
///
/// Written by hand because no package here has a size-bounded LRU: a dictionary of slots in a
/// doubly linked recency list (by index, so nothing is reference counted) makes every
/// operation O(1).
public struct AnswerCache<Value: Sendable>: Sendable {
    public enum Lookup {
        /// Within its TTL.
        case fresh(Value, age: Double)
        /// Past its TTL but inside the stale window: usable only when every deployment fails.
        case stale(Value, age: Double)
        case absent
    }

    private struct Slot {
        var key: String
        var model: String
        var value: Value?
        var bytes: Int
        var storedAt: Double
        /// Toward the least recently used end, and toward the most.
        var older: Int?
        var newer: Int?
    }

    public private(set) var policy: AnswerCachePolicy
    private var index: [String: Int] = [:]
    private var slots: [Slot] = []
    private var freeSlots: [Int] = []
    private var newest: Int?
    private var oldest: Int?
    public private(set) var bytes = 0
    /// Entries pushed out by the bounds (not expired ones, not purged ones).
    public private(set) var evictions = 0

    public init(policy: AnswerCachePolicy) {
        self.policy = policy
    }

    public var count: Int { index.count }

    /// Finds `key`; an entry past both its TTL and stale window is removed.
    public mutating func lookup(_ key: String, now: Double) -> Lookup {
        guard let position = index[key], let value = slots[position].value else { return .absent }
        let age = max(0, now - slots[position].storedAt)
        if age <= policy.ttlSeconds {
            touch(position)
            return .fresh(value, age: age)
        }
        if age <= policy.ttlSeconds + policy.serveStaleOnErrorSeconds { return .stale(value, age: age) }
        remove(position)
        return .absent
    }

    /// Stores `value` (`bytes` its size) under `key`, replacing an older entry, then evicts the
    /// least recently used entries until both bounds hold. A value larger than `maxBytes` is not kept.
    /// Returns how many entries were evicted.
    @discardableResult
    public mutating func insert(_ key: String, model: String, value: Value, bytes size: Int, now: Double) -> Int {
        if let position = index[key] { remove(position) }
        guard size <= policy.maxBytes, policy.maxEntries > 0 else { return 0 }
        let slot = Slot(key: key, model: model, value: value, bytes: size, storedAt: now, older: newest, newer: nil)
        let position: Int
        if let free = freeSlots.popLast() {
            slots[free] = slot
            position = free
        } else {
            slots.append(slot)
            position = slots.count - 1
        }
        if let newest { slots[newest].newer = position }
        newest = position
        if oldest == nil { oldest = position }
        index[key] = position
        bytes += size
        var evicted = 0
        // Bounded: each pass removes one entry, and the new one (within maxBytes) is never reached
        // before the bounds hold.
        while index.count > policy.maxEntries || bytes > policy.maxBytes, let victim = oldest, victim != position {
            remove(victim)
            evicted += 1
        }
        evictions += evicted
        return evicted
    }

    /// Removes every entry, or those of one public model; returns how many.
    @discardableResult
    public mutating func purge(model: String? = nil) -> Int {
        guard let model else {
            let removed = index.count
            self = AnswerCache(policy: policy)
            return removed
        }
        let positions = index.values.filter { slots[$0].model == model }
        for position in positions { remove(position) }
        return positions.count
    }

    /// Removes expired entries (past their TTL and stale window) among the `limit` least recently
    /// used, where they gather; O(limit), so it can run on every insert. Returns how many went.
    @discardableResult
    public mutating func removeExpired(now: Double, limit: Int) -> Int {
        let horizon = policy.ttlSeconds + policy.serveStaleOnErrorSeconds
        var removed = 0
        var cursor = oldest
        var examined = 0
        while let position = cursor, examined < limit {
            examined += 1
            cursor = slots[position].newer
            if now - slots[position].storedAt > horizon {
                remove(position)
                removed += 1
            }
        }
        return removed
    }

    /// Takes a new policy; shrunk bounds evict at once. Returns how many entries were evicted.
    @discardableResult
    public mutating func update(policy: AnswerCachePolicy) -> Int {
        self.policy = policy
        var evicted = 0
        while index.count > policy.maxEntries || bytes > policy.maxBytes, let victim = oldest {
            remove(victim)
            evicted += 1
        }
        evictions += evicted
        return evicted
    }

    private mutating func touch(_ position: Int) {
        guard newest != position else { return }
        unlink(position)
        slots[position].older = newest
        slots[position].newer = nil
        if let newest { slots[newest].newer = position }
        newest = position
        if oldest == nil { oldest = position }
    }

    private mutating func unlink(_ position: Int) {
        let (older, newer) = (slots[position].older, slots[position].newer)
        if let older { slots[older].newer = newer } else { oldest = newer }
        if let newer { slots[newer].older = older } else { newest = older }
    }

    private mutating func remove(_ position: Int) {
        unlink(position)
        index[slots[position].key] = nil
        bytes -= slots[position].bytes
        // The slot is reused; its value goes now so its memory does not wait for that.
        slots[position].value = nil
        slots[position].key = ""
        slots[position].bytes = 0
        freeSlots.append(position)
    }
}
