import Foundation
import HTTPTypes
import Hummingbird
import LifelineWire
import Logging
import NIOCore

/// `POST /v1/chat/completions` and `POST /v1/messages`: decode, route with failover, answer in the client's API.
struct ChatEndpoint: Sendable {
    let pool: DeploymentPool
    let routing: RoutingConfig
    let maxBodyBytes: Int

    func handle(_ request: Request, context: GatewayRequestContext, api: WireProtocol) async -> Response {
        let chat: ChatRequest
        do throws(GatewayError) {
            let json = try await readJSON(request)
            chat = try decode(json, api: api)
        } catch {
            return error.response(for: api)
        }
        guard let group = pool.models[chat.model] else { return GatewayError.unknownModel(chat.model).response(for: api) }
        let needsOpenAI = chat.choiceCount > 1 || chat.logprobs
        let order = group.attemptOrder(openAIOnly: needsOpenAI)
        guard !order.isEmpty else {
            if needsOpenAI, !group.deployments.contains(where: { $0.config.protocol == .openai }) {
                return GatewayError(status: 400, message: "'n' above 1 and 'logprobs' need an OpenAI-protocol deployment, and model '\(chat.model)' has none.",
                                    param: chat.choiceCount > 1 ? "n" : "logprobs").response(for: api)
            }
            return GatewayError(status: 503, message: "No deployment of model '\(chat.model)' is available right now.",
                                code: "no_deployment_available", retryAfterSeconds: 1).response(for: api)
        }
        let attempts = Array(order.prefix(routing.maxAttempts))
        if chat.stream {
            return await StreamRelay(chat: chat, api: api, order: order, attempts: attempts, routing: routing,
                                     requestID: context.requestID, logger: context.logger).response()
        }
        return await completeWithFailover(chat, api: api, attempts: attempts, context: context)
    }

    private func readJSON(_ request: Request) async throws(GatewayError) -> JSONValue {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxBodyBytes)
        } catch {
            throw .tooLarge(limit: maxBodyBytes)
        }
        do {
            return try JSONCoding.decode(body.readableBytesView)
        } catch {
            throw .malformedJSON(error.description)
        }
    }

    private func decode(_ json: JSONValue, api: WireProtocol) throws(GatewayError) -> ChatRequest {
        do {
            switch api {
            case .openai: return try OpenAIChatRequest.decode(json)
            case .anthropic: return try AnthropicMessagesRequest.decode(json)
            }
        } catch {
            throw GatewayError(error)
        }
    }

    private func completeWithFailover(_ chat: ChatRequest, api: WireProtocol, attempts: [Deployment], context: GatewayRequestContext) async -> Response {
        var failures: [UpstreamFailure] = []
        for (number, deployment) in attempts.enumerated() {
            do {
                var answer = try await deployment.client.complete(chat)
                answer.model = chat.model
                answer.id = (api == .openai ? "chatcmpl-" : "msg_") + context.requestID
                if answer.created == 0 { answer.created = Int(Date().timeIntervalSince1970) }
                let body = api == .openai ? OpenAIChatResponse.encode(answer) : AnthropicMessagesResponse.encode(answer)
                return Response(status: .ok, headers: [
                    .contentType: "application/json",
                    .lifelineDeployment: deployment.name,
                    .lifelineAttempts: String(number + 1),
                ], body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONCoding.encode(body))))
            } catch {
                context.logger.warning("upstream attempt failed", metadata: [
                    "deployment": .string(deployment.name), "failure": .string(error.description)])
                guard error.isRetryable else {
                    return Self.clientFault(error).response(for: api, headers: [.lifelineDeployment: deployment.name,
                                                                                .lifelineAttempts: String(number + 1)])
                }
                failures.append(error)
            }
        }
        return Self.allFailed(model: chat.model, failures: failures).response(for: api, headers: [.lifelineAttempts: String(attempts.count)])
    }

    /// An upstream refusal caused by the request itself, passed on with the upstream's words.
    static func clientFault(_ failure: UpstreamFailure) -> GatewayError {
        guard case .status(let status) = failure.kind else { return allFailed(model: "", failures: [failure]) }
        let param = failure.body?["error"]?["param"]?.stringValue
        return GatewayError(status: status, message: failure.message.isEmpty ? "The upstream refused the request." : failure.message, param: param)
    }

    /// Every attempt failed: 503 with a Retry-After the client can act on.
    static func allFailed(model: String, failures: [UpstreamFailure]) -> GatewayError {
        let retryAfter = failures.compactMap(\.retryAfterSeconds).max().map { Int($0.rounded(.up)) } ?? 1
        let detail = failures.last.map { " Last error: \($0.description)." } ?? ""
        return GatewayError(status: 503, message: "Every deployment of model '\(model)' failed or is unavailable.\(detail)",
                            code: "upstream_unavailable", retryAfterSeconds: max(retryAfter, 1))
    }
}

extension HTTPField.Name {
    static let lifelineDeployment = Self("x-lifeline-deployment")!
    static let lifelineAttempts = Self("x-lifeline-attempts")!
    static let requestID = Self("x-request-id")!
}
