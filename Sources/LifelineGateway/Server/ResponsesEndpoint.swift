import Foundation
import Hummingbird
import LifelineStore
import LifelineWire
import NIOCore

/// `POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`: OpenAI's Responses API over the chat path.
///
/// A request becomes the canonical `ChatRequest` (after the stored conversation it continues,
/// when it names `previous_response_id`) and is served by `ChatEndpoint.serve` like any chat
/// request; only the answer's shape and its keeping are its own. Stored answers belong to the
/// caller that created them: another key neither reads nor continues them.
struct ResponsesEndpoint: Sendable {
    let runtime: GatewayRuntime

    /// Answers one request; a client that hangs up before its answer begins cancels the work.
    func create(_ request: Request, context: GatewayRequestContext) async -> Response {
        await ClientConnection.untilClosed(context.channel) { [self] in await respond(request, context: context) }
    }

    private func respond(_ request: Request, context: GatewayRequestContext) async -> Response {
        let chat = ChatEndpoint(runtime: runtime)
        let config = runtime.config
        var record = RequestRecord(route: "responses", requestID: context.requestID, started: runtime.clock())
        let caller: Caller
        switch AccessGate(runtime: runtime).authenticate(request) {
        case .failure(let error): return chat.refuse(error, api: .openai, record: &record)
        case .success(let found): caller = found
        }
        record.caller = caller
        var turn: ResponsesTurn
        do throws(GatewayError) {
            let json = try await JSONContentType.readBody(request, limit: config.server.maxBodyBytes, metrics: runtime.metrics)
            do {
                turn = try ResponsesRequest.decode(json)
            } catch {
                throw GatewayError(error)
            }
            if let previous = turn.previousResponseID {
                try await prepend(previous, to: &turn, caller: caller, limit: 4 * config.server.maxBodyBytes)
            }
        } catch {
            return chat.refuse(error, api: .openai, record: &record)
        }
        let header = ResponsesResponse.Header(id: Self.newID(), model: turn.chat.model, createdAt: Int(runtime.wallClock()), echoed: turn.echoed)
        let exchange = ResponsesExchange(turn: turn, header: header, owner: caller.id)
        return await chat.serve(turn.chat, api: .responses(exchange), caller: caller, request: request, context: context, record: record)
    }

    /// `GET /v1/responses/{id}`: a stored answer of the caller's, as it was sent.
    func retrieve(_ request: Request, context: GatewayRequestContext) async -> Response {
        let caller: Caller
        switch AccessGate(runtime: runtime).authenticate(request) {
        case .failure(let error): return error.response(for: .openai)
        case .success(let found): caller = found
        }
        let id = context.parameters.get("id") ?? ""
        do throws(GatewayError) {
            guard let stored = try await stored(id, caller: caller) else {
                throw GatewayError(status: 404, message: "Response with id '\(Self.shown(id))' not found.", param: "response_id")
            }
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: stored.response)))
        } catch {
            return error.response(for: .openai)
        }
    }

    /// `DELETE /v1/responses/{id}`: forgets a stored answer of the caller's.
    func delete(_ request: Request, context: GatewayRequestContext) async -> Response {
        let caller: Caller
        switch AccessGate(runtime: runtime).authenticate(request) {
        case .failure(let error): return error.response(for: .openai)
        case .success(let found): caller = found
        }
        let id = context.parameters.get("id") ?? ""
        let notFound = GatewayError(status: 404, message: "Response with id '\(Self.shown(id))' not found.", param: "response_id")
        guard id.hasPrefix("resp_"), id.utf8.count <= 100 else { return notFound.response(for: .openai) }
        do {
            guard try await runtime.store.deleteStoredResponse(id: id, owner: caller.id) else { return notFound.response(for: .openai) }
        } catch {
            runtime.logger.warning("stored response could not be deleted", metadata: ["error": "\(error)"])
            return GatewayError(status: 503, message: "Stored responses cannot be changed right now; try again shortly.",
                                code: "store_unavailable", retryAfterSeconds: 1).response(for: .openai)
        }
        return jsonResponse(.ok, ["id": .string(id), "object": "response", "deleted": true])
    }

    /// Puts the conversation of `previousID` (the caller's own) before this turn's input.
    private func prepend(_ previousID: String, to turn: inout ResponsesTurn, caller: Caller, limit: Int) async throws(GatewayError) {
        guard let stored = try await stored(previousID, caller: caller) else {
            throw GatewayError(status: 400, message: "Previous response with id '\(Self.shown(previousID))' not found.",
                               param: "previous_response_id", code: "previous_response_not_found")
        }
        // Each stored turn holds the whole conversation; past the limit it cannot grow further.
        guard stored.conversation.utf8.count <= limit else {
            throw GatewayError(status: 400, message: "The conversation of response '\(Self.shown(previousID))' is longer than \(limit) bytes and cannot be continued; start a new one.",
                               param: "previous_response_id")
        }
        guard let history = (try? JSONCoding.decode(Array(stored.conversation.utf8)))?.arrayValue else {
            throw GatewayError(status: 400, message: "The stored conversation of response '\(Self.shown(previousID))' cannot be read.", param: "previous_response_id")
        }
        do {
            try turn.continuing(from: history)
        } catch {
            throw GatewayError(error)
        }
    }

    private func stored(_ id: String, caller: Caller) async throws(GatewayError) -> StoredResponse? {
        guard id.hasPrefix("resp_"), id.utf8.count <= 100 else { return nil }
        do {
            return try await runtime.store.storedResponse(id: id, owner: caller.id, now: runtime.wallClock())
        } catch {
            runtime.logger.warning("stored response could not be read", metadata: ["error": "\(error)"])
            throw GatewayError(status: 503, message: "Stored responses cannot be read right now; try again shortly.",
                               code: "store_unavailable", retryAfterSeconds: 1)
        }
    }

    /// `resp_` and 128 random bits: the id is the only handle to a stored answer, so it must not be guessable.
    static func newID() -> String {
        var random = SystemRandomNumberGenerator()
        return "resp_" + (0..<2).map { _ in
            let hex = String(UInt64.random(in: 0...UInt64.max, using: &random), radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// An id as quoted in a message: hostile input is cut short.
    private static func shown(_ id: String) -> String { id.count > 100 ? String(id.prefix(100)) + "…" : id }
}

/// One Responses request on its way through the chat path: the header of its answer object,
/// and what keeping that answer needs.
struct ResponsesExchange: Sendable {
    let turn: ResponsesTurn
    let header: ResponsesResponse.Header
    /// The caller's id: only that caller reads or continues the stored answer.
    let owner: String

    /// Keeps a finished answer for `GET /v1/responses/{id}` and `previous_response_id`, when the
    /// request asked for it (`store`, true unless turned off). A store that fails costs the
    /// answer nothing: it is logged and the client still gets its answer.
    func keep(_ response: JSONValue, runtime: GatewayRuntime) async {
        guard turn.store else { return }
        let now = runtime.wallClock()
        let storage = runtime.config.storage
        let conversation = turn.conversation(appending: response["output"]?.arrayValue ?? [])
        let stored = StoredResponse(id: header.id, owner: owner, createdAt: now, expiresAt: now + storage.responsesTTLSeconds,
                                    response: JSONCoding.encodeString(response), conversation: JSONCoding.encodeString(.array(conversation)))
        do {
            try await runtime.store.save(stored, now: now, limit: storage.maxStoredResponses)
        } catch {
            runtime.logger.warning("response could not be stored", metadata: ["response_id": .string(header.id), "error": "\(error)"])
        }
    }
}
