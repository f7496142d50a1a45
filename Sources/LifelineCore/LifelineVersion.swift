/// Lifeline's release, and the commit it was built from when the build says so.
public enum LifelineVersion {
    public static let current = "0.1.0"

    /// The environment variable a build or package sets to the commit it was built from (a git
    /// hash). SwiftPM cannot embed it without a build plugin or a generated file, so it is read
    /// at run time; builds that do not set it print the version alone.
    public static let commitVariable = "LIFELINE_COMMIT"

    /// The commit from `environment`, if it is a plausible git hash (7 to 64 hex digits), shortened to 12.
    public static func commit(environment: [String: String]) -> String? {
        guard let value = environment[commitVariable], (7...64).contains(value.count),
              value.allSatisfy({ $0.isHexDigit }) else { return nil }
        return String(value.lowercased().prefix(12))
    }

    /// What `lifeline --version` prints: `0.1.0`, or `0.1.0 (commit 0123456789ab)`.
    public static func description(environment: [String: String]) -> String {
        commit(environment: environment).map { "\(current) (commit \($0))" } ?? current
    }
}
