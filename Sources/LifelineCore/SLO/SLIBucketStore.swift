import Synchronization

/// The saved buckets of one SLO: the minute ring (burn-rate windows) and the hour ring (budget).
public struct SLIBucketSnapshot: Sendable, Equatable {
    public var minuteWidth: Double
    public var minutes: [SLIBucket]
    public var hourWidth: Double
    public var hours: [SLIBucket]

    public init(minuteWidth: Double, minutes: [SLIBucket], hourWidth: Double, hours: [SLIBucket]) {
        self.minuteWidth = minuteWidth
        self.minutes = minutes
        self.hourWidth = hourWidth
        self.hours = hours
    }
}

/// Where SLI buckets are kept between evaluations, so that a reload (and, with a persistent
/// store, a restart) does not forget the error budget already spent.
///
/// `save` upserts: buckets replace stored ones with the same index and width; the others stay.
public protocol SLIBucketStore: Sendable {
    func load(slo: String) -> SLIBucketSnapshot?
    func save(slo: String, _ snapshot: SLIBucketSnapshot)
    /// Alert states by `slo:rule`, so a restart neither re-fires a firing alert nor forgets to resolve it.
    func loadAlerts() -> [String: SavedAlert]
    /// Replaces the saved alert states.
    func saveAlerts(_ alerts: [String: SavedAlert])
}

/// One alert's state as a store keeps it: the rule's state and the peak burn of its episode.
public struct SavedAlert: Sendable, Equatable {
    public var state: BurnRateAlertState
    public var peakBurn: Double

    public init(state: BurnRateAlertState, peakBurn: Double) {
        self.state = state
        self.peakBurn = peakBurn
    }
}

/// Keeps buckets in memory: they survive reloads, not restarts.
public final class InMemorySLIBucketStore: SLIBucketStore {
    /// Per series; enough for the minute ring (3 days) and the hour ring of a year-long period.
    public static let bucketsPerSeries = 10_000
    private let saved = Mutex<[String: SLIBucketSnapshot]>([:])
    private let alerts = Mutex<[String: SavedAlert]>([:])

    public init() {}

    public func loadAlerts() -> [String: SavedAlert] { alerts.withLock { $0 } }
    public func saveAlerts(_ alerts: [String: SavedAlert]) { self.alerts.withLock { $0 = alerts } }

    public func load(slo: String) -> SLIBucketSnapshot? { saved.withLock { $0[slo] } }

    public func save(slo: String, _ snapshot: SLIBucketSnapshot) {
        saved.withLock { all in
            guard var current = all[slo], current.minuteWidth == snapshot.minuteWidth, current.hourWidth == snapshot.hourWidth else {
                all[slo] = snapshot
                return
            }
            current.minutes = Self.merge(current.minutes, snapshot.minutes)
            current.hours = Self.merge(current.hours, snapshot.hours)
            all[slo] = current
        }
    }

    static func merge(_ stored: [SLIBucket], _ newer: [SLIBucket]) -> [SLIBucket] {
        var byIndex: [Int64: SLIBucket] = [:]
        for bucket in stored { byIndex[bucket.index] = bucket }
        for bucket in newer { byIndex[bucket.index] = bucket }
        return Array(byIndex.values.sorted { $0.index < $1.index }.suffix(bucketsPerSeries))
    }
}
