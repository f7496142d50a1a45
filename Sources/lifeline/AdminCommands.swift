import ArgumentParser
import AsyncHTTPClient
import Foundation
import LifelineWire
import NIOCore

/// Where the admin API is and how to authenticate; shared by every admin subcommand.
struct AdminConnection: ParsableArguments {
    @Option(help: "Gateway URL (default: $LIFELINE_URL, else http://127.0.0.1:8080).")
    var server: String?
    @Option(help: "Admin token (default: $LIFELINE_ADMIN_TOKEN).")
    var token: String?
    @Flag(help: "Print the raw JSON answer.")
    var json = false

    var baseURL: String {
        let url = server ?? ProcessInfo.processInfo.environment["LIFELINE_URL"] ?? "http://127.0.0.1:8080"
        return url.hasSuffix("/") ? String(url.dropLast()) : url
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    /// Calls the admin API; a non-2xx answer becomes an error carrying the server's message.
    enum Method { case get, post, put, delete }

    func call(_ method: Method, _ path: String, body: JSONValue? = nil) async throws -> JSONValue {
        guard let token = token ?? ProcessInfo.processInfo.environment["LIFELINE_ADMIN_TOKEN"], !token.isEmpty else {
            throw Failure(description: "no admin token: set LIFELINE_ADMIN_TOKEN or pass --token")
        }
        var request = HTTPClientRequest(url: baseURL + "/admin/v1" + path)
        switch method {
        case .get: request.method = .GET
        case .post: request.method = .POST
        case .put: request.method = .PUT
        case .delete: request.method = .DELETE
        }
        request.headers.add(name: "authorization", value: "Bearer \(token)")
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: JSONCoding.encode(body)))
        }
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        do {
            let response = try await client.execute(request, timeout: .seconds(30))
            let bytes = try await response.body.collect(upTo: 16 * 1024 * 1024)
            try await client.shutdown()
            let answer = (try? JSONCoding.decode(bytes.readableBytesView)) ?? .string(String(buffer: bytes))
            guard (200..<300).contains(response.status.code) else {
                var message = "\(response.status.code): \(answer["error"]?["message"]?.stringValue ?? answer.stringValue ?? "")"
                for issue in answer["errors"]?.arrayValue ?? [] {
                    message += "\n  \(issue["path"]?.stringValue ?? ""): \(issue["message"]?.stringValue ?? "")"
                }
                throw Failure(description: message)
            }
            return answer
        } catch let failure as Failure {
            throw failure
        } catch {
            try? await client.shutdown()
            throw Failure(description: "cannot reach \(baseURL): \(error)")
        }
    }

    func printJSON(_ value: JSONValue) { print(JSONCoding.encodeString(value)) }
}

/// A JSON value as table text: strings bare, anything else as JSON.
func text(_ value: JSONValue?) -> String {
    guard let value, !value.isNull else { return "-" }
    return value.stringValue ?? JSONCoding.encodeString(value)
}

/// Prints rows as aligned columns.
func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
    for row in [header] + rows {
        print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  "))
    }
}

struct Deployments: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List deployments and their state; drain or undrain one.",
        subcommands: [List.self, Drain.self, Undrain.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each deployment's state, breaker and faults.")
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.get, "/deployments")
            if connection.json { return connection.printJSON(answer) }
            let rows: [[String]] = (answer["data"]?.arrayValue ?? []).map { row in
                let fields = ["name", "model", "protocol", "priority", "weight", "state"].map { text(row[$0]) }
                let ejections = text(row["breaker"]?["ejections"])
                let faults = String(row["faults"]?.arrayValue?.count ?? 0)
                // Managed processes only; "-" for the others.
                let process = row["process"]
                // A refusal traffic will not fix: what it is and when it last happened.
                let problem = row["problem"].flatMap { problem -> String? in
                    guard let summary = problem["summary"]?.stringValue else { return nil }
                    return "\(summary) (HTTP \(text(problem["status"])), last \(text(problem["last_at"])))"
                } ?? "-"
                return fields + [ejections, faults, text(process?["pid"]), text(process?["restarts"]), problem]
            }
            printTable(["NAME", "MODEL", "PROTOCOL", "PRIORITY", "WEIGHT", "STATE", "EJECTIONS", "FAULTS", "PID", "RESTARTS", "PROBLEM"], rows)
        }
    }

    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "New requests avoid the deployment; in-flight ones finish.")
        @Argument(help: "Deployment name.") var name: String
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.post, "/deployments/\(name)/drain")
            if connection.json { return connection.printJSON(answer) }
            print("\(name): \(answer["state"]?.stringValue ?? "draining")")
        }
    }

    struct Undrain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Return a drained deployment to rotation.")
        @Argument(help: "Deployment name.") var name: String
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.post, "/deployments/\(name)/undrain")
            if connection.json { return connection.printJSON(answer) }
            print("\(name): \(answer["state"]?.stringValue ?? "healthy")")
        }
    }
}

