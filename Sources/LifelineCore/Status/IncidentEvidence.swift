/// What Lifeline measured while an incident lasted: the figures its postmortem is drafted from.
/// Pure: every observation carries its time. Counts are of requests as clients saw them (a
/// failure that failover hid is a success here, and shows up as a failover instead).
public struct IncidentEvidence: Sendable, Equatable, Codable {
    /// Distinct callers are counted up to this many; more is reported as "at least".
    public static let callersCounted = 10_000

    public var requests = 0
    public var failedRequests = 0
    /// Answered, but with the first token later than the latency threshold.
    public var slowRequests = 0
    public var callers: Set<String> = []
    public var callersCapped = false
    /// Completion tokens of answers that failed part-way: text the client received and lost.
    public var tokensLost = 0
    public var firstFailureAt: Double?
    public var lastFailureAt: Double?
    public var slowestFirstTokenSeconds = 0.0
    /// The worst window the status page saw, over every affected component.
    public var worstErrorShare = 0.0
    public var worstErrorShareAt: Double?
    public var worstSlowShare = 0.0
    /// Failovers by phase (`before_first_byte`, `mid_stream`).
    public var failovers: [String: Int] = [:]
    public var firstFailoverAt: Double?
    /// Deployment → times outlier detection ejected it, and the first time.
    public var ejections: [String: Int] = [:]
    public var firstEjectionAt: [String: Double] = [:]
    /// Deployments that answered requests during the incident.
    public var servingDeployments: Set<String> = []
    /// Deployment → outcome (`error_5xx`, `timeout`, `fault`, …) → failed attempts.
    public var upstreamFailures: [String: [String: Int]] = [:]

    public init() {}

    /// One finished request that counts toward the incident's components.
    public mutating func record(_ request: ObservedRequest) {
        guard let available = request.available else { return }
        requests += 1
        if let deployment = request.deployment { servingDeployments.insert(deployment) }
        if let phase = request.failoverPhase {
            failovers[phase, default: 0] += 1
            if firstFailoverAt == nil { firstFailoverAt = request.at }
        }
        if available {
            if request.slow { slowRequests += 1 }
            if let ttft = request.firstTokenSeconds { slowestFirstTokenSeconds = max(slowestFirstTokenSeconds, ttft) }
            return
        }
        failedRequests += 1
        noteFailure(request)
    }

    /// What a failed request tells beyond the counts: who it failed, what it lost, when.
    private mutating func noteFailure(_ request: ObservedRequest) {
        tokensLost += request.completionTokens
        firstFailureAt = min(firstFailureAt ?? request.at, request.at)
        lastFailureAt = max(lastFailureAt ?? request.at, request.at)
        if let caller = request.caller, !callers.contains(caller) {
            if callers.count < Self.callersCounted { callers.insert(caller) } else { callersCapped = true }
        }
    }

    /// The status page's window for one affected component at one evaluation; returns whether
    /// it was worse than anything seen before.
    @discardableResult
    public mutating func observe(_ figures: ComponentFigures, at now: Double) -> Bool {
        guard figures.requests > 0 else { return false }
        var worse = false
        if figures.errorShare > worstErrorShare {
            worstErrorShare = figures.errorShare
            worstErrorShareAt = now
            worse = true
        }
        if figures.slowShare > worstSlowShare {
            worstSlowShare = figures.slowShare
            worse = true
        }
        return worse
    }

    public mutating func recordEjection(deployment: String, at now: Double) {
        ejections[deployment, default: 0] += 1
        if firstEjectionAt[deployment] == nil { firstEjectionAt[deployment] = now }
    }

    public mutating func recordUpstreamFailure(deployment: String, outcome: String) {
        upstreamFailures[deployment, default: [:]][outcome, default: 0] += 1
    }

    /// Every deployment the evidence names.
    public var involvedDeployments: [String] {
        servingDeployments.union(ejections.keys).union(upstreamFailures.keys).sorted()
    }

    /// Counts already in the status window when an automatic incident opens: its first symptoms.
    /// `failures` are the failed requests seen in that window (as many as were kept): they count
    /// their callers, tokens lost and the first and last failure, not again toward the totals.
    public mutating func seed(failed: Int, total: Int, since start: Double, failures: [ObservedRequest] = []) {
        guard requests == 0, total > 0 else { return }
        requests = total
        failedRequests = failed
        if failed > 0 { firstFailureAt = start }
        for request in failures where request.available == false {
            if let deployment = request.deployment { servingDeployments.insert(deployment) }
            noteFailure(request)
        }
    }

    public var errorShare: Double { requests == 0 ? 0 : Double(failedRequests) / Double(requests) }
}

/// One finished request as the incident sees it.
public struct ObservedRequest: Sendable, Equatable {
    public var at: Double
    /// true answered, false failed by the service, nil not counted (a client error).
    public var available: Bool?
    public var slow: Bool
    public var firstTokenSeconds: Double?
    public var caller: String?
    public var deployment: String?
    public var failoverPhase: String?
    public var completionTokens: Int

    public init(at: Double, available: Bool?, slow: Bool = false, firstTokenSeconds: Double? = nil, caller: String? = nil,
                deployment: String? = nil, failoverPhase: String? = nil, completionTokens: Int = 0)
    {
        self.at = at
        self.available = available
        self.slow = slow
        self.firstTokenSeconds = firstTokenSeconds
        self.caller = caller
        self.deployment = deployment
        self.failoverPhase = failoverPhase
        self.completionTokens = completionTokens
    }
}
