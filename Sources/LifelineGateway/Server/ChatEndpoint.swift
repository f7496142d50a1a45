import Foundation
import HTTPTypes
import Hummingbird
import LifelineCore
import LifelineWire
import Logging
import NIOCore

/// `POST /v1/chat/completions` and `POST /v1/messages`: decode, route with failover, answer in the client's API.
/// `serve` is the path every client API shares once its request is decoded (`ResponsesEndpoint` too).
struct ChatEndpoint: Sendable {
    let runtime: GatewayRuntime

    /// Answers one request; a client that hangs up before its answer begins cancels the work.
    func handle(_ request: Request, context: GatewayRequestContext, api: WireProtocol) async -> Response {
        await ClientConnection.untilClosed(context.channel) { [self] in await respond(request, context: context, api: api) }
    }

    private func respond(_ request: Request, context: GatewayRequestContext, api: WireProtocol) async -> Response {
        let client = ClientAPI(api)
        var record = RequestRecord(route: client.route, requestID: context.requestID, started: runtime.clock())
        let config = runtime.config
        let gate = AccessGate(runtime: runtime)
        let caller: Caller
        switch gate.authenticate(request) {
        case .failure(let error): return refuse(error, api: client, record: &record)
        case .success(let found): caller = found
        }
        record.caller = caller
        let chat: ChatRequest
        do throws(GatewayError) {
            let json = try await JSONContentType.readBody(request, limit: config.server.maxBodyBytes, metrics: runtime.metrics)
            chat = try decode(json, api: api)
        } catch {
            return refuse(error, api: client, record: &record)
        }
        return await serve(chat, api: client, caller: caller, request: request, context: context, record: record)
    }