struct Drill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fault drills: inject a fault into a deployment for a while, list them, clear them.",
        subcommands: [Inject.self, List.self, Clear.self], defaultSubcommand: List.self)

    struct Inject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Inject a fault; it clears itself after --duration seconds.")
        @Option(help: "Deployment name.") var deployment: String
        @Option(help: "error, latency, disconnect or blackhole.") var kind: String
        @Option(help: "Status for error faults.") var status = 500
        @Option(help: "Share of attempts affected (0 to 1).") var rate = 1.0
        @Option(help: "Added latency for latency faults, in milliseconds.") var latencyMs = 0
        @Option(help: "Tokens before a disconnect fault cuts the stream.") var afterTokens = 0
        @Option(help: "Seconds until the fault clears itself.") var duration = 60.0
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.post, "/faults", body: [
                "deployment": .string(deployment), "kind": .string(kind), "status": .number(Double(status)), "rate": .number(rate),
                "latency_ms": .number(Double(latencyMs)), "after_tokens": .number(Double(afterTokens)), "duration_s": .number(duration),
            ])
            if connection.json { return connection.printJSON(answer) }
            print("\(answer["id"]?.stringValue ?? "?"): \(kind) on \(deployment) until \(answer["expires_at"]?.stringValue ?? "?")")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Active faults.")
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.get, "/faults")
            if connection.json { return connection.printJSON(answer) }
            let keys = ["id", "deployment", "kind", "status", "rate", "latency_ms", "after_tokens", "expires_at"]
            let rows: [[String]] = (answer["data"]?.arrayValue ?? []).map { fault in keys.map { text(fault[$0]) } }
            printTable(keys.map { $0.uppercased() }, rows)
        }
    }

    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Clear one fault by id, or all with --all.")
        @Argument(help: "Fault id.") var id: String?
        @Flag(help: "Clear every active fault.") var all = false
        @OptionGroup var connection: AdminConnection

        func validate() throws {
            guard (id != nil) != all else { throw ValidationError("give a fault id or --all") }
        }

        func run() async throws {
            let answer = try await connection.call(.delete, all ? "/faults" : "/faults/\(id!)")
            if connection.json { return connection.printJSON(answer) }
            print(all ? "all faults cleared" : "\(id!) cleared")
        }
    }
}

struct Reload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Reload the server's config file (refused with every error if invalid).")
    @OptionGroup var connection: AdminConnection

    func run() async throws {
        let answer = try await connection.call(.post, "/config/reload")
        if connection.json { return connection.printJSON(answer) }
        let models: [String] = (answer["models"]?.arrayValue ?? []).map { text($0) }
        print("reloaded: \(models.joined(separator: ", "))")
    }
}

struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache", abstract: "The answer cache: purge cached answers (they hold conversation text).",
        subcommands: [Purge.self])

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Drop every cached answer, or one model's with --model.")
        @Option(help: "Public model whose answers to drop (default: every model).") var model: String?
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            var path = "/cache"
            if let model {
                var allowed = CharacterSet.urlQueryAllowed
                allowed.remove(charactersIn: "&=+#")
                path += "?model=" + (model.addingPercentEncoding(withAllowedCharacters: allowed) ?? model)
            }
            let answer = try await connection.call(.delete, path)
            if connection.json { return connection.printJSON(answer) }
            let stored = answer["stored"].map { " from memory, \(text($0)) from the store" } ?? ""
            print("purged \(text(answer["purged"])) cached answers\(model.map { " of \($0)" } ?? "")\(stored)")
        }
    }
}
