import ArgumentParser
import Foundation
import LifelineGateway
import LifelineWire

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "API keys: create (the secret is shown once), list, show usage, revoke.",
        subcommands: [Create.self, List.self, Show.self, Revoke.self], defaultSubcommand: List.self)

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; prints its secret once.")
        @Option(help: "A name for the key's owner.") var name: String
        @Option(help: "critical, high, normal or low.") var tier = "normal"
        @Option(help: "Requests per minute.") var rpm: Int?
        @Option(help: "Tokens per minute.") var tpm: Int?
        @Option(help: "Concurrent requests.") var maxConcurrency: Int?
        @Option(help: "Token budget per period.") var budgetTokens: Int?
        @Option(help: "Budget period: day or month.") var budgetPeriod = "month"
        @Option(help: "Comma-separated public models the key may use (default: all).") var models: String?
        @Option(help: "Expiry: an ISO-8601 time, or a number of days such as 30d.") var expires: String?
        @Flag(help: "Write straight to the local store instead of calling the server (for the first key).") var offline = false
        @Option(help: "Data directory for --offline.") var dataDir = ".lifeline"
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            var body: [String: JSONValue] = ["name": .string(name), "tier": .string(tier), "budget_period": .string(budgetPeriod)]
            if let rpm { body["rpm"] = .number(Double(rpm)) }
            if let tpm { body["tpm"] = .number(Double(tpm)) }
            if let maxConcurrency { body["max_concurrency"] = .number(Double(maxConcurrency)) }
            if let budgetTokens { body["budget_tokens"] = .number(Double(budgetTokens)) }
            if let models { body["models"] = .array(models.split(separator: ",").map { .string(String($0)) }) }
            if let expires {
                if expires.hasSuffix("d"), let days = Double(expires.dropLast()) {
                    body["expires_in_days"] = .number(days)
                } else {
                    body["expires_at"] = .string(expires)
                }
            }
            let answer = offline
                ? try await OfflineKeys.create(dataDirectory: dataDir, request: .object(body))
                : try await connection.call(.post, "/keys", body: .object(body))
            if connection.json { return connection.printJSON(answer) }
            print("""
            created \(text(answer["id"])) (\(text(answer["name"])), tier \(text(answer["tier"])))
            secret (shown once, store it now): \(text(answer["secret"]))
            """)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every key with its limits, status and usage this period.")
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.get, "/keys")
            if connection.json { return connection.printJSON(answer) }
            let rows: [[String]] = (answer["data"]?.arrayValue ?? []).map { key in
                ["id", "name", "prefix", "tier", "status", "rpm", "tpm", "max_concurrency", "budget_tokens"].map { text(key[$0]) }
                    + [text(key["usage"]?["tokens_used"])]
            }
            printTable(["ID", "NAME", "PREFIX", "TIER", "STATUS", "RPM", "TPM", "CONCURRENCY", "BUDGET", "USED"], rows)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One key with its usage.")
        @Argument(help: "Key id.") var id: String
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.get, "/keys/\(id)")
            if connection.json { return connection.printJSON(answer) }
            for field in ["id", "name", "prefix", "tier", "status", "rpm", "tpm", "max_concurrency", "budget_tokens", "budget_period",
                          "models", "created_at", "expires_at", "revoked_at"]
            {
                print("\(field.padding(toLength: 16, withPad: " ", startingAt: 0)) \(text(answer[field]))")
            }
            print("\("used (period)".padding(toLength: 16, withPad: " ", startingAt: 0)) \(text(answer["usage"]?["tokens_used"])) tokens since \(text(answer["usage"]?["period_start"]))")
            let today = answer["usage_today"]
            print("\("today".padding(toLength: 16, withPad: " ", startingAt: 0)) \(text(today?["requests"])) requests, \(text(today?["prompt_tokens"])) prompt + \(text(today?["completion_tokens"])) completion tokens")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key; it is refused from the next request on.")
        @Argument(help: "Key id.") var id: String
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.delete, "/keys/\(id)")
            if connection.json { return connection.printJSON(answer) }
            print("\(id): \(text(answer["status"]))")
        }
    }
}
