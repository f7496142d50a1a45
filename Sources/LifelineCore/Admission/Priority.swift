/// How important a request is; shedding drops `low` first and `critical` last.
public enum Priority: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    case low = 0, normal = 1, high = 2, critical = 3

    public init?(name: String) {
        switch name.lowercased() {
        case "low": self = .low
        case "normal": self = .normal
        case "high": self = .high
        case "critical": self = .critical
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .low: "low"
        case .normal: "normal"
        case .high: "high"
        case .critical: "critical"
        }
    }

    public static func < (lhs: Priority, rhs: Priority) -> Bool { lhs.rawValue < rhs.rawValue }

    /// A caller may lower its priority with a header, never raise it above its key's tier.
    public func lowered(by requested: Priority?) -> Priority {
        guard let requested else { return self }
        return min(self, requested)
    }
}
