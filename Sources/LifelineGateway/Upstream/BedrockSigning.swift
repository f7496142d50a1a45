import Foundation
import LifelineWire

/// What a request to a Bedrock deployment needs beyond its body: the Converse URLs, and the
/// authentication, SigV4 with the deployment's credentials (service `bedrock`), or a Bedrock
/// API key sent as a bearer token.
struct BedrockSigning: Sendable {
    let signer: AWSSignatureV4?
    let apiKey: String?
    let baseURL: String
    /// `Host` as sent: set explicitly, since the signature covers it.
    let host: String
    /// The base URL's own path (percent-encoded), before `/model/…`.
    let basePath: String
    let modelPath: (plain: String, stream: String)

    init(deployment: DeploymentConfig) {
        baseURL = deployment.baseURL
        let components = URLComponents(string: deployment.baseURL)
        var host = components?.host ?? ""
        if host.contains(":") { host = "[\(host)]" }
        if let port = components?.port, port != (components?.scheme == "https" ? 443 : 80) { host += ":\(port)" }
        self.host = host
        basePath = components?.percentEncodedPath ?? ""
        modelPath = (BedrockConverseRequest.path(modelID: deployment.model, stream: false),
                     BedrockConverseRequest.path(modelID: deployment.model, stream: true))
        signer = deployment.awsCredentials.map {
            AWSSignatureV4(credentials: $0, region: deployment.region ?? DeploymentConfig.bedrockSimulatorRegion, service: "bedrock")
        }
        apiKey = signer == nil ? deployment.apiKey : nil
    }

    func url(stream: Bool) -> String {
        baseURL + (stream ? modelPath.stream : modelPath.plain)
    }

    /// The headers that authenticate a POST of `body` (sent as `application/json`) at `date`.
    func headers(stream: Bool, body: [UInt8], date: Date) -> [(String, String)] {
        guard let signer else { return apiKey.map { [("authorization", "Bearer \($0)")] } ?? [] }
        let path = basePath + (stream ? modelPath.stream : modelPath.plain)
        return [("host", host)] + signer.sign(method: "POST", path: path, headers: [("host", host), ("content-type", "application/json")],
                                              body: body, date: date)
    }
}
