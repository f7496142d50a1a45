import LifelineCore
import LifelineWire
import Synchronization

/// One upstream deployment at run time: its client and its operator state.
public final class Deployment: Sendable {
    public let config: DeploymentConfig
    public let client: UpstreamClient
    private let drained = Atomic<Bool>(false)

    init(config: DeploymentConfig) {
        self.config = config
        self.client = UpstreamClient(deployment: config)
    }

    public var name: String { config.name }
    public var isDrained: Bool { drained.load(ordering: .relaxed) }
    public func setDrained(_ value: Bool) { drained.store(value, ordering: .relaxed) }
}

/// A public model name and the deployments that can answer for it.
public final class ModelGroup: Sendable {
    public let name: String
    public let deployments: [Deployment]

    init(name: String, deployments: [Deployment]) {
        self.name = name
        self.deployments = deployments
    }

    /// Deployments to try, in order, for a request; `openAIOnly` when the request needs features
    /// only OpenAI-protocol upstreams have (several choices, logprobs).
    public func attemptOrder(openAIOnly: Bool = false) -> [Deployment] {
        let candidates = deployments.map {
            RoutingCandidate(priority: $0.config.priority, weight: $0.config.weight,
                             isAvailable: !$0.isDrained && (!openAIOnly || $0.config.protocol == .openai))
        }
        var random = SystemRandomNumberGenerator()
        return DeploymentSelector.attemptOrder(candidates, using: &random).map { deployments[$0] }
    }
}

/// Every model and deployment the gateway serves.
public final class DeploymentPool: Sendable {
    public let models: [String: ModelGroup]
    public let modelNames: [String]
    public let deployments: [Deployment]

    public init(config: LifelineConfig) {
        var models: [String: ModelGroup] = [:]
        var all: [Deployment] = []
        for model in config.models {
            let deployments = model.deployments.map(Deployment.init)
            all += deployments
            models[model.name] = ModelGroup(name: model.name, deployments: deployments)
        }
        self.models = models
        self.modelNames = config.models.map(\.name)
        self.deployments = all
    }

    public func deployment(named name: String) -> Deployment? { deployments.first { $0.name == name } }

    public func shutdown() async {
        for deployment in deployments { await deployment.client.shutdown() }
    }
}
