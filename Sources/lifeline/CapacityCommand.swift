import ArgumentParser
import Foundation
import LifelineWire

/// `lifeline capacity`: load against capacity per model and deployment, headroom, the forecast
/// of when it runs out, and the N+1 check.
struct Capacity: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Capacity per public model and deployment: current and peak load, limits, headroom, forecast, N+1.")
    @OptionGroup var connection: AdminConnection

    func run() async throws {
        let answer = try await connection.call(.get, "/capacity")
        if connection.json { return connection.printJSON(answer) }
        func number(_ value: JSONValue?) -> String {
            guard let value = value?.doubleValue else { return "-" }
            return value >= 100 ? String(Int(value.rounded())) : String(format: "%.1f", value)
        }
        func triple(_ row: JSONValue, _ field: String) -> String {
            "\(number(row["current"]?[field]))/\(number(row["peak"]?[field]))/\(row["capacity"]?[field]?.doubleValue == 0 ? "?" : number(row["capacity"]?[field]))"
        }
        func runsOut(_ forecast: JSONValue?) -> String {
            guard let forecast, forecast["method"] != "none" else { return "too little history" }
            guard let hours = forecast["hours_to_capacity"]?.doubleValue else {
                let horizon = Int((forecast["horizon_hours"]?.doubleValue ?? 720) / 24)
                return "not within \(horizon) days"
            }
            let earliest = forecast["earliest_hours"]?.doubleValue.map { "\(Int($0))" } ?? "?"
            let latest = forecast["latest_hours"]?.doubleValue.map { "\(Int($0))" } ?? "later"
            return "in ~\(Int(hours)) h (\(earliest)–\(latest) h)"
        }
        var rows: [[String]] = []
        for model in answer["models"]?.arrayValue ?? [] {
            let headroom = model["headroom"]?.doubleValue.map { "\(Int(($0 * 100).rounded())) %" } ?? "?"
            let redundancy = model["survives_largest_failure"]?.boolValue.map { $0 ? "ok" : "NO" } ?? "?"
            rows.append([text(model["model"]), triple(model, "requests_per_second"), triple(model, "tokens_per_minute"),
                         triple(model, "concurrency"), headroom, runsOut(model["forecast"]), redundancy])
            for deployment in model["deployments"]?.arrayValue ?? [] {
                rows.append(["  " + text(deployment["deployment"]), triple(deployment, "requests_per_second"),
                             triple(deployment, "tokens_per_minute"), triple(deployment, "concurrency"), "", "",
                             (deployment["rate_limited_share"]?.doubleValue ?? 0) > 0
                                 ? "429s \(Int(((deployment["rate_limited_share"]?.doubleValue ?? 0) * 100).rounded())) %" : ""])
            }
        }
        print("Load as current/peak/capacity (? where nothing configured or learned bounds it).")
        printTable(["MODEL / DEPLOYMENT", "REQ/S", "TOKENS/MIN", "CONCURRENCY", "HEADROOM", "RUNS OUT", "N+1"], rows)
        let warnings = answer["warnings"]?.arrayValue ?? []
        if !warnings.isEmpty {
            print("")
            for warning in warnings { print("warning: \(text(warning))") }
        }
    }
}
