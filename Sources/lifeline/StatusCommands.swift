import ArgumentParser
import Foundation
import LifelineWire

/// `key=value` pairs for `--component`, e.g. `chat-default=major_outage`.
private func componentMap(_ pairs: [String]) throws -> JSONValue? {
    guard !pairs.isEmpty else { return nil }
    var map: [String: JSONValue] = [:]
    for pair in pairs {
        let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw ValidationError("--component takes NAME=STATUS, got '\(pair)'") }
        map[parts[0]] = .string(parts[1])
    }
    return .object(map)
}

private func printIncident(_ incident: JSONValue) {
    print("\(text(incident["id"]))  \(text(incident["status"]))  \(text(incident["impact"]))  \(text(incident["name"]))")
}

struct Incidents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Incidents on the status page: list, create, update, resolve, publish a draft.",
        subcommands: [List.self, Create.self, Update.self, Resolve.self, Publish.self, Postmortem.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Incidents, newest first (drafts included).")
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.get, "/incidents")
            if connection.json { return connection.printJSON(answer) }
            let rows: [[String]] = (answer["data"]?.arrayValue ?? []).map { row in
                ["id", "status", "impact", "created_at", "published", "automatic", "name"].map { text(row[$0]) }
            }
            printTable(["ID", "STATUS", "IMPACT", "CREATED", "PUBLISHED", "AUTOMATIC", "NAME"], rows)
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open an incident by hand.")
        @Option(help: "Title.") var name: String
        @Option(help: "First update's text.") var message: String?
        @Option(help: "investigating, identified, monitoring.") var status = "investigating"
        @Option(help: "none, minor, major, critical (default: from the components).") var impact: String?
        @Option(name: .customLong("component"), help: "NAME=STATUS, e.g. chat-default=partial_outage (repeatable).") var components: [String] = []
        @Flag(help: "Keep it as a draft until published.") var draft = false
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            var body: [String: JSONValue] = ["name": .string(name), "status": .string(status), "published": .bool(!draft)]
            if let message { body["body"] = .string(message) }
            if let impact { body["impact"] = .string(impact) }
            if let map = try componentMap(components) { body["components"] = map }
            let answer = try await connection.call(.post, "/incidents", body: .object(body))
            if connection.json { return connection.printJSON(answer) }
            printIncident(answer)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add an update to an incident.")
        @Argument(help: "Incident id.") var id: String
        @Option(help: "Update text.") var message: String
        @Option(help: "investigating, identified, monitoring, resolved (default: unchanged).") var status: String?
        @Option(name: .customLong("component"), help: "NAME=STATUS (repeatable).") var components: [String] = []
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            var body: [String: JSONValue] = ["body": .string(message)]
            if let status { body["status"] = .string(status) }
            if let map = try componentMap(components) { body["components"] = map }
            let answer = try await connection.call(.post, "/incidents/\(id)/updates", body: .object(body))
            if connection.json { return connection.printJSON(answer) }
            printIncident(answer)
        }
    }

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resolve an incident.")
        @Argument(help: "Incident id.") var id: String
        @Option(help: "Closing text.") var message: String?
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let body: JSONValue = message.map { ["body": .string($0)] } ?? [:]
            let answer = try await connection.call(.post, "/incidents/\(id)/resolve", body: body)
            if connection.json { return connection.printJSON(answer) }
            printIncident(answer)
        }
    }

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish a draft incident (approval mode).")
        @Argument(help: "Incident id.") var id: String
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.post, "/incidents/\(id)/publish")
            if connection.json { return connection.printJSON(answer) }
            printIncident(answer)
        }
    }
}

extension Incidents {
    struct Postmortem: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an incident's postmortem (drafted when it resolves); edit, redraft or publish it.")
        @Argument(help: "Incident id.") var id: String
        @Option(help: "Replace the text with this file's contents (Markdown).") var bodyFile: String?
        @Flag(help: "Write the draft anew from what was recorded.") var redraft = false
        @Flag(help: "Publish it on the status page, in the feeds and the API.") var publish = false
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            var body: [String: JSONValue] = [:]
            if let bodyFile {
                guard let text = try? String(contentsOfFile: bodyFile, encoding: .utf8) else {
                    throw ValidationError("--body-file: cannot read \(bodyFile)")
                }
                body["body"] = .string(text)
            }
            if redraft { body["redraft"] = true }
            if publish { body["publish"] = true }
            let path = "/incidents/\(id)/postmortem"
            let answer = body.isEmpty ? try await connection.call(.get, path) : try await connection.call(.put, path, body: .object(body))
            if connection.json { return connection.printJSON(answer) }
            let state = answer["published_at"]?.stringValue.map { "published \($0)" } ?? "draft, not published"
            print("\(text(answer["incident"])) — postmortem, \(state)\n")
            print(answer["body"]?.stringValue ?? "(no postmortem yet: it is drafted when the incident resolves)")
        }
    }
}

