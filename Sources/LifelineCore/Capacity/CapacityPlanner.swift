/// One minute of traffic for one scope (a public model or a deployment), as stored.
public struct TrafficMinute: Sendable, Equatable {
    /// `model:NAME` or `deployment:NAME`.
    public var scope: String
    /// Unix seconds at the start of the minute.
    public var minute: Int
    public var requests: Int
    public var tokens: Int
    /// Sum of the requests' durations (for the mean latency: Little's law).
    public var busySeconds: Double
    /// The most requests in flight seen in the minute (sampled).
    public var peakConcurrency: Int
    /// Upstream answers of 429 (deployments only).
    public var rateLimited: Int

    public init(scope: String, minute: Int, requests: Int = 0, tokens: Int = 0, busySeconds: Double = 0, peakConcurrency: Int = 0,
                rateLimited: Int = 0)
    {
        self.scope = scope
        self.minute = minute
        self.requests = requests
        self.tokens = tokens
        self.busySeconds = busySeconds
        self.peakConcurrency = peakConcurrency
        self.rateLimited = rateLimited
    }

    /// Two records of the same scope and minute: counts add up, the peak is the larger.
    public mutating func merge(_ other: TrafficMinute) {
        requests += other.requests
        tokens += other.tokens
        busySeconds += other.busySeconds
        peakConcurrency = max(peakConcurrency, other.peakConcurrency)
        rateLimited += other.rateLimited
    }
}

/// Load in the three dimensions capacity is judged in.
public struct Load: Sendable, Equatable {
    public var requestsPerMinute: Double
    public var tokensPerMinute: Double
    public var concurrency: Double

    public init(requestsPerMinute: Double = 0, tokensPerMinute: Double = 0, concurrency: Double = 0) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.concurrency = concurrency
    }
}

/// What a deployment can take: configured allowances and what was learned from traffic.
public struct DeploymentLimits: Sendable, Equatable {
    public var name: String
    public var model: String
    public var configuredRequestsPerMinute: Int?
    public var configuredTokensPerMinute: Int?
    /// The adaptive concurrency limit's current value.
    public var learnedConcurrency: Int

    public init(name: String, model: String, configuredRequestsPerMinute: Int? = nil, configuredTokensPerMinute: Int? = nil,
                learnedConcurrency: Int)
    {
        self.name = name
        self.model = model
        self.configuredRequestsPerMinute = configuredRequestsPerMinute
        self.configuredTokensPerMinute = configuredTokensPerMinute
        self.learnedConcurrency = learnedConcurrency
    }
}

/// Capacity planning: current and peak load against configured and learned limits, headroom,
/// when headroom runs out (Holt-Winters on hourly history), and whether the model would still
/// fit if its largest deployment failed (N+1). Pure: history, limits and the time come in.
public enum CapacityPlanner {
    public struct DeploymentReport: Sendable, Equatable {
        public var name: String
        public var current: Load
        public var peak: Load
        /// Nil in a dimension nothing configured or observed bounds.
        public var capacity: Load
        public var capacityKnown: (requests: Bool, tokens: Bool)
        /// Share of recent upstream answers that were 429.
        public var rateLimitedShare: Double
        public var meanLatencySeconds: Double?

        public static func == (a: DeploymentReport, b: DeploymentReport) -> Bool {
            a.name == b.name && a.current == b.current && a.peak == b.peak && a.capacity == b.capacity
                && a.capacityKnown == b.capacityKnown && a.rateLimitedShare == b.rateLimitedShare && a.meanLatencySeconds == b.meanLatencySeconds
        }
    }

    public struct Forecast: Sendable, Equatable {
        /// `holt_winters` (daily season), `holt` (trend only) or `none` (too little history).
        public var method: String
        public var historyHours: Int
        /// Hours until the forecast reaches capacity: at the mean, at the band's high edge
        /// (earliest) and its low edge (latest); nil when not within the horizon.
        public var hoursToCapacity: Int?
        public var earliestHours: Int?
        public var latestHours: Int?
        public var horizonHours: Int
        /// Requests per minute expected a day ahead, with its band.
        public var nextDay: (mean: Double, low: Double, high: Double)?

        public static func == (a: Forecast, b: Forecast) -> Bool {
            a.method == b.method && a.historyHours == b.historyHours && a.hoursToCapacity == b.hoursToCapacity
                && a.earliestHours == b.earliestHours && a.latestHours == b.latestHours && a.horizonHours == b.horizonHours
                && a.nextDay?.mean == b.nextDay?.mean && a.nextDay?.low == b.nextDay?.low && a.nextDay?.high == b.nextDay?.high
        }
    }

