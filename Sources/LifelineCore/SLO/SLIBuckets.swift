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

extension SLIBuckets {
    /// This ring with `others` added in (other instances' counts of the same buckets); buckets
    /// older than what the ring holds at their slot are left out.
    public func adding(_ others: [SLIBucket]) -> SLIBuckets {
        var merged = self
        for bucket in others where bucket.index >= 0 {
            let slot = merged.slot(bucket.index)
            if merged.slots[slot].index > bucket.index { continue }
            merged.add(good: bucket.good, total: bucket.total, toBucket: bucket.index)
        }
        return merged
    }
}

/// A bucket of a named series as an instance shares it: the series (`slo:NAME:minute`,
/// `status:availability:COMPONENT`, …), its width, and when no window reads it any more.
public struct SeriesBucket: Sendable, Equatable {
    public var series: String
    public var width: Double
    public var bucket: SLIBucket
    public var keepUntil: Double

    public init(series: String, width: Double, bucket: SLIBucket, keepUntil: Double) {
        self.series = series
        self.width = width
        self.bucket = bucket
        self.keepUntil = keepUntil
    }

    /// A ring's buckets changed since `time` (the one holding `time` included), as `series`.
    static func changed(in ring: SLIBuckets, series: String, span: Double, since time: Double) -> [SeriesBucket] {
        ring.buckets(since: ring.index(at: time)).map {
            SeriesBucket(series: series, width: ring.width, bucket: $0, keepUntil: Double($0.index + 1) * ring.width + span)
        }
    }
}

/// The other instances' SLI counts as last read from the store, summed per bucket. Each row is
/// one instance's absolute count, so reading a row again replaces that instance's share.
public struct PeerCounts: Sendable {
    private struct Key: Hashable {
        var series: String
        var width: Double
        var index: Int64
    }

    private struct Row {
        var good: Int
        var total: Int
        var keepUntil: Double
    }

    /// Per bucket, each instance's row.
    private var rows: [Key: [String: Row]] = [:]
    /// Per series and width, the summed buckets by index.
    private var sums: [String: [Double: [Int64: SLIBucket]]] = [:]

    public init() {}

    /// Takes one instance's count of one bucket, replacing what that instance said of it before.
    public mutating func take(instance: String, series: String, width: Double, index: Int64, good: Int, total: Int, keepUntil: Double) {
        let key = Key(series: series, width: width, index: index)
        if let previous = rows[key]?[instance] { subtract(previous, key) }
        let row = Row(good: good, total: total, keepUntil: keepUntil)
        rows[key, default: [:]][instance] = row
        sums[series, default: [:]][width, default: [:]][index, default: SLIBucket(index: index, good: 0, total: 0)].good += good
        sums[series, default: [:]][width, default: [:]][index, default: SLIBucket(index: index, good: 0, total: 0)].total += total
    }

    /// Forgets buckets no window reads any more.
    public mutating func forget(before now: Double) {
        for (key, instances) in rows {
            for (instance, row) in instances where row.keepUntil < now {
                subtract(row, key)
                rows[key]?[instance] = nil
            }
            if rows[key]?.isEmpty == true { rows[key] = nil }
        }
    }

    private mutating func subtract(_ row: Row, _ key: Key) {
        guard var bucket = sums[key.series]?[key.width]?[key.index] else { return }
        bucket.good -= row.good
        bucket.total -= row.total
        sums[key.series]?[key.width]?[key.index] = bucket.total <= 0 && bucket.good <= 0 ? nil : bucket
    }

    /// The others' buckets of one series at one width, summed.
    public func buckets(series: String, width: Double) -> [SLIBucket] {
        guard let byIndex = sums[series]?[width] else { return [] }
        return Array(byIndex.values)
    }

    public var isEmpty: Bool { rows.isEmpty }
}
