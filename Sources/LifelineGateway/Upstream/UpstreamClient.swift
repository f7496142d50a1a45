import AsyncHTTPClient
import Foundation
import LifelineWire
import NIOCore
import NIOHTTP1
import NIOPosix
import Tracing

/// Talks to one upstream deployment in its own protocol.
///
/// Each deployment has its own connection pool so its connect and idle timeouts are its own,
/// and a slow deployment cannot hold connections another one needs.
///
/// The pool is one per event loop: a request goes out on a connection of the loop its task runs
/// on, which is the loop of the client's connection. Its bytes then never cross threads. (With
/// one pool for every loop, a request took the most recently idle connection, on whichever loop,
/// and often each chunk crossed to the other loop and back.)
public final class UpstreamClient: Sendable {
    public let deployment: DeploymentConfig
    private let clients: [HTTPClient]
    private let clientOfLoop: [ObjectIdentifier: HTTPClient]
    private let endpoint: UpstreamEndpoint
    private var headers: HTTPHeaders { endpoint.headers }

    /// `maximumConnections`: connections this deployment may open at once; above the most
    /// attempts its concurrency limit can allow, so the pool never queues what routing admitted.
    public init(deployment: DeploymentConfig, maximumConnections: Int = 16_384) {
        self.deployment = deployment
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .milliseconds(Int64(deployment.timeouts.connectMilliseconds)),
                                      read: .milliseconds(Int64(deployment.timeouts.idleMilliseconds)))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: maximumConnections)
        configuration.decompression = .disabled
        configuration.httpVersion = .http1Only
        // With tracing off, AsyncHTTPClient would still make a no-op span, with its attributes,
        // for every request. (Tracing is set up before any deployment is made.)
        if InstrumentationSystem.tracer is NoOpTracer { configuration.tracing.tracer = nil }
        let loops = Array(HTTPClient.defaultEventLoopGroup.makeIterator())
        clients = loops.map { HTTPClient(eventLoopGroup: $0, configuration: configuration) }
        clientOfLoop = Dictionary(uniqueKeysWithValues: zip(loops.map { ObjectIdentifier($0) }, clients))
        endpoint = UpstreamEndpoint(deployment)
    }

    public func shutdown() async {
        for client in clients { try? await client.shutdown() }
    }

    /// The pool of the loop this runs on (off the loops, as in a test's own task: the first).
    private var http: HTTPClient {
        MultiThreadedEventLoopGroup.currentEventLoop.flatMap { clientOfLoop[ObjectIdentifier($0)] } ?? clients[0]
    }

    private func httpRequest(url: String, body: JSONValue) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers = headers
        let bytes = JSONCoding.encode(body)
        // Made per request: a Bedrock signature covers the time and the body.
        for (name, value) in endpoint.authentication(url: url, body: bytes, date: Date()) {
            request.headers.replaceOrAdd(name: name, value: value)
        }
        request.body = .bytes(ByteBuffer(bytes: bytes))
        return request
    }

    private func encode(_ request: ChatRequest, stream: Bool) -> JSONValue {
        switch deployment.protocol {
        case .openai: OpenAIChatRequest.encode(request, upstreamModel: deployment.model, stream: stream)
        case .anthropic: AnthropicMessagesRequest.encode(request, upstreamModel: deployment.model, stream: stream)
        case .gemini: GeminiRequest.encode(request)
        case .azureOpenAI: OpenAIChatRequest.encode(request, upstreamModel: deployment.upstreamDeployment, stream: stream)
        case .bedrock: BedrockConverseRequest.encode(request)
        }
    }

    /// Sends the request and returns the response head, or the upstream's error as a failure.
    private func send(_ request: HTTPClientRequest) async throws(UpstreamFailure) -> HTTPClientResponse {
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .milliseconds(Int64(deployment.timeouts.firstTokenMilliseconds)))
        } catch {
            throw Self.failure(from: error)
        }
        guard response.status.code < 300 else {
            let body = try? await response.body.collect(upTo: 1024 * 1024)
            let json = body.flatMap { try? JSONCoding.decode($0.readableBytesView) }
            var message = json?["error"]?["message"]?.stringValue ?? body.map { String(buffer: $0) } ?? ""
            var status = Int(response.status.code)
            if deployment.protocol == .bedrock {
                // Bedrock names the error in a header (or `__type`); the type decides, whatever status carried it.
                let type = response.headers.first(name: "x-amzn-errortype") ?? json?["__type"]?.stringValue
                if let type, let typed = BedrockError.status(forType: type) { status = typed }
                message = BedrockError.message(in: json) ?? message
            }
            let retryAfter = response.headers.first(name: "retry-after").flatMap(Double.init)
                ?? response.headers.first(name: "retry-after-ms").flatMap(Double.init).map { $0 / 1000 }
                ?? GeminiError.retryDelaySeconds(json)
            throw UpstreamFailure(.status(status), message, retryAfterSeconds: retryAfter, body: json)
        }
        return response
    }

    /// A connect that failed at the socket: nothing was sent.
    private static let connectErrnos: Set<Int32> = [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH]

    static func failure(from error: any Error) -> UpstreamFailure {
        if let failure = error as? UpstreamFailure { return failure }
        if let client = error as? HTTPClientError {
            switch client {
            case .connectTimeout, .getConnectionFromPoolTimeout:
                var failure = UpstreamFailure(.timeout, "\(client)")
                failure.reachedUpstream = false
                return failure
            case .deadlineExceeded, .readTimeout, .writeTimeout:
                return UpstreamFailure(.timeout, "\(client)")
            case .cancelled:
                return UpstreamFailure(.disconnected, "cancelled")
            case .remoteConnectionClosed:
                return UpstreamFailure(.disconnected, "\(client)")
            default:
                return UpstreamFailure(.connect, "\(client)")
            }
        }
        if error is CancellationError || Task.isCancelled { return UpstreamFailure(.disconnected, "cancelled") }
        var failure = UpstreamFailure(.connect, "\(error)")
        // A refused or unreachable connect (NIO's connection error, or the socket's own).
        failure.reachedUpstream = !(error is NIOConnectionError || (error as? IOError).map { Self.connectErrnos.contains($0.errnoCode) } ?? false)
        return failure
    }

    /// A cheap liveness check: the upstream's model list answers 2xx in time (for Bedrock, which
    /// lists no models at its runtime endpoint, a one-token answer).
    public func probe(timeoutMilliseconds: Int) async -> Bool {
        guard let url = endpoint.modelsURL else {
            var probe = ChatRequest(model: deployment.model, messages: [.text(.user, "ping")], sourceProtocol: deployment.protocol)
            probe.maxTokens = 1
            let request = httpRequest(url: endpoint.completionURL, body: encode(probe, stream: false))
            guard let response = try? await http.execute(request, timeout: .milliseconds(Int64(timeoutMilliseconds))) else { return false }
            _ = try? await response.body.collect(upTo: 1024 * 1024)
            return (200..<300).contains(response.status.code)
        }
        var request = HTTPClientRequest(url: url)
        request.headers = headers
        guard let response = try? await http.execute(request, timeout: .milliseconds(Int64(timeoutMilliseconds))) else { return false }
        _ = try? await response.body.collect(upTo: 4 * 1024 * 1024)
        return (200..<300).contains(response.status.code)
    }

    /// Whether the deployment would answer traffic: its model list, or (when the list is missing,
    /// refused for another reason than credentials, or does not name the model) a 1-token request.
    /// For `lifeline check-config --probe`; the verdict holds no upstream text.
    public func check(timeoutMilliseconds: Int) async -> DeploymentCheck.Verdict {
        if let url = endpoint.modelsURL {
            var request = HTTPClientRequest(url: url)
            request.headers = headers
            do {
                let response = try await http.execute(request, timeout: .milliseconds(Int64(timeoutMilliseconds)))
                let body = try? await response.body.collect(upTo: 16 * 1024 * 1024)
                let status = Int(response.status.code)
                if status == 401 || status == 403 { return .credentialsRejected(status: status) }
                if (200..<300).contains(status) {
                    let ids = body.flatMap { try? JSONCoding.decode($0.readableBytesView) }.flatMap { UpstreamEndpoint.modelIDs(in: $0, protocol: deployment.protocol) }
                    if ids?.contains(deployment.listedModel) ?? false { return .ok(via: .modelList) }
                }
            } catch {
                return DeploymentCheck.Verdict(Self.failure(from: error))
            }
        }
        var probe = ChatRequest(model: deployment.model, messages: [.text(.user, "ping")], sourceProtocol: deployment.protocol)
        probe.maxTokens = 1
        do {
            _ = try await complete(probe)
            return .ok(via: .oneTokenRequest)
        } catch {
            return DeploymentCheck.Verdict(error)
        }
    }

    /// A whole (non-streamed) answer.
    public func complete(_ request: ChatRequest) async throws(UpstreamFailure) -> ChatResponse {
        let response = try await send(httpRequest(url: endpoint.completionURL, body: encode(request, stream: false)))
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: 64 * 1024 * 1024)
        } catch {
            throw Self.failure(from: error)
        }
        let json: JSONValue
        do {
            json = try JSONCoding.decode(body.readableBytesView)
        } catch {
            throw UpstreamFailure(.malformed, "unreadable answer: \(error)")
        }
        if deployment.protocol == .gemini, let reason = GeminiResponse.promptBlockReason(json) {
            throw UpstreamFailure.contentFilter("the prompt was blocked (\(reason))")
        }
        do {
            switch deployment.protocol {
            case .openai, .azureOpenAI: return try OpenAIChatResponse.decode(json)
            case .anthropic: return try AnthropicMessagesResponse.decode(json)
            case .gemini: return try GeminiResponse.decode(json)
            case .bedrock: return try BedrockConverseResponse.decode(json)
            }
        } catch {
            throw UpstreamFailure(.malformed, "unreadable answer: \(error)")
        }
    }

    /// The prompt's token count as the upstream counts it, from a one-token answer not streamed;
    /// nil if it does not say.
    public func promptTokens(_ request: ChatRequest) async -> Int? {
        var probe = request
        probe.maxTokens = 1
        guard let response = try? await complete(probe), response.usage.promptTokens > 0 else { return nil }
        return response.usage.promptTokens
    }

    /// The prompt's token count from the upstream's own counter (Anthropic's
    /// `/v1/messages/count_tokens`); nil when the upstream has none or does not answer.
    public func countTokens(_ request: ChatRequest) async -> Int? {
        guard deployment.protocol == .anthropic,
              var body = AnthropicMessagesRequest.encode(request, upstreamModel: deployment.model, stream: false).objectValue
        else { return nil }
        // The counter takes the prompt's fields only.
        body = body.filter { ["model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"].contains($0.key) }
        let url = deployment.baseURL + "/v1/messages/count_tokens"
        guard let response = try? await send(httpRequest(url: url, body: .object(body))),
              let bytes = try? await response.body.collect(upTo: 1024 * 1024),
              let json = try? JSONCoding.decode(bytes.readableBytesView),
              let count = json["input_tokens"]?.intValue, count >= 0
        else { return nil }
        return count
    }

    /// Opens a stream; events are read from the returned iterator.
    public func stream(_ request: ChatRequest) async throws(UpstreamFailure) -> UpstreamEventStream {
        let response = try await send(httpRequest(url: endpoint.streamURL, body: encode(request, stream: true)))
        return UpstreamEventStream(body: response.body, protocol: deployment.protocol)
    }

    /// Forwards an embeddings body (already carrying the upstream model) and returns the answer bytes.
    public func embeddings(_ body: JSONValue) async throws(UpstreamFailure) -> ByteBuffer {
        let url = deployment.baseURL + "/embeddings"
        let response = try await send(httpRequest(url: url, body: body))
        do {
            return try await response.body.collect(upTo: 256 * 1024 * 1024)
        } catch {
            throw Self.failure(from: error)
        }
    }
}

