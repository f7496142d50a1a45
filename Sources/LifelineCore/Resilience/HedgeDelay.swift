/// When to send a hedge: the chosen percentile of recent times to first token, clamped.
///
/// Until enough answers were seen to know the percentile, it waits the maximum, so a cold
/// start never doubles load.
public struct HedgeDelay: Sendable, Equatable {
    public let percentile: Double
    public let minimum: Double
    public let maximum: Double
    private var samples: [Double] = []
    private var next = 0
    static let capacity = 256
    static let minimumSamples = 20

    public init(percentile: Double, minimum: Double, maximum: Double) {
        self.percentile = percentile
        self.minimum = minimum
        self.maximum = maximum
    }

    public mutating func record(_ seconds: Double) {
        if samples.count < Self.capacity {
            samples.append(seconds)
        } else {
            samples[next] = seconds
            next = (next + 1) % Self.capacity
        }
    }

    public var delay: Double {
        guard samples.count >= Self.minimumSamples else { return maximum }
        let sorted = samples.sorted()
        let rank = min(sorted.count - 1, max(0, Int((percentile * Double(sorted.count)).rounded(.up)) - 1))
        return min(maximum, max(minimum, sorted[rank]))
    }
}
