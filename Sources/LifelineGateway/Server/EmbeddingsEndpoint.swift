import Hummingbird
import LifelineWire
import NIOCore

/// `POST /v1/embeddings`: OpenAI-protocol deployments only, with the same failover as chat.
struct EmbeddingsEndpoint: Sendable {
    let runtime: GatewayRuntime

    func handle(_ request: Request, context: GatewayRequestContext) async -> Response {
        await ClientConnection.untilClosed(context.channel) { [self] in await respond(request, context: context) }
    }

    private func respond(_ request: Request, context: GatewayRequestContext) async -> Response {
        var record = RequestRecord(route: "embeddings", requestID: context.requestID, started: runtime.clock())
        let config = runtime.config
        let gate = AccessGate(runtime: runtime)
        let caller: Caller
        switch gate.authenticate(request) {
        case .failure(let error): return refuse(error, record: &record)
        case .success(let found): caller = found
        }
        record.caller = caller
        let object: [String: JSONValue]
        do throws(GatewayError) {
            guard let value = try await JSONContentType.readBody(request, limit: config.server.maxBodyBytes, metrics: runtime.metrics).objectValue else {
                throw GatewayError(status: 400, message: "The request body must be a JSON object.")
            }
            object = value
            try validate(object)
        } catch {
            return refuse(error, record: &record)
        }
        let model = object["model"]?.stringValue ?? ""
        record.model = model
        guard let group = runtime.pool.models[model] else { return refuse(.unknownModel(model, usable: caller.usableModels(of: runtime.pool.modelNames)), record: &record) }
        let inputCharacters = JSONCoding.encode(object["input"] ?? .null).count
        if let refusal = await gate.admit(caller, model: model, request: request, estimatedTokens: inputCharacters / 4 + 1, record: &record) {
            return refuse(refusal, record: &record)
        }
        group.recordRequest()
        let order = group.attemptOrder(openAIOnly: true)
        if order.isEmpty, !group.deployments.contains(where: { $0.config.protocol == .openai }) {
            return refuse(GatewayError(status: 400, message: "Model '\(model)' has no OpenAI-protocol deployment that serves embeddings.",
                                       param: "model"), record: &record)
        }
        let failover = Failover(group: group, routing: config.routing, metrics: runtime.metrics, slotWait: config.admission.queue.maximumWait)
        let result = await failover.run(order, phase: .beforeFirstByte, record: &record) { deployment throws(UpstreamFailure) in
            var upstreamBody = object
            upstreamBody["model"] = .string(deployment.config.model)
            return try await deployment.embeddings(.object(upstreamBody))
        }
        switch result {
        case .failure(let error):
            return refuse(error, record: &record)
        case .success(let (answer, deployment)):
            var bytes = answer
            if case .object(var fields)? = try? JSONCoding.decode(answer.readableBytesView) {
                fields["model"] = .string(model)
                bytes = ByteBuffer(bytes: JSONCoding.encode(.object(fields)))
            }
            record.deployment = deployment.name
            if let used = (try? JSONCoding.decode(bytes.readableBytesView))?["usage"]?["prompt_tokens"]?.intValue {
                record.usage = Usage(promptTokens: used, completionTokens: 0)
            }
            runtime.finish(record)
            var headers = gate.rateLimitHeaders(caller)
            headers[.contentType] = "application/json"
            headers[.lifelineDeployment] = deployment.name
            headers[.lifelineAttempts] = String(record.attempts)
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: bytes))
        }
    }

    private func validate(_ object: [String: JSONValue]) throws(GatewayError) {
        guard object["model"]?.stringValue != nil else {
            throw GatewayError(status: 400, message: "Missing required parameter: 'model'.", param: "model")
        }
        switch object["input"] {
        case .string?, .array?: break
        case nil: throw GatewayError(status: 400, message: "Missing required parameter: 'input'.", param: "input")
        case let other?:
            throw GatewayError(status: 400, message: "Invalid type for 'input': expected a string or an array, but got \(other.typeName).",
                               param: "input")
        }
        if let format = object["encoding_format"]?.stringValue, format != "float", format != "base64" {
            throw GatewayError(status: 400, message: "Invalid value for 'encoding_format': expected 'float' or 'base64'.",
                               param: "encoding_format")
        }
    }

    private func refuse(_ error: GatewayError, record: inout RequestRecord) -> Response {
        record.status = error.status
        runtime.finish(record)
        return error.response(for: .openai, headers: AccessGate(runtime: runtime).rateLimitHeaders(record.caller))
    }
}