    public struct ModelReport: Sendable, Equatable {
        public var name: String
        public var current: Load
        public var peak: Load
        public var capacity: Load
        /// 1 − peak ÷ capacity in the dimension closest to its limit; nil when no capacity is known.
        public var headroom: Double?
        /// `requests_per_minute`, `tokens_per_minute` or `concurrency`.
        public var bindingDimension: String?
        public var forecast: Forecast
        /// Whether the peak would fit with the largest deployment gone.
        public var survivesLargestFailure: Bool?
        public var warnings: [String]
        public var deployments: [DeploymentReport]
    }

    /// Minutes counted as "current".
    public static let currentMinutes = 5
    public static let horizonHours = 30 * 24

    public static func plan(models: [String: [DeploymentLimits]], history: [TrafficMinute], now: Double) -> [ModelReport] {
        let byScope = Dictionary(grouping: history, by: \.scope)
        let nowMinute = Int(now / 60) * 60
        return models.keys.sorted().map { model in
            let deployments = (models[model] ?? []).map { limits in
                report(limits, byScope["deployment:\(limits.name)"] ?? [], nowMinute: nowMinute)
            }
            return report(model: model, byScope["model:\(model)"] ?? [], deployments: deployments, nowMinute: nowMinute)
        }
    }

    static func loads(_ minutes: [TrafficMinute], nowMinute: Int) -> (current: Load, peak: Load) {
        let recent = minutes.filter { $0.minute > nowMinute - currentMinutes * 60 && $0.minute <= nowMinute }
        // The minute under way is partial: the current rate is over the last five whole minutes where there are any.
        let whole = recent.filter { $0.minute < nowMinute }
        let window = whole.isEmpty ? recent : whole
        let span = Double(max(1, Set(window.map(\.minute)).count))
        let current = Load(requestsPerMinute: Double(window.map(\.requests).reduce(0, +)) / span,
                           tokensPerMinute: Double(window.map(\.tokens).reduce(0, +)) / span,
                           concurrency: Double(recent.map(\.peakConcurrency).max() ?? 0))
        let perMinute = Dictionary(grouping: minutes, by: \.minute).values.map { group -> TrafficMinute in
            var total = group[0]
            for other in group.dropFirst() { total.merge(other) }
            return total
        }
        let peak = Load(requestsPerMinute: Double(perMinute.map(\.requests).max() ?? 0),
                        tokensPerMinute: Double(perMinute.map(\.tokens).max() ?? 0),
                        concurrency: Double(perMinute.map(\.peakConcurrency).max() ?? 0))
        return (current, peak)
    }

    static func report(_ limits: DeploymentLimits, _ minutes: [TrafficMinute], nowMinute: Int) -> DeploymentReport {
        let (current, peak) = loads(minutes, nowMinute: nowMinute)
        let requests = minutes.map(\.requests).reduce(0, +)
        let tokens = minutes.map(\.tokens).reduce(0, +)
        let latency = requests > 0 ? minutes.map(\.busySeconds).reduce(0, +) / Double(requests) : nil
        let lastHour = minutes.filter { $0.minute > nowMinute - 3600 }
        let recentRequests = lastHour.map(\.requests).reduce(0, +) + lastHour.map(\.rateLimited).reduce(0, +)
        let limited = recentRequests > 0 ? Double(lastHour.map(\.rateLimited).reduce(0, +)) / Double(recentRequests) : 0
        // Little's law: a limit of L requests in flight, each taking W seconds, serves L / W per second.
        let learnedRequests = latency.map { $0 > 0 ? Double(limits.learnedConcurrency) * 60 / $0 : Double.infinity }
        let requestCapacity = [limits.configuredRequestsPerMinute.map(Double.init), learnedRequests].compactMap { $0 }.min()
        let tokensPerRequest = requests > 0 ? Double(tokens) / Double(requests) : nil
        let learnedTokens = zip2(requestCapacity, tokensPerRequest).map { $0 * $1 }
        let tokenCapacity = [limits.configuredTokensPerMinute.map(Double.init), learnedTokens].compactMap { $0 }.min()
        return DeploymentReport(
            name: limits.name, current: current, peak: peak,
            capacity: Load(requestsPerMinute: finite(requestCapacity), tokensPerMinute: finite(tokenCapacity),
                           concurrency: Double(limits.learnedConcurrency)),
            capacityKnown: (requestCapacity.map(\.isFinite) ?? false, tokenCapacity.map(\.isFinite) ?? false),
            rateLimitedShare: limited, meanLatencySeconds: latency)
    }

    static func zip2(_ a: Double?, _ b: Double?) -> (Double, Double)? {
        guard let a, let b else { return nil }
        return (a, b)
    }

