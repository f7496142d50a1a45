/// Good and total events of one SLI in one time bucket `[index × width, (index + 1) × width)`.
public struct SLIBucket: Sendable, Equatable, Hashable {
    public var index: Int64
    public var good: Int
    public var total: Int

    public init(index: Int64, good: Int, total: Int) {
        self.index = index
        self.good = good
        self.total = total
    }
}

/// A ring of fixed-width buckets counting good and total events, long enough to answer for any
/// window up to `span`. Memory is fixed (`span / width` buckets) whatever the traffic; a window
/// is read to bucket precision, the current (partial) bucket included.
public struct SLIBuckets: Sendable, Equatable {
    public let width: Double
    private var slots: [SLIBucket]

    /// - Parameters:
    ///   - width: bucket width in seconds (60 s in production).
    ///   - span: the longest window that will be asked for, in seconds.
    public init(width: Double, span: Double) {
        precondition(width > 0 && span > 0)
        self.width = width
        let count = Int((span / width).rounded(.up)) + 1
        slots = Array(repeating: SLIBucket(index: -1, good: 0, total: 0), count: count)
    }

    public func index(at now: Double) -> Int64 { Int64((now / width).rounded(.down)) }

    public mutating func record(good: Bool, at now: Double) {
        add(good: good ? 1 : 0, total: 1, toBucket: index(at: now))
    }

    public mutating func add(good: Int, total: Int, toBucket index: Int64) {
        let slot = self.slot(index)
        if slots[slot].index != index { slots[slot] = SLIBucket(index: index, good: 0, total: 0) }
        slots[slot].good += good
        slots[slot].total += total
    }

    /// Events in the last `window` seconds: the `window / width` buckets ending with the current one.
    public func counts(over window: Double, at now: Double) -> (good: Int, total: Int) {
        let newest = index(at: now)
        let length = min(Int64(slots.count), max(1, Int64((window / width).rounded())))
        var good = 0
        var total = 0
        var bucket = newest - length + 1
        while bucket <= newest {
            let slot = slots[self.slot(bucket)]
            if slot.index == bucket {
                good += slot.good
                total += slot.total
            }
            bucket += 1
        }
        return (good, total)
    }

    /// Share of bad events over the window; 0 when there were none (no traffic burns no budget).
    public func errorRatio(over window: Double, at now: Double) -> Double {
        let (good, total) = counts(over: window, at: now)
        return total == 0 ? 0 : Double(total - good) / Double(total)
    }

    /// Non-empty buckets from `index` on, oldest first (what a store saves).
    public func buckets(since index: Int64) -> [SLIBucket] {
        slots.filter { $0.index >= index && $0.index >= 0 && $0.total > 0 }.sorted { $0.index < $1.index }
    }

    /// Puts saved buckets back; ones too old for the ring, or overwritten by newer ones, are dropped.
    public mutating func restore(_ saved: [SLIBucket]) {
        for bucket in saved.sorted(by: { $0.index < $1.index }) where bucket.index >= 0 {
            let slot = self.slot(bucket.index)
            if slots[slot].index > bucket.index { continue }
            slots[slot] = bucket
        }
    }

    private func slot(_ index: Int64) -> Int {
        let count = Int64(slots.count)
        return Int(((index % count) + count) % count)
    }
}
