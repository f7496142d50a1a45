import Foundation

/// `lifeline check-config --probe`: each configured deployment is asked whether it would answer,
/// so a refused key or a wrong URL shows before it reaches traffic.
public enum DeploymentCheck {
    public enum Evidence: String, Sendable {
        case modelList = "model list"
        case oneTokenRequest = "1-token request"
    }

    public enum Verdict: Sendable, Equatable {
        case ok(via: Evidence)
        case credentialsRejected(status: Int)
        case notFound(status: Int)
        case failedStatus(Int)
        case unreachable
        case timeout
        case unreadable
        /// Not probed: Lifeline starts it itself (`simulator`, `process`), so nothing listens yet.
        case skipped(String)

        init(_ failure: UpstreamFailure) {
            switch failure.kind {
            case .status(let status):
                switch DeploymentProblem.Kind(status: status) {
                case .credentialsRejected?: self = .credentialsRejected(status: status)
                case .notFound?: self = .notFound(status: status)
                case nil: self = .failedStatus(status)
                }
            case .connect, .disconnected: self = .unreachable
            case .timeout: self = .timeout
            case .malformed: self = .unreadable
            }
        }

        public var passed: Bool {
            switch self {
            case .ok, .skipped: true
            default: false
            }
        }

        /// One line for the operator; it names fields to check, never a key or upstream text.
        public var description: String {
            switch self {
            case .ok(let evidence): "ok (\(evidence.rawValue))"
            case .credentialsRejected(let status): "credentials rejected (HTTP \(status)): check api_key"
            case .notFound(let status): "not found (HTTP \(status)): check base_url and model"
            case .failedStatus(let status): "failed: HTTP \(status)"
            case .unreachable: "unreachable: could not connect; check base_url and that the server runs"
            case .timeout: "timed out: no answer in time; check base_url and timeouts"
            case .unreadable: "answered something that is not its protocol: check protocol and base_url"
            case .skipped(let reason): "skipped (\(reason))"
            }
        }
    }

    /// Probes every deployment of `config` at once; results in config order.
    public static func run(_ config: LifelineConfig, timeoutMilliseconds: Int) async -> [(model: String, deployment: String, verdict: Verdict)] {
        let deployments = config.models.flatMap { model in model.deployments.map { (model.name, $0) } }
        return await withTaskGroup(of: (Int, Verdict).self) { group in
            for (index, (_, deployment)) in deployments.enumerated() {
                group.addTask {
                    if deployment.simulator != nil { return (index, .skipped("simulator: lifeline serve starts it")) }
                    if deployment.process != nil { return (index, .skipped("managed process: lifeline serve starts it")) }
                    let client = UpstreamClient(deployment: deployment)
                    let verdict = await client.check(timeoutMilliseconds: timeoutMilliseconds)
                    await client.shutdown()
                    return (index, verdict)
                }
            }
            var verdicts = [Verdict](repeating: .unreachable, count: deployments.count)
            for await (index, verdict) in group { verdicts[index] = verdict }
            return deployments.enumerated().map { ($0.element.0, $0.element.1.name, verdicts[$0.offset]) }
        }
    }
}
