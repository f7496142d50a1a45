import LifelineWire
import Synchronization

/// A deployment fault that no amount of traffic fixes: the upstream refused Lifeline's
/// credentials (401, 403) or does not know the URL or model it was configured with (404).
/// Operators see it in the deployment listing until the deployment answers again.
public struct DeploymentProblem: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case credentialsRejected = "credentials_rejected"
        case notFound = "not_found"

        init?(status: Int) {
            switch status {
            case 401, 403: self = .credentialsRejected
            case 404: self = .notFound
            default: return nil
            }
        }

        /// The `outcome` label of `lifeline_upstream_requests_total`.
        var outcome: String { self == .credentialsRejected ? "auth_error" : "not_found" }

        /// What an operator should check, in a sentence that holds no secret.
        func advice(deployment: String) -> String {
            switch self {
            case .credentialsRejected: "deployment '\(deployment)' rejected Lifeline's credentials; check its api_key"
            case .notFound: "deployment '\(deployment)' answered not found; check its base_url and model"
            }
        }

        /// A few words for the listing and the console.
        var headline: String {
            switch self {
            case .credentialsRejected: "rejected our credentials"
            case .notFound: "answered not found: check base_url and model"
            }
        }
    }

    public var kind: Kind
    public var status: Int
    /// Monotonic clock seconds of the first and latest refusal since the last success.
    public var since: Double
    public var lastAt: Double
    public var count: Int

    /// The problem a failure shows, if it is one.
    static func kind(of failure: UpstreamFailure?) -> Kind? {
        guard case .status(let status)? = failure?.kind else { return nil }
        return Kind(status: status)
    }
}

/// The latest problem of one deployment: set by each refusal, cleared by its next answer, and
/// shown as `lifeline_deployment_problem{deployment,kind}` (1 while it stands).
final class DeploymentProblemLog: Sendable {
    private let current = Mutex<DeploymentProblem?>(nil)
    private let deployment: String
    private let metrics: GatewayMetrics

    init(deployment: String, metrics: GatewayMetrics) {
        self.deployment = deployment
        self.metrics = metrics
        for kind in DeploymentProblem.Kind.allCases { metrics.deploymentProblem(deployment: deployment, kind: kind.rawValue, active: false) }
    }

    /// Records one attempt's outcome (nil: the deployment answered).
    func record(_ failure: UpstreamFailure?, at now: Double) {
        guard let failure else {
            if let cleared = current.withLock({ problem in defer { problem = nil }; return problem }) {
                metrics.deploymentProblem(deployment: deployment, kind: cleared.kind.rawValue, active: false)
            }
            return
        }
        guard let kind = DeploymentProblem.kind(of: failure), case .status(let status) = failure.kind else { return }
        let replaced = current.withLock { problem -> DeploymentProblem.Kind? in
            if var known = problem, known.kind == kind {
                known.status = status
                known.lastAt = now
                known.count += 1
                problem = known
                return nil
            }
            defer { problem = DeploymentProblem(kind: kind, status: status, since: now, lastAt: now, count: 1) }
            return problem?.kind
        }
        if let replaced { metrics.deploymentProblem(deployment: deployment, kind: replaced.rawValue, active: false) }
        metrics.deploymentProblem(deployment: deployment, kind: kind.rawValue, active: true)
    }

    var problem: DeploymentProblem? { current.withLock { $0 } }
}
