import LifelineWire

/// What a client is told when upstreams refused or failed its request.
///
/// An upstream's error text may quote the key it was sent, so it reaches a client only when the
/// request itself was at fault (400, 422), and then redacted. When no deployment answered, the
/// client reads Lifeline's own words: the deployments' configuration problems and the last
/// failure's kind and status, never an upstream body.
enum UpstreamErrorReport {
    /// Longest upstream message passed on to a client.
    static let maximumMessageLength = 1000

    /// The request's own fault, with the upstream's words redacted of anything like a secret.
    static func clientFault(_ failure: UpstreamFailure) -> GatewayError {
        guard case .status(let status) = failure.kind else { return allFailed(model: "", failures: [failure], budgetSpent: false) }
        if AzureOpenAIError.isContentFilter(failure.body) {
            return GatewayError(status: 400, message: "The upstream's content filter refused the prompt; rephrase it and try again.",
                                code: "content_filter")
        }
        let message = String(SecretRedactor.shared.redactForClient(failure.message).prefix(maximumMessageLength))
        let param = failure.body?["error"]?["param"]?.stringValue.map { String(SecretRedactor.shared.redactForClient($0).prefix(200)) }
        return GatewayError(status: status, message: message.isEmpty ? "The upstream refused the request." : message, param: param)
    }

    /// Every attempt failed. When each deployment tried refused for a reason only its
    /// configuration can fix (credentials, URL or model), 502 naming what to check; otherwise 503
    /// with a Retry-After the client can act on.
    static func allFailed(model: String, failures: [UpstreamFailure], budgetSpent: Bool) -> GatewayError {
        let retryAfter = failures.compactMap(\.retryAfterSeconds).max().map { Int($0.rounded(.up)) } ?? 1
        var problems: [(deployment: String, kind: DeploymentProblem.Kind)] = []
        for failure in failures {
            guard let kind = DeploymentProblem.kind(of: failure), let deployment = failure.deployment,
                  !problems.contains(where: { $0.deployment == deployment }) else { continue }
            problems.append((deployment, kind))
        }
        let advice = problems.map { $0.kind.advice(deployment: $0.deployment) }.joined(separator: "; ")
        if !failures.isEmpty, !budgetSpent, failures.allSatisfy({ DeploymentProblem.kind(of: $0) != nil && $0.deployment != nil }) {
            return GatewayError(status: 502, message: "No deployment of model '\(model)' could answer: \(advice).",
                                code: "upstream_misconfigured")
        }
        var message = failures.isEmpty
            ? "No deployment of model '\(model)' is available right now."
            : "Every deployment of model '\(model)' that was tried failed."
        if !advice.isEmpty { message += " \(advice.prefix(1).uppercased() + advice.dropFirst())." }
        if budgetSpent { message += " The retry budget is spent, so no further deployment was tried." }
        if let last = failures.last { message += " Last error: \(last.summary)." }
        return GatewayError(status: 503, message: message, code: "upstream_unavailable", retryAfterSeconds: max(retryAfter, 1))
    }
}