/// Reads one upstream SSE stream as `ChatEvent`s.
public struct UpstreamEventStream {
    private var iterator: HTTPClientResponse.Body.AsyncIterator
    private var parser = SSEParser()
    private var anthropic = AnthropicStreamDecoder()
    private var gemini = GeminiStreamDecoder()
    private var eventStream = AWSEventStreamDecoder()
    private var bedrock = BedrockStreamDecoder()
    /// A failure read after events of the same chunk: thrown once those events are delivered,
    /// so text that came before an in-stream exception still reaches the client.
    private var deferredFailure: UpstreamFailure?
    private let wireProtocol: WireProtocol
    private var pending: [ChatEvent] = []
    private var pendingIndex = 0
    private var finished = false
    private var textEventsDelivered = 0
    /// The prompt's token count the upstream announced before its first token (Anthropic's
    /// `message_start`); nil when it did not.
    var announcedPromptTokens: Int? { wireProtocol == .anthropic ? anthropic.announcedInputTokens : nil }
    /// A drill cuts the stream after this many text events.
    var cutAfterTextEvents: Int?
    /// Whether `next()` has an event already read, which it returns without waiting.
    var hasReadyEvent: Bool { pendingIndex < pending.count }

    init(body: HTTPClientResponse.Body, protocol wireProtocol: WireProtocol) {
        self.iterator = body.makeAsyncIterator()
        self.wireProtocol = wireProtocol
    }

