import Foundation
import HTTPTypes
import Hummingbird
import LifelineCore
import LifelineWire
import NIOCore

/// A cacheable request's key, and the expired entry it may fall back on if every deployment fails.
struct AnswerCacheLookup: Sendable {
    let key: String
    let model: String
    let stale: (answer: CachedAnswer, age: Double)?

    /// Keeps a whole answer for the next identical request.
    func store(_ answer: CachedAnswer, in runtime: GatewayRuntime) {
        runtime.answerCaches.store(answer, key: key, model: model)
    }

    /// The stale entry's answer in place of a failure that every deployment had (a 5xx, never the
    /// request's own fault); nil when there is none.
    func staleResponse(for error: GatewayError, chat: ChatRequest, api: ClientAPI, requestID: String, headers: HTTPFields,
                       record: RequestRecord, runtime: GatewayRuntime) async -> Response?
    {
        guard error.status >= 500, let stale else { return nil }
        runtime.metrics.cacheRequest(model: model, result: .stale)
        runtime.logger.warning("answered from a stale cache entry", metadata: [
            "request_id": .string(requestID), "model": .string(model), "age_s": .stringConvertible(Int(stale.age)),
            "attempts": .stringConvertible(record.attempts)])
        return await CachedAnswerResponse(runtime: runtime, chat: chat, api: api, requestID: requestID)
            .response(stale.answer, age: stale.age, result: .stale, headers: headers, record: record)
    }
}

/// Answers from a cache entry in the client's API, streamed or not, without an upstream.
struct CachedAnswerResponse: Sendable {
    let runtime: GatewayRuntime
    let chat: ChatRequest
    let api: ClientAPI
    let requestID: String

    /// Closes `record` as a client outcome (the SLIs count it) that used no upstream.
    func response(_ answer: CachedAnswer, age: Double, result: AnswerCacheResult, headers extra: HTTPFields,
                  record opened: RequestRecord) async -> Response
    {
        var record = opened
        record.status = 200
        record.cacheResult = result
        var headers = extra
        headers[.lifelineCache] = result.rawValue
        headers[.age] = String(Int(age))
        headers[.lifelineAttempts] = String(record.attempts)
        headers[.lifelineDeployment] = "cache"
        let created = Int(Date().timeIntervalSince1970)
        let id = api.answerID(requestID: requestID)
        let body: [UInt8]
        if chat.stream {
            var encoder = ClientStreamEncoder(api: api, id: id, model: chat.model, created: created, includeUsage: chat.includeUsage,
                                              promptTokens: answer.usage.promptTokens)
            // The whole text in one delta: the same event shapes as a live stream, at once.
            var out = answer.text.isEmpty ? [] : encoder.encode(.textDelta(choice: 0, text: answer.text, logprobs: nil))
            out += encoder.encode(.finish(choice: 0, reason: answer.finishReason, stopSequence: answer.stopSequence))
            out += encoder.encode(.usage(answer.usage))
            out += encoder.finish()
            if case .responses(let exchange) = api, let response = encoder.completedResponse { await exchange.keep(response, runtime: runtime) }
            body = out
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            record.firstTokenAt = runtime.clock()
        } else {
            var response = ChatResponse(id: id, model: chat.model, created: created,
                                        choices: [ChatChoice(index: 0, text: answer.text, finishReason: answer.finishReason)], usage: answer.usage)
            response.stopSequence = answer.stopSequence
            body = JSONCoding.encode(await ChatEndpoint.encode(response, api: api, runtime: runtime))
            headers[.contentType] = "application/json"
        }
        runtime.finish(record)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension HTTPField.Name {
    static let lifelineCache = Self("x-lifeline-cache")!
}
