import Foundation
import HTTPTypes
import Hummingbird
import LifelineCore
import LifelineWire
import Logging
import NIOCore
import Synchronization

/// A deterministic model server with fault knobs, speaking OpenAI's and Anthropic's APIs
/// (`both`), or Gemini's, or Azure OpenAI's, or Bedrock's Converse API.
///
/// It is a real HTTP server: the gateway's failure handling is tested against it over sockets.
public final class Simulator: Sendable {
    public enum Protocols: String, Sendable, CaseIterable {
        case openai, anthropic, both, gemini
        case azureOpenAI = "azure_openai"
        case bedrock

        /// What a `simulator:` deployment of `wireProtocol` serves.
        public init(serving wireProtocol: WireProtocol) {
            switch wireProtocol {
            case .openai, .anthropic: self = .both
            case .gemini: self = .gemini
            case .azureOpenAI: self = .azureOpenAI
            case .bedrock: self = .bedrock
            }
        }

        var servesOpenAI: Bool { self == .openai || self == .both }
        var servesAnthropic: Bool { self == .anthropic || self == .both }
    }

    public let protocols: Protocols
    public let models: [String]
    private let defaults: SimulatorKnobs
    private let knobs: Mutex<SimulatorKnobs>
    private let requestCount = Atomic<Int>(0)
    private let prefillCount = Atomic<Int>(0)
    /// The W3C `traceparent` of the latest completion requests, oldest first, at most `traceparentsKept`.
    private let traceparents = Mutex<[String]>([])
    static let traceparentsKept = 64
    private let streamCount = Atomic<Int>(0)
    private let gate = CapacityGate()
    /// Bedrock requests must carry a SigV4 `Authorization` (or a bearer key); with credentials the
    /// signature itself is checked against them.
    let bedrockAuthentication: BedrockAuthentication

    public init(protocols: Protocols = .both, models: [String] = ["lifeline-sim"], knobs: SimulatorKnobs = .init(),
                bedrockCredentials: AWSCredentials? = nil)
    {
        self.protocols = protocols
        self.bedrockAuthentication = BedrockAuthentication(credentials: bedrockCredentials)
        self.models = models
        self.defaults = knobs
        self.knobs = Mutex(knobs)
    }

    public var currentKnobs: SimulatorKnobs { knobs.withLock { $0 } }
    public func setKnobs(_ new: SimulatorKnobs) { knobs.withLock { $0 = new } }
    public func resetKnobs() { knobs.withLock { $0 = defaults } }
    /// Completion requests received, for tests that check whether an upstream was called.
    public var requestsReceived: Int { requestCount.load(ordering: .relaxed) }
    /// Completion requests that ended in an assistant message (a prefill to continue).
    public var prefillsReceived: Int { prefillCount.load(ordering: .relaxed) }
    /// The `traceparent` headers of the latest completion requests (`GET /sim/traceparents`), for
    /// tests that check a trace reaches the upstream.
    public var receivedTraceparents: [String] { traceparents.withLock { $0 } }
    /// Streams being written right now; drops when a client goes away mid-stream.
    public var activeStreams: Int { streamCount.load(ordering: .relaxed) }