    static func finite(_ value: Double?) -> Double { value.map { $0.isFinite ? $0 : 0 } ?? 0 }

    static func report(model: String, _ minutes: [TrafficMinute], deployments: [DeploymentReport], nowMinute: Int) -> ModelReport {
        let (current, peak) = loads(minutes, nowMinute: nowMinute)
        let knownRequests = deployments.filter(\.capacityKnown.requests)
        let capacity = Load(requestsPerMinute: knownRequests.map(\.capacity.requestsPerMinute).reduce(0, +),
                            tokensPerMinute: deployments.filter(\.capacityKnown.tokens).map(\.capacity.tokensPerMinute).reduce(0, +),
                            concurrency: deployments.map(\.capacity.concurrency).reduce(0, +))
        var shares: [(String, Double)] = []
        if capacity.requestsPerMinute > 0 { shares.append(("requests_per_minute", peak.requestsPerMinute / capacity.requestsPerMinute)) }
        if capacity.tokensPerMinute > 0 { shares.append(("tokens_per_minute", peak.tokensPerMinute / capacity.tokensPerMinute)) }
        if capacity.concurrency > 0 { shares.append(("concurrency", peak.concurrency / capacity.concurrency)) }
        let binding = shares.max { $0.1 < $1.1 }
        var warnings: [String] = []

        // N+1: take away the deployment whose loss costs the most and see whether the peak still fits.
        var survives: Bool?
        if deployments.count <= 1 {
            survives = false
            warnings.append("\(model) has one deployment: no redundancy.")
        } else if let binding {
            let dimension: (Load) -> Double = switch binding.0 {
            case "requests_per_minute": \.requestsPerMinute
            case "tokens_per_minute": \.tokensPerMinute
            default: \.concurrency
            }
            let largest = deployments.max { dimension($0.capacity) < dimension($1.capacity) }!
            let remaining = dimension(capacity) - dimension(largest.capacity)
            survives = dimension(peak) <= remaining
            if survives == false {
                warnings.append("Redundancy is gone: \(model)'s peak would not fit if \(largest.name) failed "
                    + "(\(rounded(dimension(peak))) against \(rounded(remaining)) \(words(binding.0)) left).")
            }
        }
        if let binding, binding.1 >= 0.8 {
            warnings.append("\(model) reached \(Int((binding.1 * 100).rounded())) % of its \(words(binding.0)) capacity at peak.")
        }
        for deployment in deployments where deployment.rateLimitedShare >= 0.01 {
            warnings.append("\(deployment.name) answered \(Int((deployment.rateLimitedShare * 100).rounded())) % of the last hour's attempts "
                + "with 429: its real capacity is below the estimate.")
        }

        // Hourly requests per minute (mean of each hour's minutes), oldest first, gaps as zero.
        let forecast = Self.forecast(minutes, capacity: capacity.requestsPerMinute, nowMinute: nowMinute)
        return ModelReport(name: model, current: current, peak: peak, capacity: capacity, headroom: binding.map { 1 - $0.1 },
                           bindingDimension: binding?.0, forecast: forecast, survivesLargestFailure: survives, warnings: warnings,
                           deployments: deployments)
    }

    static func forecast(_ minutes: [TrafficMinute], capacity: Double, nowMinute: Int) -> Forecast {
        let currentHour = nowMinute / 3600
        guard let firstHour = minutes.map({ $0.minute / 3600 }).min() else {
            return Forecast(method: "none", historyHours: 0, horizonHours: horizonHours)
        }
        // Whole hours only: the hour under way would read low.
        let hours = Array(firstHour..<currentHour)
        var totals = [Int: Double]()
        for minute in minutes { totals[minute.minute / 3600, default: 0] += Double(minute.requests) }
        let series = hours.map { (totals[$0] ?? 0) / 60 }
        guard let model = HoltWinters.fit(series) else {
            return Forecast(method: "none", historyHours: series.count, horizonHours: horizonHours)
        }
        let reach: (mean: Int?, earliest: Int?, latest: Int?) = capacity > 0 ? model.firstReaching(capacity, horizon: horizonHours) : (nil, nil, nil)
        return Forecast(method: model.seasonLength > 0 ? "holt_winters" : "holt", historyHours: series.count, hoursToCapacity: reach.mean,
                        earliestHours: reach.earliest, latestHours: reach.latest, horizonHours: horizonHours, nextDay: model.forecast(24))
    }

    /// `requests_per_minute` → `requests per minute`.
    static func words(_ name: String) -> String { name.split(separator: "_").joined(separator: " ") }

    static func rounded(_ value: Double) -> String {
        value >= 100 ? "\(Int(value.rounded()))" : "\((value * 10).rounded() / 10)"
    }
}
