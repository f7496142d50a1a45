import AsyncHTTPClient
import Foundation
import LifelineCore
import LifelineGateway
import LifelineSimulator
import LifelineWire
import Logging
import NIOCore
import ServiceLifecycle
import XCTest

/// Two simulators and a gateway in front of them, on free loopback ports, over real sockets.
///
/// Model `chat-openai` has OpenAI-protocol deployments `oa-1` (priority 1, on simulator A) and
/// `oa-2` (priority 2, on B); `chat-anthropic` has `an-1` and `an-2` the same way.
final class GatewayFixture: @unchecked Sendable {
    // Safe: all stored properties are set once in `start` before the fixture is shared.
    let simulatorA = Simulator()
    let simulatorB = Simulator()
    private(set) var gatewayPort = 0
    private(set) var runtime: GatewayRuntime!
    static let adminToken = "test-admin-token"
    private var tasks: [Task<Void, any Error>] = []
    /// Enough connections for the tests that send hundreds of requests at once.
    let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 1024)))

    /// - Parameter dataDirectory: reuse one to restart a gateway on the data a previous one kept.
    /// - Parameter gatewayLogger: the gateway's logger, for tests that read its lines; else one that stays quiet.
    static func start(dataDirectory: String? = nil, gatewayLogger: Logger? = nil,
                      configure: (inout LifelineConfig) -> Void = { _ in }) async throws -> GatewayFixture
    {
        let fixture = GatewayFixture()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let portA = try await fixture.run(fixture.simulatorA, logger: logger)
        let portB = try await fixture.run(fixture.simulatorB, logger: logger)
        var config = LifelineConfig()
        config.server.port = 0
        config.server.dataDirectory = dataDirectory ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("lifeline-test-\(UUID().uuidString)").path
        func deployment(_ name: String, _ wire: WireProtocol, port: Int, priority: Int) -> DeploymentConfig {
            var deployment = DeploymentConfig(name: name, protocol: wire, model: "sim-model")
            deployment.baseURL = wire == .openai ? "http://127.0.0.1:\(port)/v1" : "http://127.0.0.1:\(port)"
            deployment.apiKey = "upstream-secret"
            deployment.priority = priority
            deployment.timeouts.firstTokenMilliseconds = 2_000
            return deployment
        }
        config.models = [
            ModelConfig(name: "chat-openai", deployments: [deployment("oa-1", .openai, port: portA, priority: 1),
                                                           deployment("oa-2", .openai, port: portB, priority: 2)]),
            ModelConfig(name: "chat-anthropic", deployments: [deployment("an-1", .anthropic, port: portA, priority: 1),
                                                              deployment("an-2", .anthropic, port: portB, priority: 2)]),
        ]
        // Webhook receivers in tests listen on loopback; a test of the refusal turns this off.
        config.notifications.allowPrivateTargets = true
        configure(&config)
        config.admin.token = adminToken
        let (started, continuation) = AsyncStream<(Int, GatewayRuntime)>.makeStream()
        let settings = config
        fixture.tasks.append(Task {
            defer { continuation.finish() }
            try await GatewayServer.run(config: settings, logger: gatewayLogger ?? logger) { port, runtime in
                continuation.yield((port, runtime))
                continuation.finish()
            }
        })
        var iterator = started.makeAsyncIterator()
        guard let running = await iterator.next() else {
            // The gateway refused to start: surface its error.
            let failure = await fixture.tasks.last!.result
            await fixture.stop()
            try failure.get()
            throw GatewayStartFailure()
        }
        (fixture.gatewayPort, fixture.runtime) = running
        return fixture
    }

    /// Status and notification timings short enough for a test to watch an incident open and resolve.
    static func fastStatus(_ config: inout LifelineConfig) {
        config.status.evaluationIntervalSeconds = 0.05
        config.status.thresholds.windowSeconds = 1
        config.status.thresholds.minimumRequests = 3
        config.status.policy.openAfterSeconds = 0.3
        config.status.policy.monitorAfterSeconds = 0.2
        config.status.policy.resolveAfterSeconds = 0.3
        config.notifications.backoff = Backoff(base: 0.01, maximum: 0.05)
    }

    private func run(_ simulator: Simulator, logger: Logger) async throws -> Int {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = simulator.application(host: "127.0.0.1", port: 0, logger: logger) { port in
            continuation.yield(port)
            continuation.finish()
        }
        tasks.append(Task { try await ServiceGroup(services: [app], logger: logger).run() })
        var iterator = ports.makeAsyncIterator()
        let port = await iterator.next()
        return try XCTUnwrap(port)
    }

    func stop() async {
        try? await http.shutdown()
        for task in tasks.reversed() {
            task.cancel()
            _ = await task.result
        }
    }

    var baseURL: String { "http://127.0.0.1:\(gatewayPort)" }

    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
        var json: JSONValue? { try? JSONCoding.decode(body) }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    func post(_ path: String, _ body: JSONValue, headers: [String: String] = [:]) async throws -> Reply {
        try await post(path, raw: JSONCoding.encode(body), headers: headers)
    }

    func post(_ path: String, raw: [UInt8], headers: [String: String] = [:]) async throws -> Reply {
        try await send("POST", path, raw: raw, headers: headers)
    }

    func send(_ method: String, _ path: String, raw: [UInt8] = [], headers: [String: String] = [:]) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .init(rawValue: method)
        request.headers.add(name: "content-type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: raw))
        let response = try await http.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 64 * 1024 * 1024)
        var collected: [String: String] = [:]
        for header in response.headers { collected[header.name.lowercased()] = header.value }
        return Reply(status: Int(response.status.code), headers: collected, body: Array(body.readableBytesView))
    }

    /// An admin API call with the fixture's token (or none).
    func admin(_ method: String, _ path: String, _ body: JSONValue? = nil, authorized: Bool = true) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + "/admin/v1" + path)
        request.method = .init(rawValue: method)
        if authorized { request.headers.add(name: "authorization", value: "Bearer \(Self.adminToken)") }
        if let body { request.body = .bytes(ByteBuffer(bytes: JSONCoding.encode(body))) }
        let response = try await http.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1024 * 1024)
        return Reply(status: Int(response.status.code), headers: [:], body: Array(bytes.readableBytesView))
    }

    /// The gateway's `/metrics` exposition.
    func metricsText() async throws -> String {
        String(decoding: try await get("/metrics").body, as: UTF8.self)
    }

    func get(_ path: String, headers: [String: String] = [:]) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await http.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1024 * 1024)
        var collected: [String: String] = [:]
        for header in response.headers { collected[header.name.lowercased()] = header.value }
        return Reply(status: Int(response.status.code), headers: collected, body: Array(body.readableBytesView))
    }
}