    /// A Hummingbird application serving the simulator on `host:port` (port 0 picks a free one).
    public func application(host: String, port: Int, logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol
    {
        let router = Router()
        router.get("/healthz") { _, _ in "ok" }
        router.get("/v1/models") { [self] _, _ in jsonResponse(.ok, modelList()) }
        if protocols.servesOpenAI {
            router.post("/v1/chat/completions") { [self] request, _ in try await chatCompletions(request) }
            router.post("/v1/embeddings") { [self] request, _ in try await embeddings(request) }
        }
        if protocols.servesAnthropic {
            router.post("/v1/messages") { [self] request, _ in try await messages(request) }
            router.post("/v1/messages/count_tokens") { [self] request, _ in try await countTokens(request) }
        }
        if protocols == .gemini { addGeminiRoutes(to: router) }
        if protocols == .bedrock {
            router.post("/model/:modelId/converse") { [self] request, context in try await converse(request, context: context, stream: false) }
            router.post("/model/:modelId/converse-stream") { [self] request, context in try await converse(request, context: context, stream: true) }
        }
        if protocols == .azureOpenAI { addAzureRoutes(to: router) }
        router.get("/sim/control") { [self] _, _ in jsonResponse(.ok, currentKnobs.json) }
        router.get("/sim/traceparents") { [self] _, _ in jsonResponse(.ok, ["traceparents": .array(receivedTraceparents.map { .string($0) })]) }
        router.delete("/sim/control") { [self] _, _ in
            resetKnobs()
            return jsonResponse(.ok, currentKnobs.json)
        }
        router.post("/sim/control") { [self] request, _ in
            let body = try await request.body.collect(upTo: 64 * 1024)
            do {
                var updated = currentKnobs
                try updated.update(from: try JSONCoding.decode(body.readableBytesView))
                setKnobs(updated)
                return jsonResponse(.ok, updated.json)
            } catch let error as RequestError {
                return jsonResponse(.badRequest, ErrorBody.openAI(message: error.message, type: "invalid_request_error", param: error.param))
            } catch {
                return jsonResponse(.badRequest, ErrorBody.openAI(message: "malformed JSON: \(error)", type: "invalid_request_error"))
            }
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil, backlog: 4096),
            onServerRunning: { channel in
                // As a provider's front end does, accept a burst of connections at once (NIO takes 4 a read).
                try? await channel.setOption(ChannelOptions.maxMessagesPerRead, value: 256)
                await onRunning(channel.localAddress?.port ?? port)
            },
            logger: logger)
    }

    func modelList() -> JSONValue {
        ["object": "list", "data": .array(models.map {
            ["id": .string($0), "object": "model", "created": 1_700_000_000, "owned_by": "lifeline-simulator",
             "type": "model", "display_name": .string($0), "created_at": "2023-11-14T22:13:20Z"]
        })]
    }

    // MARK: Chat

    private enum Fault { case none, hang, error(Int, String?), rateLimited(Int) }

    private func drawFault() -> Fault {
        let knobs = currentKnobs
        if knobs.hang { return .hang }
        if knobs.errorRate > 0, Double.random(in: 0..<1) < knobs.errorRate { return .error(knobs.errorStatus, knobs.errorMessage) }
        if knobs.rateLimitRate > 0, Double.random(in: 0..<1) < knobs.rateLimitRate { return .rateLimited(knobs.retryAfterSeconds) }
        return .none
    }

    /// The answer a drawn fault gives instead of the real one, if any (hang waits first).
    func faultResponse(api: WireProtocol) async throws -> Response? {
        switch drawFault() {
        case .none:
            return nil
        case .hang:
            try await Task.sleep(for: .seconds(3600))
            return errorResponse(504, "hung", api: api)
        case .error(let status, let message):
            return errorResponse(status, message ?? "The simulator was told to fail (status \(status)).", api: api)
        case .rateLimited(let seconds):
            if api == .gemini {
                // Gemini says how long to wait in a RetryInfo detail, not a header.
                return jsonResponse(.tooManyRequests, GeminiError.body(status: 429, message: "Resource has been exhausted; the simulator was told to refuse.",
                                                                       retryAfterSeconds: seconds))
            }
            var response = errorResponse(429, "Rate limit reached; the simulator was told to refuse.", api: api)
            response.headers[.retryAfter] = String(seconds)
            if api == .azureOpenAI { response.headers[HTTPFields.Element.Name("retry-after-ms")!] = String(seconds * 1000) }
            return response
        }
    }

    private func chatCompletions(_ request: Request) async throws -> Response {
        try await complete(request, api: .openai) { json throws(RequestError) in try OpenAIChatRequest.decode(json) }
    }

    private func messages(_ request: Request) async throws -> Response {
        try await complete(request, api: .anthropic) { json throws(RequestError) in try AnthropicMessagesRequest.decode(json) }
    }