    /// The next event; nil once the upstream ended its stream properly. A stream that stops
    /// before its proper end is a `.disconnected` failure.
    public mutating func next() async throws(UpstreamFailure) -> ChatEvent? {
        while true {
            if let cut = cutAfterTextEvents, textEventsDelivered >= cut {
                throw UpstreamFailure(.disconnected, "drill: connection cut after \(cut) tokens")
            }
            if pendingIndex < pending.count {
                defer { pendingIndex += 1 }
                if case .textDelta = pending[pendingIndex] { textEventsDelivered += 1 }
                return pending[pendingIndex]
            }
            if let failure = deferredFailure { throw failure }
            if finished { return nil }
            pending.removeAll(keepingCapacity: true)
            pendingIndex = 0
            let chunk: ByteBuffer?
            do {
                chunk = try await iterator.next()
            } catch {
                throw UpstreamClient.failure(from: error)
            }
            guard let chunk else {
                // Gemini's stream has no end marker: it ends properly when the connection closes after a finish reason.
                if wireProtocol == .gemini, gemini.sawFinish {
                    pending = gemini.finish()
                    finished = true
                    continue
                }
                // Bedrock's has none either: it is whole once messageStop has come.
                if wireProtocol == .bedrock, bedrock.stopped { finished = true; continue }
                throw UpstreamFailure(.disconnected, "the upstream ended the stream early")
            }
            if wireProtocol == .bedrock {
                try decodeBedrock(chunk)
                continue
            }
            let events: [SSEEvent]
            do {
                events = try parser.feed(chunk.readableBytesView)
            } catch {
                throw UpstreamFailure(.malformed, "an SSE line longer than the limit")
            }
            for event in events { try decode(event) }
        }
    }

