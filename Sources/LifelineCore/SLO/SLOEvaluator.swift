/// Tracks every SLO's SLI in per-minute buckets and turns them into burn rates and alert
/// transitions. Pure: events and evaluations carry their time; nothing here reads a clock.
///
/// With `windowScale` below 1 every window shrinks by that factor and the buckets with them
/// (60 s × scale), so a test can watch a one-hour window fill and drain in seconds.
public struct SLOEvaluator: Sendable {
    public static let bucketSeconds = 60.0
    /// Error-budget buckets are coarser: the period is long and needs no minute precision.
    public static let budgetBucketSeconds = 3600.0

    public struct Tracked: Sendable {
        public let objective: ServiceLevelObjective
        public let rules: [BurnRateRule]
        public internal(set) var buckets: SLIBuckets
        public internal(set) var budgetBuckets: SLIBuckets
        public internal(set) var alerts: [BurnRateAlertState]
    }

    public let windowScale: Double
    public private(set) var tracked: [Tracked]

    public init(objectives: [ServiceLevelObjective], windowScale: Double = 1) {
        precondition(windowScale > 0)
        self.windowScale = windowScale
        tracked = objectives.map { objective in
            let rules = BurnRateRule.standard(periodDays: objective.periodDays, scale: windowScale)
            let longest = rules.map(\.longWindow).max() ?? 3600 * windowScale
            return Tracked(
                objective: objective, rules: rules,
                buckets: SLIBuckets(width: Self.bucketSeconds * windowScale, span: longest),
                budgetBuckets: SLIBuckets(width: Self.budgetBucketSeconds * windowScale,
                                          span: objective.periodDays * 86_400 * windowScale),
                alerts: rules.map { _ in BurnRateAlertState() })
        }
    }

    /// Counts finished requests (`count` alike) in every SLO of their model that they count for.
    public mutating func record(model: String, outcome: RequestOutcome, count: Int = 1, at now: Double) {
        for index in tracked.indices where tracked[index].objective.model == model {
            guard let good = tracked[index].objective.judge(outcome) else { continue }
            let goodCount = good ? count : 0
            tracked[index].buckets.add(good: goodCount, total: count, toBucket: tracked[index].buckets.index(at: now))
            tracked[index].budgetBuckets.add(good: goodCount, total: count, toBucket: tracked[index].budgetBuckets.index(at: now))
        }
    }

    /// One SLO at one moment: burn rate per distinct window, budget left, each rule's alert.
    public struct Status: Sendable, Equatable {
        public var objective: ServiceLevelObjective
        /// Keyed by the unscaled window's name (`5m`, `1h`, …).
        public var burnRates: [String: Double]
        /// Share of the period's error budget not yet spent (negative when overspent).
        public var budgetRemaining: Double
        public var alerts: [AlertStatus]
    }

    public struct AlertStatus: Sendable, Equatable {
        /// `slo:rule`, e.g. `chat-default:availability:burn-1h`.
        public var id: String
        public var rule: BurnRateRule
        public var longBurn: Double
        public var shortBurn: Double
        public var state: BurnRateAlertState
        public var transition: BurnRateAlertState.Transition?
        /// The rule's windows by their unscaled names, e.g. ("1h", "5m").
        public var windowNames: (long: String, short: String)

        public static func == (a: AlertStatus, b: AlertStatus) -> Bool {
            a.id == b.id && a.rule == b.rule && a.longBurn == b.longBurn && a.shortBurn == b.shortBurn && a.state == b.state
                && a.transition == b.transition && a.windowNames == b.windowNames
        }
    }

    /// The names an SLO's rings are shared under between instances.
    public static func series(slo: String, ring: String) -> String { "slo:\(slo):\(ring)" }

    /// Reads every window and advances every alert; transitions are reported once, when they
    /// happen. `peers` are the other instances' counts: windows read the whole service.
    public mutating func evaluate(at now: Double, peers: PeerCounts = PeerCounts()) -> [Status] {
        tracked.indices.map { index in
            let item = tracked[index]
            let objective = item.objective
            let minutes = item.buckets.adding(peers.buckets(series: Self.series(slo: objective.name, ring: "minute"), width: item.buckets.width))
            let hours = item.budgetBuckets.adding(peers.buckets(series: Self.series(slo: objective.name, ring: "hour"),
                                                                width: item.budgetBuckets.width))
            func burn(_ window: Double) -> Double {
                objective.burnRate(errorRatio: minutes.errorRatio(over: window, at: now))
            }
            var burnRates: [String: Double] = [:]
            var alerts: [AlertStatus] = []
            for (ruleIndex, rule) in item.rules.enumerated() {
                let names = (Self.windowName(rule.longWindow / windowScale), Self.windowName(rule.shortWindow / windowScale))
                let longBurn = burn(rule.longWindow)
                let shortBurn = burn(rule.shortWindow)
                burnRates[names.0] = longBurn
                burnRates[names.1] = shortBurn
                let transition = tracked[index].alerts[ruleIndex].advance(rule: rule, longBurn: longBurn, shortBurn: shortBurn, at: now)
                alerts.append(AlertStatus(id: "\(objective.name):\(rule.name)", rule: rule, longBurn: longBurn, shortBurn: shortBurn,
                                          state: tracked[index].alerts[ruleIndex], transition: transition, windowNames: names))
            }
            let period = objective.periodDays * 86_400 * windowScale
            let spent = hours.errorRatio(over: period, at: now) / objective.errorBudget
            return Status(objective: objective, burnRates: burnRates, budgetRemaining: 1 - spent, alerts: alerts)
        }
    }

