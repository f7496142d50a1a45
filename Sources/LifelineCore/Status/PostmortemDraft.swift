/// Drafts a postmortem from what an incident recorded: summary, impact in numbers, timeline
/// (first symptom, detection, each update, mitigations, recovery, resolution) and the
/// deployments involved. Plain Markdown an operator edits before publishing; the sections only
/// a person can write (cause, follow-ups) are left for them and say so.
public enum PostmortemDraft {
    public static func write(_ incident: Incident) -> String {
        let evidence = incident.evidence
        let end = incident.resolvedAt ?? incident.updatedAt
        let start = min(incident.startedAt, evidence.firstFailureAt ?? incident.startedAt)
        var lines: [String] = []

        lines.append("## Summary")
        lines.append("")
        let components = incident.components.isEmpty ? "the service" : incident.components.joined(separator: ", ")
        lines.append("\(incident.name). From \(UTCTime.dateTime(start)) to \(UTCTime.dateTime(end)) UTC "
            + "(\(UTCTime.duration(end - start))), \(components) \(incident.components.count == 1 ? "was" : "were") affected; "
            + "impact \(incident.impact.rawValue).")
        lines.append("")

        lines.append("## Impact")
        lines.append("")
        lines.append("- Duration: \(UTCTime.duration(end - start)) from the first symptom to resolution.")
        if evidence.requests > 0 {
            lines.append("- Requests: \(evidence.failedRequests) of \(evidence.requests) failed (\(percent(evidence.errorShare))); "
                + "\(evidence.slowRequests) more were slow to start.")
        } else {
            lines.append("- Requests: none were recorded while the incident lasted.")
        }
        let callers = evidence.callers.count
        lines.append("- Callers affected: \(evidence.callersCapped ? "at least " : "")\(callers) (distinct keys, or the anonymous caller, "
            + "with at least one failed request).")
        if evidence.worstErrorShare > 0 || evidence.worstSlowShare > 0 {
            var worst = "- At worst: \(percent(evidence.worstErrorShare)) of requests failed"
            if let at = evidence.worstErrorShareAt { worst += " (\(UTCTime.time(at)) UTC)" }
            worst += ", and \(percent(evidence.worstSlowShare)) of answers were slow to start."
            lines.append(worst)
        }
        if evidence.slowestFirstTokenSeconds > 0 {
            lines.append("- Slowest first token of an answered request: \(UTCTime.seconds(evidence.slowestFirstTokenSeconds)).")
        }
        lines.append("- Tokens lost: \(evidence.tokensLost) completion tokens of answers that failed part-way.")
        lines.append("")

        lines.append("## Timeline (UTC)")
        lines.append("")
        var timeline: [(at: Double, order: Int, text: String)] = []
        if incident.automatic || evidence.firstFailureAt != nil {
            timeline.append((start, 0, "First symptom: requests began to fail or slow down."))
        } else {
            timeline.append((start, 0, "Start, as the operator reported it (no failed request was recorded)."))
        }
        timeline.append((incident.createdAt, 1, incident.automatic
            ? "Detected: the incident opened automatically from client-visible error rates and latency."
            : "Detected: an operator opened the incident."))
        for update in incident.updates {
            timeline.append((update.createdAt, 2, "\(label(update.status)): \(update.body)"))
        }
        for deployment in evidence.ejections.keys.sorted() {
            let count = evidence.ejections[deployment]!
            timeline.append((evidence.firstEjectionAt[deployment] ?? start, 3,
                             "Mitigation: outlier detection ejected \(deployment)\(count > 1 ? " (\(count) times in all)" : "")."))
        }
        if let first = evidence.firstFailoverAt {
            let moved = evidence.failovers.keys.sorted().map { "\(evidence.failovers[$0]!) \($0.replacingUnderscores)" }
            timeline.append((first, 3, "Mitigation: failover moved requests to other deployments (\(moved.joined(separator: ", ")))."))
        }
        if let last = evidence.lastFailureAt {
            timeline.append((last, 4, "Recovery: the last failed request."))
        }
        // Resolution is already in the timeline when an update says so.
        if let resolved = incident.resolvedAt, !incident.updates.contains(where: { $0.status == .resolved && $0.createdAt == resolved }) {
            timeline.append((resolved, 5, "Resolved."))
        }
        for entry in timeline.sorted(by: { ($0.at, $0.order) < ($1.at, $1.order) }) {
            lines.append("- \(UTCTime.time(entry.at)) — \(entry.text)")
        }
        lines.append("")

        lines.append("## Deployments involved")
        lines.append("")
        let involved = evidence.involvedDeployments
        if involved.isEmpty { lines.append("- None recorded.") }
        for deployment in involved {
            var facts: [String] = []
            if let failures = evidence.upstreamFailures[deployment] {
                let total = failures.values.reduce(0, +)
                let kinds = failures.keys.sorted().map { "\($0.replacingUnderscores) \(failures[$0]!)" }.joined(separator: ", ")
                facts.append("\(total) failed attempt\(total == 1 ? "" : "s") (\(kinds))")
            }
            if let ejected = evidence.ejections[deployment] { facts.append("ejected \(ejected) time\(ejected == 1 ? "" : "s")") }
            if evidence.servingDeployments.contains(deployment) { facts.append("answered requests") }
            lines.append("- \(deployment): \(facts.joined(separator: ", ")).")
        }
        lines.append("")
        lines.append("## Cause and follow-up")
        lines.append("")
        lines.append("For the operator to write: what caused this, and what will keep it from happening again.")
        return lines.joined(separator: "\n")
    }

    static func label(_ status: IncidentStatus) -> String {
        switch status {
        case .investigating: "Investigating"
        case .identified: "Identified"
        case .monitoring: "Monitoring"
        case .resolved: "Resolved"
        }
    }

    static func percent(_ share: Double) -> String { IncidentTracker.percent(share) }
}

extension String {
    fileprivate var replacingUnderscores: String { split(separator: "_").joined(separator: " ") }
}

/// Wall-clock seconds as people read them, in UTC, without Foundation.
public enum UTCTime {
    /// `2026-12-01 12:34:56`.
    public static func dateTime(_ seconds: Double) -> String {
        "\(date(day: Int((seconds / 86_400).rounded(.down)))) \(time(seconds))"
    }

    /// `2026-12-01` for days since 1970.
    public static func date(day: Int) -> String {
        let (year, month, dayOfMonth) = civil(day)
        return "\(year)-\(two(month))-\(two(dayOfMonth))"
    }

    /// `12:34:56`.
    public static func time(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded(.down))
        let inDay = ((whole % 86_400) + 86_400) % 86_400
        return "\(two(inDay / 3600)):\(two(inDay % 3600 / 60)):\(two(inDay % 60))"
    }

    /// `45 s`, `4 min 7 s`, `2 h 5 min`.
    public static func duration(_ seconds: Double) -> String {
        let whole = max(0, Int(seconds.rounded()))
        if whole < 60 { return "\(whole) s" }
        if whole < 3600 { return "\(whole / 60) min \(whole % 60) s" }
        return "\(whole / 3600) h \(whole % 3600 / 60) min"
    }

    static func seconds(_ value: Double) -> String {
        value >= 10 ? "\(Int(value.rounded())) s" : "\((value * 100).rounded() / 100) s"
    }

    static func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

    /// Days since 1970-01-01 to a proleptic Gregorian date (the well-known era-based algorithm).
    static func civil(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPrime = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthPrime + 2) / 5 + 1
        let month = monthPrime < 10 ? monthPrime + 3 : monthPrime - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