    /// Routes a decoded request with failover and answers in the client's API; closes its record.
    func serve(_ chat: ChatRequest, api: ClientAPI, caller: Caller, request: Request, context: GatewayRequestContext,
               record opened: RequestRecord) async -> Response
    {
        var record = opened
        let config = runtime.config
        let gate = AccessGate(runtime: runtime)
        record.model = chat.model
        record.stream = chat.stream
        if runtime.tracing { record.startSpan(model: chat.model, api: api.route, stream: chat.stream) }
        guard let group = runtime.pool.models[chat.model] else { return refuse(.unknownModel(chat.model, usable: caller.usableModels(of: runtime.pool.modelNames)), api: api, record: &record) }
        // The cache comes before admission and routing: a hit takes no slot and reaches no upstream.
        var cacheResult: AnswerCacheResult?
        var cache: AnswerCacheLookup?
        if let policy = runtime.answerCaches.policy(for: chat.model) {
            // A cached answer goes only where the request itself may go.
            if case .failure(let refusal) = gate.permit(caller, model: chat.model, request: request) { return refuse(refusal, api: api, record: &record) }
            if policy.bypassReason(temperature: chat.temperature, seed: chat.seed, choiceCount: chat.choiceCount, logprobs: chat.logprobs) != nil {
                runtime.metrics.cacheRequest(model: chat.model, result: .bypass)
                cacheResult = .bypass
            } else {
                let key = AnswerCacheKey.key(for: chat, scope: policy.shared ? "shared" : caller.id)
                var found = runtime.answerCaches.lookup(key, model: chat.model)
                if case .absent = found, policy.store { found = await runtime.answerCaches.lookupStored(key, model: chat.model) }
                switch found {
                case .fresh(let answer, let age):
                    runtime.metrics.cacheRequest(model: chat.model, result: .hit)
                    return await CachedAnswerResponse(runtime: runtime, chat: chat, api: api, requestID: context.requestID)
                        .response(answer, age: age, result: .hit, headers: gate.rateLimitHeaders(caller), record: record)
                case .stale(let answer, let age): cache = AnswerCacheLookup(key: key, model: chat.model, stale: (answer, age))
                case .absent: cache = AnswerCacheLookup(key: key, model: chat.model, stale: nil)
                }
                runtime.metrics.cacheRequest(model: chat.model, result: .miss)
                cacheResult = .miss
            }
        }
        if let refusal = await gate.admit(caller, model: chat.model, request: request, estimatedTokens: AccessGate.estimateTokens(chat),
                                          record: &record)
        {
            return refuse(refusal, api: api, record: &record)
        }
        // The caller's limits as this request left them.
        var answerHeaders = gate.rateLimitHeaders(caller)
        if let cacheResult { answerHeaders[.lifelineCache] = cacheResult.rawValue }
        group.recordRequest()
        let needsOpenAI = chat.choiceCount > 1 || chat.logprobs
        let order = group.attemptOrder(openAIOnly: needsOpenAI, estimatedTokens: record.estimatedTokens ?? 0)
        if order.isEmpty, needsOpenAI, !group.deployments.contains(where: { $0.config.protocol == .openai }) {
            return refuse(GatewayError(status: 400, message: "'n' above 1 and 'logprobs' need an OpenAI-protocol deployment, and model '\(chat.model)' has none.",
                                       param: chat.choiceCount > 1 ? "n" : "logprobs"), api: api, record: &record)
        }
        let failover = Failover(group: group, routing: config.routing, metrics: runtime.metrics, slotWait: config.admission.queue.maximumWait)
        if chat.stream {
            return await StreamRelay(chat: chat, api: api, order: order, failover: failover, runtime: runtime,
                                     requestID: context.requestID, logger: context.logger, cache: cache).response(record: record, headers: answerHeaders)
        }
        let result = await failover.run(order, phase: .beforeFirstByte, record: &record) { deployment throws(UpstreamFailure) in
            try await deployment.complete(chat.upstreamRequest(for: deployment))
        }
        switch result {
        case .failure(let error):
            if let cache, let stale = await cache.staleResponse(for: error, chat: chat, api: api, requestID: context.requestID, headers: answerHeaders,
                                                                record: record, runtime: runtime)
            {
                return stale
            }
            return refuse(error, api: api, record: &record)
        case .success(let (original, deployment)):
            var answer = original
            if chat.gatewayAppliesStop(on: deployment), var choice = answer.choices.first {
                let (text, matched) = StopSequenceScanner.cut(choice.text, at: chat.stop)
                if let matched {
                    choice.text = text
                    choice.finishReason = .stopSequence
                    answer.stopSequence = matched
                    answer.choices[0] = choice
                }
            }
            record.answeredSystem = deployment.config.protocol.genAISystem
            record.responseModel = original.model.isEmpty ? deployment.config.model : original.model
            record.closeAttemptSpan(failure: nil, usage: answer.usage, responseModel: record.responseModel)
            answer.model = chat.model
            answer.id = api.answerID(requestID: context.requestID)
            if answer.created == 0 { answer.created = Int(Date().timeIntervalSince1970) }
            if let cache, let entry = CachedAnswer(answer) { cache.store(entry, in: runtime) }
            record.deployment = deployment.name
            record.usage = answer.usage
            runtime.finish(record)
            let body = await Self.encode(answer, api: api, runtime: runtime)
            var headers = answerHeaders
            headers[.contentType] = "application/json"
            headers[.lifelineDeployment] = deployment.name
            headers[.lifelineAttempts] = String(record.attempts)
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONCoding.encode(body))))
        }
    }

    /// A whole answer in the client's API; a Responses answer is kept when the request asked.
    static func encode(_ answer: ChatResponse, api: ClientAPI, runtime: GatewayRuntime) async -> JSONValue {
        switch api {
        case .openai: return OpenAIChatResponse.encode(answer)
        case .anthropic: return AnthropicMessagesResponse.encode(answer)
        case .responses(let exchange):
            let body = ResponsesResponse.encode(answer, header: exchange.header)
            await exchange.keep(body, runtime: runtime)
            return body
        }
    }

    /// Answers with an error in the client's API shape, and closes the record.
    func refuse(_ error: GatewayError, api: ClientAPI, record: inout RequestRecord) -> Response {
        record.status = error.status
        runtime.finish(record)
        var headers = AccessGate(runtime: runtime).rateLimitHeaders(record.caller)
        if record.attempts > 0 { headers[.lifelineAttempts] = String(record.attempts) }
        if let deployment = record.deployment { headers[.lifelineDeployment] = deployment }
        return error.response(for: api.errorShape, headers: headers)
    }

    private func decode(_ json: JSONValue, api: WireProtocol) throws(GatewayError) -> ChatRequest {
        do {
            // Clients speak OpenAI's API or Anthropic's; the other protocols are upstreams only.
            return api == .anthropic ? try AnthropicMessagesRequest.decode(json) : try OpenAIChatRequest.decode(json)
        } catch {
            throw GatewayError(error)
        }
    }
}

/// Reads a request body as JSON within the size limit.
func readJSON(_ request: Request, limit: Int) async throws(GatewayError) -> JSONValue {
    let body: ByteBuffer
    do {
        body = try await request.body.collect(upTo: limit)
    } catch {
        throw .tooLarge(limit: limit)
    }
    do {
        return try JSONCoding.decode(body.readableBytesView)
    } catch {
        throw .malformedJSON(error.description)
    }
}

extension HTTPField.Name {
    static let lifelineDeployment = Self("x-lifeline-deployment")!
    static let lifelineAttempts = Self("x-lifeline-attempts")!
    static let requestID = Self("x-request-id")!
}