    /// Anthropic's token counter: the same count the simulator reports as a message's `input_tokens`.
    private func countTokens(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 32 * 1024 * 1024)
        do {
            guard var object = try JSONCoding.decode(body.readableBytesView).objectValue else {
                return errorResponse(400, "The request body must be a JSON object.", api: .anthropic)
            }
            guard object["max_tokens"] == nil else {
                return errorResponse(400, "max_tokens: Extra inputs are not permitted", param: "max_tokens", api: .anthropic)
            }
            object["max_tokens"] = 1
            let chat = try AnthropicMessagesRequest.decode(.object(object))
            if let refusal = try await faultResponse(api: .anthropic) { return refusal }
            return jsonResponse(.ok, ["input_tokens": .number(Double(DeterministicText.promptTokens(for: chat)))])
        } catch let error as RequestError {
            return errorResponse(400, error.message, param: error.param, api: .anthropic)
        } catch {
            return errorResponse(400, "We could not parse the JSON body of your request. (\(error))", api: .anthropic)
        }
    }

    private func converse(_ request: Request, context: some RequestContext, stream: Bool) async throws -> Response {
        let raw = context.parameters.get("modelId") ?? ""
        let model = raw.removingPercentEncoding ?? raw
        return try await complete(request, api: .bedrock) { json throws(RequestError) in
            try BedrockConverseRequest.decode(json, modelID: model, stream: stream)
        }
    }

    func errorResponse(_ status: Int, _ message: String, param: String? = nil, api: WireProtocol) -> Response {
        switch api {
        case .openai: jsonResponse(HTTPResponse.Status(code: status), ErrorBody.openAI(message: message, type: ErrorBody.openAIType(status: status), param: param))
        case .anthropic: jsonResponse(HTTPResponse.Status(code: status), ErrorBody.anthropic(message: message, type: ErrorBody.anthropicType(status: status)))
        case .gemini: jsonResponse(HTTPResponse.Status(code: status), GeminiError.body(status: status, message: message))
        case .azureOpenAI: jsonResponse(HTTPResponse.Status(code: status), AzureOpenAIError.body(status: status, message: message, param: param))
        // Bedrock names the error type in a header as well as in the body.
        case .bedrock: BedrockAuthentication.errorResponse(status, type: BedrockError.type(forStatus: status), message)
        }
    }

    /// Answers one chat request in `api`'s shape; `decode` reads its body.
    func complete(_ request: Request, api: WireProtocol, decode: (JSONValue) throws(RequestError) -> ChatRequest) async throws -> Response {
        requestCount.add(1, ordering: .relaxed)
        if let traceparent = request.headers[.traceparent] {
            // Bounded twice: the header's length and the number kept.
            let kept = String(traceparent.prefix(128))
            traceparents.withLock { list in
                list.append(kept)
                if list.count > Self.traceparentsKept { list.removeFirst(list.count - Self.traceparentsKept) }
            }
        }
        let body = try await request.body.collect(upTo: 32 * 1024 * 1024)
        if api == .bedrock, let refusal = bedrockAuthentication.refusal(for: request, body: body.readableBytesView) { return refusal }
        var chat: ChatRequest
        do {
            let json = try JSONCoding.decode(body.readableBytesView)
            chat = try decode(json)
            // Anthropic and Converse have no response_format: a model asked in its system prompt for JSON answers in JSON.
            if api == .anthropic || api == .bedrock, chat.responseFormat == nil { chat.responseFormat = JSONOutputInstruction.format(inSystem: chat.system) }
        } catch let error as RequestError {
            return errorResponse(400, error.message, param: error.param, api: api)
        } catch {
            return errorResponse(400, "We could not parse the JSON body of your request. (\(error))", api: api)
        }
        if chat.assistantPrefill != nil { prefillCount.add(1, ordering: .relaxed) }
        if let refusal = try await faultResponse(api: api) { return refusal }
        let knobs = currentKnobs
        if knobs.contentFilter == .prompt { return contentFilterRefusal(api: api, chat: chat) }
        var planned = chat
        if knobs.restartOnPrefill, planned.assistantPrefill != nil { planned.messages.removeLast() }
        var plans = (0..<chat.choiceCount).map { CompletionPlan.make(for: planned, choice: $0) }
        if knobs.contentFilter == .completion { plans = plans.map { $0.filtered() } }
        let promptTokens = DeterministicText.promptTokens(for: chat)
        let usage = Usage(promptTokens: promptTokens, completionTokens: plans.reduce(0) { $0 + $1.completionTokens })
        let id = (api == .anthropic ? "msg_" : "chatcmpl-") + String(DeterministicText.seed(for: chat, choice: 0), radix: 16)
        let created = Int(Date().timeIntervalSince1970)
        if chat.stream {
            return streamResponse(chat: chat, api: api, plans: plans, usage: usage, id: id, created: created, knobs: knobs)
        }
        let tokenCount = plans.map(\.pieces.count).max() ?? 0
        let delay = Double(knobs.ttftMilliseconds) / 1000 + (knobs.tokensPerSecond > 0 ? Double(tokenCount) / knobs.tokensPerSecond : 0)
        await gate.enter(capacity: knobs.capacity)
        defer { gate.leave() }
        if delay > 0 { try await Task.sleep(for: .seconds(delay)) }
        var response = ChatResponse(
            id: id, model: chat.model, created: created,
            choices: plans.enumerated().map { index, plan in
                var choice = ChatChoice(index: index, text: plan.text, toolCalls: plan.toolCalls, finishReason: plan.finishReason,
                                        logprobs: chat.logprobs ? logprobs(plan.pieces) : nil)
                if !plan.reasoning.isEmpty {
                    choice.reasoning = plan.reasoning.joined()
                    choice.reasoningSignature = api == .anthropic ? Self.signature(plan.reasoning) : nil
                }
                return choice
            },
            usage: usage)
        response.stopSequence = plans.first?.stopSequence
        response.systemFingerprint = api == .openai || api == .azureOpenAI ? "fp_lifeline_sim" : nil
        let answer: JSONValue = switch api {
        case .openai, .azureOpenAI: OpenAIChatResponse.encode(response)
        case .anthropic: AnthropicMessagesResponse.encode(response)
        case .gemini: GeminiResponse.encode(response)
        case .bedrock: BedrockConverseResponse.encode(response)
        }
        let bytes = JSONCoding.encode(answer)
        if knobs.disconnectAfterTokens > 0 {
            // Send part of the body, then cut the connection.
            let partial = Array(bytes.prefix(bytes.count / 2))
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(contentLength: bytes.count) { writer in
                try await writer.write(ByteBuffer(bytes: partial))
                throw SimulatedDisconnect()
            })
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    struct SimulatedDisconnect: Error {}

    /// A thinking block's signature: deterministic, like everything the simulator writes.
    static func signature(_ reasoning: [String]) -> String {
        var hash = StableHash()
        hash.combine(reasoning.joined())
        return "sim-signature-" + String(hash.value, radix: 16)
    }

    private func streamResponse(chat: ChatRequest, api: WireProtocol, plans: [CompletionPlan], usage: Usage, id: String,
                                created: Int, knobs: SimulatorKnobs) -> Response
    {
        var events: [ChatEvent] = []
        for (index, plan) in plans.enumerated() where !plan.reasoning.isEmpty {
            events += plan.reasoning.map { .reasoningDelta(choice: index, text: $0, signature: nil) }
            if api == .anthropic { events.append(.reasoningDelta(choice: index, text: "", signature: Self.signature(plan.reasoning))) }
        }
        // Interleave choices token by token, as OpenAI does for n > 1.
        let longest = plans.map { max($0.pieces.count, $0.toolCalls.isEmpty ? 0 : 1) }.max() ?? 0
        for step in 0..<longest {
            for (index, plan) in plans.enumerated() {
                if step < plan.pieces.count {
                    events.append(.textDelta(choice: index, text: plan.pieces[step], logprobs: chat.logprobs ? logprobs([plan.pieces[step]]) : nil))
                } else if step == 0 {
                    for (callIndex, call) in plan.toolCalls.enumerated() {
                        events.append(.toolCallDelta(choice: index, index: callIndex, id: call.id, name: call.name, arguments: ""))
                        events.append(.toolCallDelta(choice: index, index: callIndex, id: nil, name: nil, arguments: call.arguments))
                    }
                }
            }
        }
        for (index, plan) in plans.enumerated() {
            events.append(.finish(choice: index, reason: plan.finishReason, stopSequence: plan.stopSequence))
        }
        events.append(.usage(usage))
        let plannedEvents = events
        let interval = knobs.tokensPerSecond > 0 ? 1 / knobs.tokensPerSecond : 0
        let cutAfter = knobs.disconnectAfterTokens
        let errorAfter = knobs.streamErrorAfterTokens
        let contentType = api == .bedrock ? "application/vnd.amazon.eventstream" : "text/event-stream"
        return Response(status: .ok, headers: [.contentType: contentType, .cacheControl: "no-cache"], body: ResponseBody { [self] writer in
            streamCount.add(1, ordering: .relaxed)
            defer { streamCount.subtract(1, ordering: .relaxed) }
            await gate.enter(capacity: knobs.capacity)
            defer { gate.leave() }
            if knobs.ttftMilliseconds > 0 { try await Task.sleep(for: .milliseconds(knobs.ttftMilliseconds)) }
            var encoder = SimulatorStreamEncoder(api: api, id: id, model: chat.model, created: created, includeUsage: chat.includeUsage,
                                                 promptTokens: usage.promptTokens)
            var pending: [UInt8] = encoder.start()
            var tokensSent = 0
            for event in plannedEvents {
                pending += encoder.encode(event)
                guard case .textDelta = event else { continue }
                tokensSent += 1
                if cutAfter > 0, tokensSent >= cutAfter {
                    try await writer.write(ByteBuffer(bytes: pending))
                    throw SimulatedDisconnect()
                }
                if errorAfter > 0, tokensSent >= errorAfter {
                    let status = knobs.errorStatus
                    pending += encoder.error(status: status, message: knobs.errorMessage ?? "The simulator was told to fail the stream (status \(status)).")
                    try await writer.write(ByteBuffer(bytes: pending))
                    try await writer.finish(nil)
                    return
                }
                if interval > 0 {
                    try await writer.write(ByteBuffer(bytes: pending))
                    pending.removeAll(keepingCapacity: true)
                    try await Task.sleep(for: .seconds(interval))
                }
            }
            pending += encoder.finish()
            try await writer.write(ByteBuffer(bytes: pending))
            try await writer.finish(nil)
        })
    }

    private func logprobs(_ pieces: [String]) -> JSONValue {
        ["content": .array(pieces.map { piece in
            var hash = StableHash()
            hash.combine(piece)
            return ["token": .string(piece), "logprob": .number(-Double(hash.value % 2000) / 1000),
                    "bytes": .array(piece.utf8.map { .number(Double($0)) }), "top_logprobs": []]
        })]
    }

    // MARK: Embeddings

    private func embeddings(_ request: Request) async throws -> Response {
        requestCount.add(1, ordering: .relaxed)
        let body = try await request.body.collect(upTo: 32 * 1024 * 1024)
        let object: [String: JSONValue]
        do {
            guard let parsed = try JSONCoding.decode(body.readableBytesView).objectValue else {
                return errorResponse(400, "The request body must be a JSON object.", api: .openai)
            }
            object = parsed
        } catch {
            return errorResponse(400, "We could not parse the JSON body of your request. (\(error))", api: .openai)
        }
        if let refusal = try await faultResponse(api: .openai) { return refusal }
        let model = object["model"]?.stringValue ?? "lifeline-sim"
        let inputs: [String]
        switch object["input"] {
        case .string(let s)?: inputs = [s]
        case .array(let items)?: inputs = items.map { $0.stringValue ?? JSONCoding.encodeString($0) }
        default: return errorResponse(400, "'input' must be a string or an array.", param: "input", api: .openai)
        }
        let dimensions = object["dimensions"]?.intValue ?? 256
        guard (1...4096).contains(dimensions) else {
            return errorResponse(400, "'dimensions' must be from 1 to 4096.", param: "dimensions", api: .openai)
        }
        let base64 = object["encoding_format"]?.stringValue == "base64"
        var data: [JSONValue] = []
        var tokens = 0
        for (index, input) in inputs.enumerated() {
            var hash = StableHash()
            hash.combine(model)
            hash.combine(input)
            var generator = SeededGenerator(seed: hash.value)
            var vector = (0..<dimensions).map { _ in Float.random(in: -1...1, using: &generator) }
            let norm = (vector.reduce(0) { $0 + $1 * $1 }).squareRoot()
            vector = vector.map { $0 / max(norm, 1e-9) }
            tokens += max(1, DeterministicText.wordCount(input))
            let embedding: JSONValue = base64
                ? .string(Data(vector.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }).base64EncodedString())
                : .array(vector.map { .number(Double($0)) })
            data.append(["object": "embedding", "index": .number(Double(index)), "embedding": embedding])
        }
        return jsonResponse(.ok, ["object": "list", "data": .array(data), "model": .string(model),
                                  "usage": ["prompt_tokens": .number(Double(tokens)), "total_tokens": .number(Double(tokens))]])
    }
}

func jsonResponse(_ status: HTTPResponse.Status, _ body: JSONValue) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONCoding.encode(body))))
}

extension HTTPField.Name {
    static let traceparent = Self("traceparent")!
}