    /// Bedrock's binary event-stream frames; a frame that fails its checksum or its bounds ends the attempt.
    private mutating func decodeBedrock(_ chunk: ByteBuffer) throws(UpstreamFailure) {
        let messages: [AWSEventStreamMessage]
        do {
            messages = try eventStream.feed(chunk.readableBytesView)
        } catch {
            throw UpstreamFailure(.malformed, "an unreadable event-stream frame: \(error.message)")
        }
        for message in messages {
            do {
                pending += try bedrock.events(message)
            } catch {
                deferredFailure = UpstreamFailure(.status(error.status), "\(error.type): \(error.message)")
                return
            }
            if bedrock.finished { finished = true }
        }
    }

    private mutating func decode(_ event: SSEEvent) throws(UpstreamFailure) {
        switch wireProtocol {
        case .bedrock:
            return
        case .openai, .azureOpenAI:
            if event.data.elementsEqual("[DONE]".utf8) { finished = true; return }
            if let text = OpenAIChatResponse.textDeltaEvent(inChunk: event.data) {
                pending.append(text)
                return
            }
            guard let json = try? JSONCoding.decode(event.data) else { throw UpstreamFailure(.malformed, "a stream chunk that is not JSON") }
            if let error = json["error"] {
                throw UpstreamFailure(.status(500), error["message"]?.stringValue ?? "upstream stream error")
            }
            pending += OpenAIChatResponse.events(inChunk: json)
        case .anthropic:
            guard let json = try? JSONCoding.decode(event.data) else { throw UpstreamFailure(.malformed, "a stream event that is not JSON") }
            let type = event.event ?? json["type"]?.stringValue ?? ""
            do {
                pending += try anthropic.events(type: type, json: json)
            } catch {
                let status = error.type == "overloaded_error" ? 529 : 500
                throw UpstreamFailure(.status(status), error.message)
            }
            if type == "message_stop" { finished = true }
        case .gemini:
            guard let json = try? JSONCoding.decode(event.data) else { throw UpstreamFailure(.malformed, "a stream chunk that is not JSON") }
            do {
                pending += try gemini.events(in: json)
            } catch {
                if error.blockReason != nil { throw UpstreamFailure.contentFilter(error.message) }
                throw UpstreamFailure(.status(error.status), error.message)
            }
        }
    }
}