struct GatewayStartFailure: Error {}

/// The value of the series that starts with `series` (name and labels, as exposed).
func metricValue(_ series: String, in exposition: String) -> Double? {
    for line in exposition.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

/// Reads a streamed reply's text in either API, and its SSE comments.
struct StreamTranscript {
    var text = ""
    var comments: [String] = []
    var eventNames: [String] = []
    var doneCount = 0
    var errors: [JSONValue] = []
    /// How the answer ended: OpenAI's `finish_reason`s, Anthropic's `stop_reason`.
    var finishReasons: [String] = []

    init(_ body: [UInt8]) throws {
        for line in String(decoding: body, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix(":") { comments.append(String(line)); continue }
            if line.hasPrefix("event: ") { eventNames.append(String(line.dropFirst(7))); continue }
            guard line.hasPrefix("data: ") else { continue }
            let payload = line.dropFirst(6)
            if payload == "[DONE]" { doneCount += 1; continue }
            let json = try JSONCoding.decode(Array(payload.utf8))
            if json["error"] != nil { errors.append(json) }
            for choice in json["choices"]?.arrayValue ?? [] {
                text += choice["delta"]?["content"]?.stringValue ?? ""
                if let reason = choice["finish_reason"]?.stringValue { finishReasons.append(reason) }
            }
            if json["type"]?.stringValue == "message_delta", let reason = json["delta"]?["stop_reason"]?.stringValue { finishReasons.append(reason) }
            if json["type"]?.stringValue == "content_block_delta" { text += json["delta"]?["text"]?.stringValue ?? "" }
        }
    }
}

func chatBody(_ model: String, _ prompt: String, stream: Bool = false, api: WireProtocol = .openai, maxTokens: Int? = nil) -> JSONValue {
    var body: [String: JSONValue] = ["model": .string(model), "messages": [["role": "user", "content": .string(prompt)]]]
    if stream { body["stream"] = true }
    if let maxTokens { body["max_tokens"] = .number(Double(maxTokens)) }
    if api == .anthropic, maxTokens == nil { body["max_tokens"] = 1024 }
    return .object(body)
}

func path(for api: WireProtocol) -> String { api == .openai ? "/v1/chat/completions" : "/v1/messages" }

/// Polls `check` every 50 ms until it holds; fails the test after `timeout` seconds.
func waitFor(_ what: String, timeout: Double = 15, file: StaticString = #filePath, line: UInt = #line,
             _ check: () async throws -> Bool) async throws
{
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await check() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    XCTFail("timed out waiting for \(what)", file: file, line: line)
}

extension ConcurrencyLimitPolicy {
    /// Holds the limit at `slots`: it starts there and can move neither way.
    mutating func pin(at slots: Double) {
        initialLimit = slots
        minimumLimit = slots
        maximumLimit = slots
    }
}
