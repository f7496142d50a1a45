/// A component's state, with Statuspage's names. Ordered by how bad it is for users;
/// `underMaintenance` is planned and sits apart from the failure ladder.
public enum ComponentStatus: String, Sendable, CaseIterable, Comparable {
    case operational
    case degradedPerformance = "degraded_performance"
    case partialOutage = "partial_outage"
    case majorOutage = "major_outage"
    case underMaintenance = "under_maintenance"

    /// 0 operational … 3 major outage; maintenance ranks as operational (it opens no incident).
    public var severity: Int {
        switch self {
        case .operational, .underMaintenance: 0
        case .degradedPerformance: 1
        case .partialOutage: 2
        case .majorOutage: 3
        }
    }

    public static func < (lhs: ComponentStatus, rhs: ComponentStatus) -> Bool { lhs.severity < rhs.severity }

    /// Words for people, shown next to the colour on the page.
    public var label: String {
        switch self {
        case .operational: "Operational"
        case .degradedPerformance: "Degraded performance"
        case .partialOutage: "Partial outage"
        case .majorOutage: "Major outage"
        case .underMaintenance: "Under maintenance"
        }
    }

    /// The incident impact this status stands for.
    public var impact: IncidentImpact {
        switch self {
        case .operational, .underMaintenance: .none
        case .degradedPerformance: .minor
        case .partialOutage: .major
        case .majorOutage: .critical
        }
    }
}

/// When a component's recent traffic counts as degraded or out. Shares are of client-visible
/// outcomes over `windowSeconds`; latency compares the `latencyQuantile` of time to first token
/// with `latencyThresholdSeconds` (via the share of slower answers, so no samples are kept).
public struct StatusThresholds: Sendable, Equatable {
    /// Short enough that most requests failing shows as a major outage within 15 s (half the window).
    public var windowSeconds = 30.0
    /// Fewer requests than this in the window say nothing either way (status stays operational).
    public var minimumRequests = 5
    public var degradedErrorShare = 0.02
    public var partialOutageErrorShare = 0.1
    public var majorOutageErrorShare = 0.5
    public var latencyQuantile = 0.95
    public var latencyThresholdSeconds = 5.0

    public init() {}
}

/// What a component's window holds, in plain figures.
public struct ComponentFigures: Sendable, Equatable {
    public var requests: Int
    /// Share of counted requests the service failed (5xx or shed).
    public var errorShare: Double
    /// Share of answered requests whose first token came later than the threshold.
    public var slowShare: Double

    public init(requests: Int, errorShare: Double, slowShare: Double) {
        self.requests = requests
        self.errorShare = errorShare
        self.slowShare = slowShare
    }
}

/// One thing on the status page: a public model, or the API or chat as a whole.
public struct StatusComponent: Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String
    public var position: Int

    public init(name: String, description: String, position: Int) {
        self.id = StableID.make("component:\(name)")
        self.name = name
        self.description = description
        self.position = position
    }
}

/// Statuspage-style ids (lowercase letters and digits, 12 long) derived from a seed, so the same
/// thing keeps its id across restarts without storing it.
public enum StableID {
    public static func make(_ seed: String) -> String {
        // FNV-1a, 64 bits: stable across runs and platforms, unlike `Hasher`.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in seed.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")
        var text = ""
        for _ in 0..<12 {
            text.append(alphabet[Int(hash % 36)])
            hash /= 36
            if hash == 0 { hash = 0x9e37_79b9_7f4a_7c15 &* UInt64(text.count) }
        }
        return text
    }
}
