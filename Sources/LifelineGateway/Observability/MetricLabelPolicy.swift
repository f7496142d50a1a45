import LifelineCore

/// Which values a metric label may take when outside input could choose it: the configured
/// public models and deployments, and the priority names. Anything else is counted as `unknown`,
/// so the number of series stays bounded by the configuration, whatever clients send.
struct MetricLabelPolicy: Sendable {
    static let unknown = "unknown"
    private var models: Set<String> = []
    private var deployments: Set<String> = []
    private static let priorities = Set(Priority.allCases.map(\.description))

    mutating func allow(_ config: LifelineConfig) {
        for model in config.models {
            models.insert(model.name)
            for deployment in model.deployments { deployments.insert(deployment.name) }
        }
    }

    /// The value to export for `label`; labels whose values only code chooses pass unchanged.
    func value(label: String, _ value: String) -> String {
        let allowed: Bool = switch label {
        case "model": models.contains(value)
        case "deployment": deployments.contains(value)
        case "scope": value == "gateway" || deployments.contains(value)
        case "priority", "tier": Self.priorities.contains(value)
        default: true
        }
        return allowed ? value : Self.unknown
    }
}
