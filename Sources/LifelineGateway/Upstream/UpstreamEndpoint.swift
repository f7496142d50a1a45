import Foundation
import LifelineWire
import NIOHTTP1

/// Where a deployment is called and with which headers, in its protocol's terms.
struct UpstreamEndpoint: Sendable {
    /// A whole answer.
    var completionURL: String
    /// A streamed answer (the same URL except for Gemini and Bedrock, which name the method in the path).
    var streamURL: String
    /// The upstream's model list, for probes and `check-config --probe`; nil for Bedrock, whose
    /// runtime endpoint lists none.
    var modelsURL: String?
    var headers: HTTPHeaders
    /// Bedrock: each request is signed (SigV4) or carries a Bedrock API key; see `authentication`.
    var bedrock: BedrockSigning?

    /// The Azure OpenAI API version used when `api_version` is not configured.
    static let defaultAzureAPIVersion = "2024-10-21"
    /// `api_version: v1` selects Azure's newer `/openai/v1/` API, which takes no version parameter.
    static let azureV1 = "v1"

    init(_ deployment: DeploymentConfig) {
        let base = deployment.baseURL
        var headers = HTTPHeaders([("content-type", "application/json"), ("accept", "application/json, text/event-stream")])
        switch deployment.protocol {
        case .openai:
            completionURL = base + "/chat/completions"
            streamURL = completionURL
            modelsURL = base + "/models"
            if let key = deployment.apiKey { headers.add(name: "authorization", value: "Bearer \(key)") }
        case .anthropic:
            completionURL = base + "/v1/messages"
            streamURL = completionURL
            modelsURL = base + "/v1/models"
            headers.add(name: "anthropic-version", value: "2023-06-01")
            if let key = deployment.apiKey { headers.add(name: "x-api-key", value: key) }
        case .gemini:
            // The model id is checked at config load to hold only characters a path segment may.
            let model = deployment.listedModel
            completionURL = base + "/models/\(model):generateContent"
            streamURL = base + "/models/\(model):streamGenerateContent?alt=sse"
            modelsURL = base + "/models"
            if let key = deployment.apiKey { headers.add(name: "x-goog-api-key", value: key) }
        case .azureOpenAI:
            let version = deployment.apiVersion ?? Self.defaultAzureAPIVersion
            if version == Self.azureV1 {
                completionURL = base + "/openai/v1/chat/completions"
                modelsURL = base + "/openai/v1/models"
            } else {
                completionURL = base + "/openai/deployments/\(deployment.upstreamDeployment)/chat/completions?api-version=\(version)"
                modelsURL = base + "/openai/models?api-version=\(version)"
            }
            streamURL = completionURL
            if let key = deployment.apiKey { headers.add(name: "api-key", value: key) }
        case .bedrock:
            let signing = BedrockSigning(deployment: deployment)
            bedrock = signing
            completionURL = signing.url(stream: false)
            streamURL = signing.url(stream: true)
            modelsURL = nil
            headers.replaceOrAdd(name: "accept", value: "application/json, application/vnd.amazon.eventstream")
        }
        self.headers = headers
    }

    /// The headers that authenticate one POST of `body` to `url`, beyond `headers`: for Bedrock
    /// the SigV4 signature (it covers the time and the body, so it is made per request) or the
    /// API key; nothing for the other protocols, whose key is a fixed header.
    func authentication(url: String, body: [UInt8], date: Date) -> [(String, String)] {
        bedrock?.headers(stream: url == streamURL, body: body, date: date) ?? []
    }

    /// The model ids in a model list answer, in the protocol's shape.
    static func modelIDs(in list: JSONValue, protocol wireProtocol: WireProtocol) -> [String]? {
        if wireProtocol == .gemini {
            return list["models"]?.arrayValue?.compactMap { $0["name"]?.stringValue }.map { $0.hasPrefix("models/") ? String($0.dropFirst(7)) : $0 }
        }
        return list["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
    }
}

extension DeploymentConfig {
    /// The name the upstream knows the model by: Azure's deployment name, else the model id.
    var upstreamDeployment: String { azureDeployment ?? model }

    /// The model id as the upstream's model list names it (Gemini's without its `models/` prefix).
    var listedModel: String { self.protocol == .gemini && model.hasPrefix("models/") ? String(model.dropFirst(7)) : model }

    /// The base URL of a server Lifeline runs itself on loopback `port` (a simulator, a managed process).
    func loopbackBaseURL(port: Int) -> String {
        switch self.protocol {
        case .openai: "http://127.0.0.1:\(port)/v1"
        case .gemini: "http://127.0.0.1:\(port)/v1beta"
        case .anthropic, .azureOpenAI, .bedrock: "http://127.0.0.1:\(port)"
        }
    }
}
