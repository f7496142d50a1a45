/// When automatic incidents open, update, move to monitoring and resolve. The worse users have it,
/// the sooner the page says so: a major outage opens an incident after `openAfterMajorOutage`, a
/// partial outage after `openAfterPartialOutage`, a degradation after `openAfter`. Recovery takes
/// `monitorAfter` + `resolveAfter` once the figures are normal again.
///
/// With the defaults and `StatusThresholds`' 30 s window, evaluated every 5 s: a major outage is
/// public within 20–30 s, a partial one within about 35–45 s, a degradation within about a minute;
/// an incident resolves about 4 minutes after recovery (the window draining, 30 s, then 180 s of
/// quiet), within the promised 5.
public struct IncidentPolicy: Sendable, Equatable {
    /// A component must have been worse than operational this long before a degradation opens an
    /// incident (a blip shorter than this opens none).
    public var openAfterSeconds = 45.0
    /// …this long when it is a partial outage…
    public var openAfterPartialOutageSeconds = 30.0
    /// …and this long when most requests fail (a major outage).
    public var openAfterMajorOutageSeconds = 20.0
    /// Figures must stay recovered this long before the incident moves to monitoring.
    public var monitorAfterSeconds = 30.0
    /// …and this much longer, quietly, before it resolves.
    public var resolveAfterSeconds = 180.0
    /// How often an open incident gets an update while it lasts.
    public var updateIntervalSeconds = 300.0
    /// Automatic incidents start as drafts until an operator publishes them.
    public var requireApproval = false

    public init() {}

    /// How long a problem that is now `status` must have lasted to open (or reopen) an incident: its
    /// own delay, or a milder status's when that is shorter, so a worse status never waits longer.
    public func openAfter(_ status: ComponentStatus) -> Double {
        switch status {
        case .majorOutage: min(openAfterMajorOutageSeconds, openAfterPartialOutageSeconds, openAfterSeconds)
        case .partialOutage: min(openAfterPartialOutageSeconds, openAfterSeconds)
        case .operational, .degradedPerformance, .underMaintenance: openAfterSeconds
        }
    }
}

/// The automatic incident state machine: one real event is one incident. Time-based hysteresis
/// on both edges — worse for `openAfter(status)` to open (or to reopen from monitoring), counted
/// from when the problem began and judged by how bad it is now; recovered for
/// `monitorAfter` to monitor, quiet for `resolveAfter` more to resolve — so a status that
/// flickers at a threshold neither opens a string of incidents nor flips the open one back and
/// forth. Pure: advanced by `evaluate` with the statuses, figures and time.
public struct IncidentTracker: Sendable {
    public var policy: IncidentPolicy
    public private(set) var incident: Incident?
    private var worseSince: Double?
    private var betterSince: Double?
    private var lastUpdateAt = 0.0
    private var lastAffected: [String: ComponentStatus] = [:]
    private var windowSeconds: Double

    public init(policy: IncidentPolicy, windowSeconds: Double) {
        self.policy = policy
        self.windowSeconds = windowSeconds
    }

    /// Takes over an unresolved automatic incident after a restart; it resolves as usual once figures are fine.
    public mutating func adopt(_ open: Incident, at now: Double) {
        guard open.automatic, !open.isResolved else { return }
        incident = open
        lastUpdateAt = open.updatedAt
        lastAffected = open.updates.last?.affected ?? [:]
        if open.status == .monitoring { betterSince = now - policy.monitorAfterSeconds }
    }

    /// An operator changed the incident (status, text, publication): keep their version.
    /// Resolving it by hand ends it here too; a problem still present must then last
    /// `openAfter(status)` again before a new incident opens.
    public mutating func operatorChanged(_ changed: Incident, at now: Double) {
        guard changed.id == incident?.id else { return }
        if changed.isResolved {
            incident = nil
            if worseSince != nil { worseSince = now }
        } else {
            incident = changed
        }
    }