struct Subscribers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Webhook subscribers of the status page: list, approve, remove.",
        subcommands: [List.self, Approve.self, Remove.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every subscriber, pending ones included.")
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.get, "/subscribers")
            if connection.json { return connection.printJSON(answer) }
            let rows: [[String]] = (answer["data"]?.arrayValue ?? []).map { row in
                ["id", "state", "created_at", "endpoint"].map { text(row[$0]) }
                    + [(row["components"]?.arrayValue ?? []).map { text($0) }.joined(separator: ",")]
            }
            printTable(["ID", "STATE", "CREATED", "ENDPOINT", "COMPONENTS"], rows)
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a pending subscriber: updates from now on are sent to it.")
        @Argument(help: "Subscriber id.") var id: String
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.post, "/subscribers/\(id)/approve")
            if connection.json { return connection.printJSON(answer) }
            print("\(id): \(text(answer["state"]))")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a subscriber.")
        @Argument(help: "Subscriber id.") var id: String
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.delete, "/subscribers/\(id)")
            if connection.json { return connection.printJSON(answer) }
            print("\(id): removed")
        }
    }
}

struct MaintenanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maintenance",
        abstract: "Planned maintenance: announced ahead, drains its deployments while it lasts.",
        subcommands: [Schedule.self, List.self, Complete.self], defaultSubcommand: List.self)

    struct Schedule: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Schedule maintenance of one or more deployments.")
        @Option(name: .customLong("deployment"), help: "Deployment name (repeatable).") var deployments: [String]
        @Option(help: "Start, ISO-8601 (e.g. 2027-01-31T02:00:00Z), or 'now'.") var from: String
        @Option(help: "End, ISO-8601, or +MINUTES from the start (e.g. +30).") var until: String
        @Option(help: "What users read on the status page.") var message: String
        @Option(help: "Title.") var name = "Planned maintenance"
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let formatter = ISO8601DateFormatter()
            let start = from == "now" ? Date() : formatter.date(from: from)
            guard let start else { throw ValidationError("--from must be ISO-8601 or 'now'") }
            let end = until.hasPrefix("+") ? Double(until.dropFirst()).map { start.addingTimeInterval($0 * 60) } : formatter.date(from: until)
            guard let end else { throw ValidationError("--until must be ISO-8601 or +MINUTES") }
            let answer = try await connection.call(.post, "/maintenances", body: [
                "name": .string(name), "message": .string(message), "deployments": .array(deployments.map(JSONValue.string)),
                "scheduled_for": .string(formatter.string(from: start)), "scheduled_until": .string(formatter.string(from: end)),
            ])
            if connection.json { return connection.printJSON(answer) }
            print("\(text(answer["id"])): \(text(answer["status"])) \(text(answer["scheduled_for"])) to \(text(answer["scheduled_until"]))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Maintenances, latest start first.")
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.get, "/maintenances")
            if connection.json { return connection.printJSON(answer) }
            let rows: [[String]] = (answer["data"]?.arrayValue ?? []).map { row in
                ["id", "status", "scheduled_for", "scheduled_until"].map { text(row[$0]) }
                    + [(row["deployments"]?.arrayValue ?? []).map { text($0) }.joined(separator: ","), text(row["name"])]
            }
            printTable(["ID", "STATUS", "FROM", "UNTIL", "DEPLOYMENTS", "NAME"], rows)
        }
    }

    struct Complete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a maintenance now (or cancel one not started).")
        @Argument(help: "Maintenance id.") var id: String
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let answer = try await connection.call(.post, "/maintenances/\(id)/complete")
            if connection.json { return connection.printJSON(answer) }
            print("\(id): \(text(answer["status"]))")
        }
    }
}
