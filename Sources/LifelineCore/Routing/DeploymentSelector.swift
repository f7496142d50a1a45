/// A deployment as routing sees it.
public struct RoutingCandidate: Sendable, Equatable {
    public var priority: Int
    public var weight: Double
    /// False while drained, ejected or otherwise unfit for new requests.
    public var isAvailable: Bool

    public init(priority: Int, weight: Double, isAvailable: Bool = true) {
        self.priority = priority
        self.weight = weight
        self.isAvailable = isAvailable
    }
}

/// Orders deployments for one request's attempts.
public enum DeploymentSelector {
    /// Indices of available candidates in attempt order: lowest priority number first; within a
    /// priority, a weighted random order without replacement (so load spreads by weight and a
    /// retry never repeats a deployment while another remains).
    public static func attemptOrder(_ candidates: [RoutingCandidate], using random: inout some RandomNumberGenerator) -> [Int] {
        let available = candidates.indices.filter { candidates[$0].isAvailable }
        let priorities = Set(available.map { candidates[$0].priority }).sorted()
        var order: [Int] = []
        order.reserveCapacity(available.count)
        for priority in priorities {
            var group = available.filter { candidates[$0].priority == priority }
            while !group.isEmpty {
                let total = group.reduce(0.0) { $0 + max(candidates[$1].weight, 0) }
                var pick = 0
                if total > 0 {
                    var point = Double.random(in: 0..<total, using: &random)
                    for (position, index) in group.enumerated() {
                        point -= max(candidates[index].weight, 0)
                        if point < 0 { pick = position; break }
                    }
                }
                order.append(group.remove(at: pick))
            }
        }
        return order
    }
}
