/// A promise about one public model: a share of its requests (`target`) must be good over
/// `periodDays`. What "good" means is the SLI `kind`.
public struct ServiceLevelObjective: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Good: answered without a failure of the service. Client errors (4xx) do not count
        /// either way; 5xx and requests shed by the service are bad.
        case availability
        /// Good: an answered request whose first token (or, not streamed, whole answer) came
        /// within `thresholdSeconds`. Failed and refused requests are availability's business.
        case latency(thresholdSeconds: Double)

        public var name: String {
            switch self {
            case .availability: "availability"
            case .latency: "latency"
            }
        }
    }

    /// `model:kind`, e.g. `chat-default:availability`; the `slo` label of metrics and alerts.
    public var name: String
    public var model: String
    public var kind: Kind
    /// Share of good events promised, e.g. 0.999.
    public var target: Double
    public var periodDays: Double

    public init(model: String, kind: Kind, target: Double, periodDays: Double = 30) {
        self.name = "\(model):\(kind.name)"
        self.model = model
        self.kind = kind
        self.target = target
        self.periodDays = periodDays
    }

    /// The share of events that may be bad: 1 − target.
    public var errorBudget: Double { 1 - target }

    /// How fast the budget burns at an error ratio: 1 spends exactly the budget over the period.
    public func burnRate(errorRatio: Double) -> Double { errorRatio / errorBudget }

    /// Whether a finished request was good for this SLI, or nil when it does not count.
    public func judge(_ outcome: RequestOutcome) -> Bool? {
        switch kind {
        case .availability:
            if outcome.shedByService { return false }
            if outcome.status >= 500 { return false }
            if outcome.status >= 400 { return nil }
            return true
        case .latency(let threshold):
            guard outcome.status < 400, !outcome.shedByService else { return nil }
            return outcome.latencySeconds <= threshold
        }
    }
}

/// What an SLI needs to know about a finished request.
public struct RequestOutcome: Sendable, Equatable {
    public var status: Int
    /// Refused by the service to protect itself (load shedding), whatever the status.
    public var shedByService: Bool
    /// Time to the first token for a stream, to the whole answer otherwise.
    public var latencySeconds: Double

    public init(status: Int, shedByService: Bool = false, latencySeconds: Double = 0) {
        self.status = status
        self.shedByService = shedByService
        self.latencySeconds = latencySeconds
    }
}