    /// Advances the machine; returns the incident when it opened or changed.
    public mutating func evaluate(statuses: [String: ComponentStatus], figures: [String: ComponentFigures], at now: Double) -> Incident? {
        let affected = statuses.filter { $0.value.severity > 0 }
        let worst = affected.values.max() ?? .operational
        if worst.severity > 0 {
            betterSince = nil
            if worseSince == nil { worseSince = now }
        } else {
            worseSince = nil
            if betterSince == nil { betterSince = now }
        }
        // A microsecond of slack so evaluations on a fixed tick land on the boundary, not just before it.
        let worseFor = worseSince.map { now - $0 + 1e-6 } ?? -1
        let betterFor = betterSince.map { now - $0 + 1e-6 } ?? -1

        guard var current = incident else {
            guard worseFor >= policy.openAfter(worst) else { return nil }
            let id = StableID.make("incident:auto:\(worseSince ?? now)")
            var opened = Incident(id: id, name: Self.title(affected), status: .investigating, impact: worst.impact, createdAt: now,
                                  components: affected.keys.sorted(), automatic: true, published: !policy.requireApproval)
            opened.startedAt = worseSince ?? now
            opened.add(status: .investigating, body: "We are investigating. " + describe(affected, figures), at: now, affected: affected)
            return remember(opened, affected, now)
        }

        switch current.status {
        case .investigating, .identified:
            if betterFor >= policy.monitorAfterSeconds {
                current.add(status: .monitoring, body: "Error rates and response times are back to normal for \(Self.seconds(betterFor)). "
                    + "We are monitoring.", at: now)
                return remember(current, [:], now)
            }
            guard worst.severity > 0 else { return nil }
            let spread = !Set(affected.keys).isSubset(of: Set(lastAffected.keys))
            let worsened = affected.contains { name, status in status > (lastAffected[name] ?? .operational) }
            guard spread || worsened || now - lastUpdateAt + 1e-6 >= policy.updateIntervalSeconds else { return nil }
            current.impact = max(current.impact, worst.impact)
            current.add(status: current.status, body: (worsened || spread ? "The problem has grown. " : "Still under way. ")
                + describe(affected, figures), at: now, affected: affected)
            return remember(current, affected, now)
        case .monitoring:
            if worseFor >= policy.openAfter(worst) {
                current.impact = max(current.impact, worst.impact)
                current.add(status: .investigating, body: "The problem is back. " + describe(affected, figures), at: now, affected: affected)
                return remember(current, affected, now)
            }
            guard betterFor >= policy.monitorAfterSeconds + policy.resolveAfterSeconds else { return nil }
            current.add(status: .resolved, body: "This incident has been resolved: error rates and response times have stayed normal for "
                + "\(Self.seconds(betterFor)).", at: now)
            incident = nil
            lastAffected = [:]
            return current
        case .resolved:
            incident = nil
            return nil
        }
    }

    private mutating func remember(_ changed: Incident, _ affected: [String: ComponentStatus], _ now: Double) -> Incident {
        incident = changed
        lastUpdateAt = now
        if !affected.isEmpty { lastAffected = affected }
        return changed
    }

    /// "Errors on chat-default and API" — names the models first, as users know them.
    static func title(_ affected: [String: ComponentStatus]) -> String {
        let names = affected.keys.sorted { (rank($0), $0) < (rank($1), $1) }
        let worst = affected.values.max() ?? .degradedPerformance
        let what = worst == .degradedPerformance ? "Degraded performance" : "Elevated errors"
        return "\(what) on \(names.prefix(3).joined(separator: ", "))\(names.count > 3 ? " and more" : "")"
    }

    private static func rank(_ name: String) -> Int {
        name == StatusBoard.apiComponent ? 1 : name == StatusBoard.chatComponent ? 2 : 0
    }

    /// Plain words: each affected component, its status, error share and slow share over the window.
    func describe(_ affected: [String: ComponentStatus], _ figures: [String: ComponentFigures]) -> String {
        affected.keys.sorted { (Self.rank($0), $0) < (Self.rank($1), $1) }.map { name in
            let status = affected[name]!
            guard let figure = figures[name] else { return "\(name): \(status.label.lowercased())." }
            return "\(name): \(status.label.lowercased()) — \(Self.percent(figure.errorShare)) of \(figure.requests) requests failed "
                + "in the last \(Self.seconds(windowSeconds)); \(Self.percent(figure.slowShare)) of answers were slow to start."
        }.joined(separator: " ")
    }

    static func percent(_ share: Double) -> String {
        let value = share * 100
        return value >= 10 || value == 0 ? "\(Int(value.rounded())) %" : "\((value * 10).rounded() / 10) %"
    }

    static func seconds(_ value: Double) -> String {
        if value >= 120 { return "\(Int((value / 60).rounded())) minutes" }
        if value >= 10 { return "\(Int(value.rounded())) seconds" }
        return "\((value * 10).rounded() / 10) s"
    }
}