    /// Both rings of an SLO, keeping only buckets that changed since `time` (what a store saves).
    public func snapshot(of slo: String, changedSince time: Double) -> SLIBucketSnapshot? {
        guard let item = tracked.first(where: { $0.objective.name == slo }) else { return nil }
        return SLIBucketSnapshot(
            minuteWidth: item.buckets.width, minutes: item.buckets.buckets(since: item.buckets.index(at: time)),
            hourWidth: item.budgetBuckets.width, hours: item.budgetBuckets.buckets(since: item.budgetBuckets.index(at: time)))
    }

    /// This instance's buckets that changed since `time`, every SLO, as they are shared.
    public func changedBuckets(since time: Double) -> [SeriesBucket] {
        tracked.flatMap { item in
            let longest = item.rules.map(\.longWindow).max() ?? 3600 * windowScale
            return SeriesBucket.changed(in: item.buckets, series: Self.series(slo: item.objective.name, ring: "minute"), span: longest, since: time)
                + SeriesBucket.changed(in: item.budgetBuckets, series: Self.series(slo: item.objective.name, ring: "hour"),
                                       span: item.objective.periodDays * 86_400 * windowScale, since: time)
        }
    }

    /// Puts saved buckets back after a restart or a reload. A snapshot taken with other bucket
    /// widths (a changed `window_scale`) cannot be mapped and is ignored.
    public mutating func restore(slo: String, from snapshot: SLIBucketSnapshot) {
        guard let index = tracked.firstIndex(where: { $0.objective.name == slo }) else { return }
        if snapshot.minuteWidth == tracked[index].buckets.width { tracked[index].buckets.restore(snapshot.minutes) }
        if snapshot.hourWidth == tracked[index].budgetBuckets.width { tracked[index].budgetBuckets.restore(snapshot.hours) }
    }

    /// Carries alert states over from the evaluator this one replaces (a reload): an alert
    /// firing for an SLO and rule that still exist keeps firing instead of firing anew.
    public mutating func adoptAlertStates(from previous: SLOEvaluator) {
        for index in tracked.indices {
            guard let old = previous.tracked.first(where: { $0.objective.name == tracked[index].objective.name }) else { continue }
            for (ruleIndex, rule) in tracked[index].rules.enumerated() {
                if let oldIndex = old.rules.firstIndex(where: { $0.name == rule.name }) {
                    tracked[index].alerts[ruleIndex] = old.alerts[oldIndex]
                }
            }
        }
    }

    /// Every alert's state by `slo:rule`, for a store to keep across restarts.
    public var alertStates: [String: BurnRateAlertState] {
        var states: [String: BurnRateAlertState] = [:]
        for item in tracked {
            for (ruleIndex, rule) in item.rules.enumerated() { states["\(item.objective.name):\(rule.name)"] = item.alerts[ruleIndex] }
        }
        return states
    }

    /// Puts saved alert states back after a restart; ids of SLOs or rules that no longer exist are ignored.
    public mutating func restoreAlertStates(_ states: [String: BurnRateAlertState]) {
        for index in tracked.indices {
            for (ruleIndex, rule) in tracked[index].rules.enumerated() {
                if let saved = states["\(tracked[index].objective.name):\(rule.name)"] { tracked[index].alerts[ruleIndex] = saved }
            }
        }
    }

    /// Whether the alert `slo:rule` is firing.
    public func isFiring(alert id: String) -> Bool {
        for item in tracked {
            for (ruleIndex, rule) in item.rules.enumerated() where "\(item.objective.name):\(rule.name)" == id {
                return item.alerts[ruleIndex].isFiring
            }
        }
        return false
    }

    /// `5m`, `30m`, `1h`, `6h`, `3d`: the name of an unscaled window.
    public static func windowName(_ seconds: Double) -> String {
        let rounded = seconds.rounded()
        if rounded >= 86_400, rounded.truncatingRemainder(dividingBy: 86_400) == 0 { return "\(Int(rounded / 86_400))d" }
        if rounded >= 3600, rounded.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(rounded / 3600))h" }
        if rounded >= 60, rounded.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(rounded / 60))m" }
        return "\(Int(rounded))s"
    }
}
