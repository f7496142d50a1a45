/// Additive Holt-Winters: level, trend and a repeating season (24 hourly points for a daily
/// cycle), fitted by a small grid search on one-step-ahead squared error. With fewer than two
/// seasons of history it falls back to Holt's linear trend, and with fewer than six points it
/// declines to forecast. Pure and deterministic.
///
///     level_t  = α (x_t − season_{t−m}) + (1 − α)(level_{t−1} + trend_{t−1})
///     trend_t  = β (level_t − level_{t−1}) + (1 − β) trend_{t−1}
///     season_t = γ (x_t − level_t) + (1 − γ) season_{t−m}
///     forecast_{t+h} = level_t + h·trend_t + season_{t+h−m}
///
/// The prediction band is ±1.96 σ √h, σ the standard deviation of the one-step errors: a plain
/// approximation that widens with the horizon, not an exact interval.
public struct HoltWinters: Sendable, Equatable {
    public let alpha: Double
    public let beta: Double
    public let gamma: Double
    /// Season length in points; 0 for the linear (no season) model.
    public let seasonLength: Int
    public let level: Double
    public let trend: Double
    /// The season's last `seasonLength` values, the next one first.
    public let season: [Double]
    /// Standard deviation of the one-step-ahead errors.
    public let sigma: Double
    public let points: Int

    public static let minimumPoints = 6

    /// Fits the best model the history allows, or nil when it is too short.
    public static func fit(_ series: [Double], seasonLength: Int = 24) -> HoltWinters? {
        guard series.count >= minimumPoints else { return nil }
        let seasonal = seasonLength > 1 && series.count >= 2 * seasonLength
        var best: HoltWinters?
        var bestError = Double.infinity
        for alpha in [0.1, 0.3, 0.5, 0.7, 0.9] {
            for beta in [0.0, 0.05, 0.1, 0.3] {
                for gamma in seasonal ? [0.05, 0.2, 0.5] : [0.0] {
                    let (model, error) = run(series, alpha: alpha, beta: beta, gamma: gamma, seasonLength: seasonal ? seasonLength : 0)
                    if error < bestError {
                        bestError = error
                        best = model
                    }
                }
            }
        }
        return best
    }

    static func run(_ x: [Double], alpha: Double, beta: Double, gamma: Double, seasonLength m: Int) -> (HoltWinters, Double) {
        var level: Double
        var trend: Double
        var season: [Double]
        let start: Int
        if m > 0 {
            // The first season's mean sits at its middle: take the trend out of each point's
            // offset, and start the level at the season's last point.
            let first = x[0..<m].reduce(0, +) / Double(m)
            let second = x[m..<(2 * m)].reduce(0, +) / Double(m)
            trend = (second - first) / Double(m)
            let middle = Double(m - 1) / 2
            season = (0..<m).map { x[$0] - (first + trend * (Double($0) - middle)) }
            level = first + trend * middle
            start = m
        } else {
            level = x[0]
            trend = x[1] - x[0]
            season = []
            start = 1
        }
        var squared = 0.0
        var count = 0
        for t in start..<x.count {
            let seasonal = m > 0 ? season[t % m] : 0
            let forecast = level + trend + seasonal
            let error = x[t] - forecast
            squared += error * error
            count += 1
            let previous = level
            level = alpha * (x[t] - seasonal) + (1 - alpha) * (level + trend)
            trend = beta * (level - previous) + (1 - beta) * trend
            if m > 0 { season[t % m] = gamma * (x[t] - level) + (1 - gamma) * seasonal }
        }
        let sigma = count > 1 ? (squared / Double(count - 1)).squareRoot() : 0
        // Rotate so that season[0] belongs to the next point.
        let next = m > 0 ? Array(season[(x.count % m)...] + season[..<(x.count % m)]) : []
        let model = HoltWinters(alpha: alpha, beta: beta, gamma: gamma, seasonLength: m, level: level, trend: trend, season: next,
                                sigma: sigma, points: x.count)
        return (model, count > 0 ? squared / Double(count) : .infinity)
    }

    /// The forecast `h` points ahead (h ≥ 1) and its band.
    public func forecast(_ h: Int) -> (mean: Double, low: Double, high: Double) {
        let seasonal = seasonLength > 0 ? season[(h - 1) % seasonLength] : 0
        let mean = level + Double(h) * trend + seasonal
        let spread = 1.96 * sigma * Double(h).squareRoot()
        return (mean, mean - spread, mean + spread)
    }

    /// The first step ahead (1…horizon) at which the mean, the high and the low edge of the band
    /// reach `limit`; nil where it stays below within the horizon.
    public func firstReaching(_ limit: Double, horizon: Int) -> (mean: Int?, earliest: Int?, latest: Int?) {
        var mean: Int?
        var earliest: Int?
        var latest: Int?
        for h in 1...max(1, horizon) {
            let value = forecast(h)
            if earliest == nil, value.high >= limit { earliest = h }
            if mean == nil, value.mean >= limit { mean = h }
            if latest == nil, value.low >= limit { latest = h }
            if latest != nil { break }
        }
        return (mean, earliest, latest)
    }
}
