/// Every component's status from the traffic users saw. Each finished request counts once, as
/// returned to the client: a failure hidden by failover is a success here. Two SLI bucket rings
/// per component (the same `SLIBuckets` the SLOs use): availability (good = not failed by the
/// service) and latency (good = first token within the threshold).
public struct StatusBoard: Sendable {
    public static let apiComponent = "API"
    public static let chatComponent = "Chat"

    public private(set) var components: [StatusComponent]
    public var thresholds: StatusThresholds
    private var availability: [String: SLIBuckets] = [:]
    private var latency: [String: SLIBuckets] = [:]
    private let availabilityJudge = ServiceLevelObjective(model: "", kind: .availability, target: 0.99)

    /// - Parameter models: the public models, in the order they are shown after API and Chat.
    public init(models: [String], thresholds: StatusThresholds) {
        self.thresholds = thresholds
        var components = [
            StatusComponent(name: Self.apiComponent, description: "The OpenAI- and Anthropic-compatible inference API.", position: 1),
            StatusComponent(name: Self.chatComponent, description: "Chat completions and messages, as the chat page uses them.", position: 2),
        ]
        for (index, model) in models.enumerated() {
            components.append(StatusComponent(name: model, description: "Answers from the model \(model).", position: index + 3))
        }
        self.components = components
        let width = max(0.01, thresholds.windowSeconds / 30)
        for component in components {
            availability[component.name] = SLIBuckets(width: width, span: thresholds.windowSeconds)
            latency[component.name] = SLIBuckets(width: width, span: thresholds.windowSeconds)
        }
    }

    /// The components a request on `route` for `model` counts toward.
    public func components(route: String, model: String) -> [String] {
        var names = [Self.apiComponent]
        if route == "chat_completions" || route == "messages" || route == "responses" { names.append(Self.chatComponent) }
        if availability[model] != nil, model != Self.apiComponent, model != Self.chatComponent { names.append(model) }
        return names
    }

    /// Counts one finished request as its client saw it; returns how it was judged (nil where it
    /// does not count: a client error for availability, anything unanswered for latency).
    @discardableResult
    public mutating func record(route: String, model: String, outcome: RequestOutcome, at now: Double) -> (available: Bool?, fast: Bool?) {
        let available = availabilityJudge.judge(outcome)
        let fast: Bool? = available == true ? outcome.latencySeconds <= thresholds.latencyThresholdSeconds : nil
        for name in components(route: route, model: model) {
            if let available { availability[name]?.record(good: available, at: now) }
            if let fast { latency[name]?.record(good: fast, at: now) }
        }
        return (available, fast)
    }

    /// The names a component's rings are shared under between instances.
    public static func series(component: String, sli: String) -> String { "status:\(sli):\(component)" }

    /// A component's figures over the window; `peers` (the other instances' counts) make them the whole service's.
    public func figures(of component: String, at now: Double, peers: PeerCounts = PeerCounts()) -> ComponentFigures {
        let window = thresholds.windowSeconds
        func ring(_ rings: [String: SLIBuckets], _ sli: String) -> SLIBuckets? {
            rings[component].map { $0.adding(peers.buckets(series: Self.series(component: component, sli: sli), width: $0.width)) }
        }
        let (good, total) = ring(availability, "availability")?.counts(over: window, at: now) ?? (0, 0)
        let (fast, answered) = ring(latency, "latency")?.counts(over: window, at: now) ?? (0, 0)
        return ComponentFigures(requests: total, errorShare: total == 0 ? 0 : Double(total - good) / Double(total),
                                slowShare: answered == 0 ? 0 : Double(answered - fast) / Double(answered))
    }

    /// The status the figures call for (maintenance is applied by the caller).
    public func status(of component: String, at now: Double, peers: PeerCounts = PeerCounts()) -> ComponentStatus {
        Self.status(for: figures(of: component, at: now, peers: peers), thresholds: thresholds)
    }

    /// This instance's buckets that changed since `time`, every component, as they are shared.
    public func changedBuckets(since time: Double) -> [SeriesBucket] {
        components.flatMap { component in
            [("availability", availability), ("latency", latency)].compactMap { sli, rings in
                rings[component.name].map {
                    SeriesBucket.changed(in: $0, series: Self.series(component: component.name, sli: sli), span: thresholds.windowSeconds,
                                         since: time)
                }
            }.flatMap { $0 }
        }
    }

    public static func status(for figures: ComponentFigures, thresholds: StatusThresholds) -> ComponentStatus {
        guard figures.requests >= thresholds.minimumRequests else { return .operational }
        if figures.errorShare >= thresholds.majorOutageErrorShare { return .majorOutage }
        if figures.errorShare >= thresholds.partialOutageErrorShare { return .partialOutage }
        if figures.errorShare >= thresholds.degradedErrorShare { return .degradedPerformance }
        // The quantile is above the threshold exactly when more than (1 − q) of answers are slower.
        if figures.slowShare > 1 - thresholds.latencyQuantile + 1e-9 { return .degradedPerformance }
        return .operational
    }
}
