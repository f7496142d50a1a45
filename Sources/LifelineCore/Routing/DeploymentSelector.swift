/// A deployment as routing sees it.
public struct RoutingCandidate: Sendable, Equatable {
    public var priority: Int
    public var weight: Double
    /// False while drained, ejected or otherwise unfit for new requests.
    public var isAvailable: Bool
    /// Attempts it has in progress now.
    public var inFlight: Int

    public init(priority: Int, weight: Double, isAvailable: Bool = true, inFlight: Int = 0) {
        self.priority = priority
        self.weight = weight
        self.isAvailable = isAvailable
        self.inFlight = inFlight
    }
}

/// Orders deployments for one request's attempts.
public enum DeploymentSelector {
    /// Indices of available candidates in attempt order: lowest priority number first. Within a
    /// priority, the first is the one with the fewest attempts in flight for its weight (ties,
    /// as when nothing is in flight, drawn by weight), and the rest follow in a weighted random
    /// order without replacement. So sequential traffic splits by weight, concurrent traffic
    /// keeps each deployment's share of the work in flight at its weight (a random draw alone
    /// leaves one upstream queueing while another has room), and a retry never repeats a
    /// deployment while another remains.
    public static func attemptOrder(_ candidates: [RoutingCandidate], using random: inout some RandomNumberGenerator) -> [Int] {
        let available = candidates.indices.filter { candidates[$0].isAvailable }
        let priorities = Set(available.map { candidates[$0].priority }).sorted()
        var order: [Int] = []
        order.reserveCapacity(available.count)
        for priority in priorities {
            var group = available.filter { candidates[$0].priority == priority }
            let weighted = group.filter { candidates[$0].weight > 0 }
            let load = { (index: Int) in Double(candidates[index].inFlight) / candidates[index].weight }
            if let least = weighted.map(load).min() {
                let first = draw(weighted.filter { load($0) == least }, candidates, using: &random)
                order.append(first)
                group.removeAll { $0 == first }
            }
            while !group.isEmpty {
                let pick = draw(group, candidates, using: &random)
                order.append(pick)
                group.removeAll { $0 == pick }
            }
        }
        return order
    }

    /// One of `group`, drawn with probability proportional to weight (the first when none has any).
    private static func draw(_ group: [Int], _ candidates: [RoutingCandidate], using random: inout some RandomNumberGenerator) -> Int {
        let total = group.reduce(0.0) { $0 + max(candidates[$1].weight, 0) }
        guard total > 0 else { return group[0] }
        var point = Double.random(in: 0..<total, using: &random)
        for index in group {
            point -= max(candidates[index].weight, 0)
            if point < 0 { return index }
        }
        return group[group.count - 1]
    }
}
