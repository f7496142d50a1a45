public enum AlertSeverity: String, Sendable, Equatable, CaseIterable {
    /// Wake someone: the budget will be gone within days.
    case page
    /// Look at it during working hours.
    case ticket
}

/// One multi-window burn-rate condition (the SRE workbook's alerting on SLOs, section 6): fire
/// when the burn rate is at least `threshold` over both the long and the short window. The long
/// window proves the burn is significant; the short one that it is still going on, so the alert
/// also stops soon after the problem does.
public struct BurnRateRule: Sendable, Equatable {
    /// `burn-1h`, `burn-6h`, `burn-3d`: named for the long window, unscaled.
    public var name: String
    public var severity: AlertSeverity
    public var longWindow: Double
    public var shortWindow: Double
    public var threshold: Double

    public init(name: String, severity: AlertSeverity, longWindow: Double, shortWindow: Double, threshold: Double) {
        self.name = name
        self.severity = severity
        self.longWindow = longWindow
        self.shortWindow = shortWindow
        self.threshold = threshold
    }

    /// The workbook's three rules. Each threshold is the burn rate that spends a given share of
    /// the period's budget within the long window — 2 % in 1 h, 5 % in 6 h, 10 % in 3 days —
    /// which over 30 days gives the familiar 14.4, 6 and 1. Windows are multiplied by `scale`
    /// (1 in production; tests shrink hours to seconds).
    public static func standard(periodDays: Double, scale: Double = 1) -> [BurnRateRule] {
        let periodHours = periodDays * 24
        func rule(_ name: String, _ severity: AlertSeverity, longHours: Double, shortMinutes: Double, budgetShare: Double) -> BurnRateRule {
            BurnRateRule(name: name, severity: severity, longWindow: longHours * 3600 * scale, shortWindow: shortMinutes * 60 * scale,
                         threshold: budgetShare * periodHours / longHours)
        }
        return [
            rule("burn-1h", .page, longHours: 1, shortMinutes: 5, budgetShare: 0.02),
            rule("burn-6h", .page, longHours: 6, shortMinutes: 30, budgetShare: 0.05),
            rule("burn-3d", .ticket, longHours: 72, shortMinutes: 360, budgetShare: 0.10),
        ]
    }

    /// Whether a burn rate reaches the threshold. The tolerance absorbs floating-point error:
    /// 1.44 % errors against a 99.9 % target is a burn of exactly 14.4, not 14.399999….
    public func reaches(_ burnRate: Double) -> Bool {
        burnRate >= threshold * (1 - 1e-9)
    }
}

/// One rule's alert for one SLO: inactive, or firing since a time.
///
/// It fires as soon as both windows reach the threshold. It resolves only after both windows
/// have stayed below the threshold for the short window's length: a burn rate hovering at the
/// threshold keeps one alert open instead of a stream of fire-and-resolve pairs.
public struct BurnRateAlertState: Sendable, Equatable {
    public private(set) var firingSince: Double?
    /// While firing: since when both windows have been below the threshold.
    public private(set) var quietSince: Double?

    public init() {}

    /// A state saved before a restart: an alert still firing keeps its episode instead of firing anew.
    public init(firingSince: Double?, quietSince: Double?) {
        self.firingSince = firingSince
        self.quietSince = firingSince == nil ? nil : quietSince
    }

    public var isFiring: Bool { firingSince != nil }

    public enum Transition: Sendable, Equatable {
        case fired(at: Double)
        case resolved(firedAt: Double, at: Double)
    }

    public mutating func advance(rule: BurnRateRule, longBurn: Double, shortBurn: Double, at now: Double) -> Transition? {
        let longHigh = rule.reaches(longBurn)
        let shortHigh = rule.reaches(shortBurn)
        guard let since = firingSince else {
            guard longHigh, shortHigh else { return nil }
            firingSince = now
            quietSince = nil
            return .fired(at: now)
        }
        if longHigh || shortHigh {
            quietSince = nil
            return nil
        }
        let quiet = quietSince ?? now
        quietSince = quiet
        guard now - quiet >= rule.shortWindow else { return nil }
        firingSince = nil
        quietSince = nil
        return .resolved(firedAt: since, at: now)
    }
}
