import Hummingbird
import LifelineWire
import NIOCore

/// `POST /v1/embeddings`: OpenAI-protocol deployments only, with the same failover as chat.
struct EmbeddingsEndpoint: Sendable {
    let pool: DeploymentPool
    let maxBodyBytes: Int

    func handle(_ request: Request, context: GatewayRequestContext) async -> Response {
        let object: [String: JSONValue]
        do {
            let body = try await request.body.collect(upTo: maxBodyBytes)
            guard let parsed = try? JSONCoding.decode(body.readableBytesView) else {
                return GatewayError.malformedJSON("not valid JSON").response(for: .openai)
            }
            guard let value = parsed.objectValue else {
                return GatewayError(status: 400, message: "The request body must be a JSON object.").response(for: .openai)
            }
            object = value
        } catch {
            return GatewayError.tooLarge(limit: maxBodyBytes).response(for: .openai)
        }
        guard let model = object["model"]?.stringValue else {
            return GatewayError(status: 400, message: "Missing required parameter: 'model'.", param: "model").response(for: .openai)
        }
        switch object["input"] {
        case .string?, .array?: break
        case nil: return GatewayError(status: 400, message: "Missing required parameter: 'input'.", param: "input").response(for: .openai)
        case let other?:
            return GatewayError(status: 400, message: "Invalid type for 'input': expected a string or an array, but got \(other.typeName).",
                                param: "input").response(for: .openai)
        }
        if let format = object["encoding_format"]?.stringValue, format != "float", format != "base64" {
            return GatewayError(status: 400, message: "Invalid value for 'encoding_format': expected 'float' or 'base64'.",
                                param: "encoding_format").response(for: .openai)
        }
        guard let group = pool.models[model] else { return GatewayError.unknownModel(model).response(for: .openai) }
        let attempts = group.attemptOrder(openAIOnly: true)
        guard !attempts.isEmpty else {
            return GatewayError(status: 400, message: "Model '\(model)' has no OpenAI-protocol deployment that serves embeddings.",
                                param: "model").response(for: .openai)
        }
        var failures: [UpstreamFailure] = []
        for (number, deployment) in attempts.prefix(3).enumerated() {
            var upstreamBody = object
            upstreamBody["model"] = .string(deployment.config.model)
            do {
                let answer = try await deployment.client.embeddings(.object(upstreamBody))
                var bytes = answer
                if var json = try? JSONCoding.decode(answer.readableBytesView), case .object(var fields) = json {
                    fields["model"] = .string(model)
                    json = .object(fields)
                    bytes = ByteBuffer(bytes: JSONCoding.encode(json))
                }
                return Response(status: .ok, headers: [
                    .contentType: "application/json", .lifelineDeployment: deployment.name, .lifelineAttempts: String(number + 1),
                ], body: ResponseBody(byteBuffer: bytes))
            } catch {
                guard error.isRetryable else { return ChatEndpoint.clientFault(error).response(for: .openai) }
                failures.append(error)
            }
        }
        return ChatEndpoint.allFailed(model: model, failures: failures).response(for: .openai)
    }
}
