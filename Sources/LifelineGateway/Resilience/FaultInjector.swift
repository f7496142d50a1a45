import Foundation
import LifelineWire
import Synchronization

/// A drill fault: a deliberate failure applied to one deployment's upstream attempts for a while.
public struct DrillFault: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// Answer with `status` instead of calling the upstream.
        case error
        /// Wait `latencyMilliseconds` before calling the upstream.
        case latency
        /// Cut the answer after `afterTokens` tokens.
        case disconnect
        /// Never answer: the attempt runs into its first-token timeout.
        case blackhole
    }

    public var id: String
    public var deployment: String
    public var kind: Kind
    public var status = 500
    /// Share of attempts the fault applies to.
    public var rate = 1.0
    public var latencyMilliseconds = 0
    public var afterTokens = 0
    public var durationSeconds = 60.0
    public var createdAt = Date()
    /// Monotonic expiry, in the gateway clock's seconds.
    var expiresAt = 0.0

    public var json: JSONValue {
        ["id": .string(id), "deployment": .string(deployment), "kind": .string(kind.rawValue),
         "status": .number(Double(status)), "rate": .number(rate), "latency_ms": .number(Double(latencyMilliseconds)),
         "after_tokens": .number(Double(afterTokens)), "duration_s": .number(durationSeconds),
         "created_at": .string(ISO8601DateFormatter().string(from: createdAt)),
         "expires_at": .string(ISO8601DateFormatter().string(from: createdAt.addingTimeInterval(durationSeconds)))]
    }

    /// Reads `POST /admin/v1/faults`; names the first wrong field.
    public static func parse(_ json: JSONValue, knownDeployments: Set<String>) throws(RequestError) -> DrillFault {
        guard let object = json.objectValue else { throw RequestError("The body must be a JSON object.", param: nil) }
        let allowed: Set<String> = ["deployment", "kind", "status", "rate", "latency_ms", "after_tokens", "duration_s"]
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw RequestError("Unknown field '\(unknown)'.", param: unknown)
        }
        guard let deployment = object["deployment"]?.stringValue else { throw RequestError("Missing required field 'deployment'.", param: "deployment") }
        guard knownDeployments.contains(deployment) else {
            throw RequestError("No deployment is named '\(deployment)'.", param: "deployment", kind: .notFound)
        }
        guard let kindName = object["kind"]?.stringValue, let kind = Kind(rawValue: kindName) else {
            throw RequestError("'kind' must be one of \(Kind.allCases.map(\.rawValue).joined(separator: ", ")).", param: "kind")
        }
        var fault = DrillFault(id: "flt_" + UUID().uuidString.lowercased().filter { $0 != "-" }.prefix(12), deployment: deployment, kind: kind)
        func number(_ key: String, _ range: ClosedRange<Double>) throws(RequestError) -> Double? {
            guard let value = object[key], !value.isNull else { return nil }
            guard let number = value.doubleValue, range.contains(number) else {
                throw RequestError("'\(key)' must be a number from \(range.lowerBound) to \(range.upperBound).", param: key)
            }
            return number
        }
        if let status = try number("status", 400...599) { fault.status = Int(status) }
        if let rate = try number("rate", 0...1) { fault.rate = rate }
        if let latency = try number("latency_ms", 0...600_000) { fault.latencyMilliseconds = Int(latency) }
        if let after = try number("after_tokens", 0...1_000_000) { fault.afterTokens = Int(after) }
        if let duration = try number("duration_s", 1...86_400) { fault.durationSeconds = duration }
        return fault
    }
}

/// What active drill faults do to one attempt.
struct FaultEffect: Sendable, Equatable {
    var delayMilliseconds = 0
    var errorStatus: Int?
    var blackhole = false
    var disconnectAfterTokens: Int?
    var kinds: [DrillFault.Kind] = []

    var isNone: Bool { kinds.isEmpty }
}

/// Active drill faults; each clears itself when its duration is over.
public final class FaultInjector: Sendable {
    private let faults = Mutex<[DrillFault]>([])
    private let clock: @Sendable () -> Double

    init(clock: @escaping @Sendable () -> Double) { self.clock = clock }

    public func add(_ fault: DrillFault) -> DrillFault {
        var fault = fault
        fault.expiresAt = clock() + fault.durationSeconds
        faults.withLock { $0.append(fault) }
        return fault
    }

    public func list() -> [DrillFault] {
        let now = clock()
        return faults.withLock { faults in
            faults.removeAll { $0.expiresAt <= now }
            return faults
        }
    }

    public func remove(id: String) -> Bool {
        faults.withLock { faults in
            let before = faults.count
            faults.removeAll { $0.id == id }
            return faults.count < before
        }
    }

    public func removeAll() { faults.withLock { $0.removeAll() } }

    /// Draws which active faults of `deployment` hit this attempt.
    func effect(for deployment: String) -> FaultEffect {
        let now = clock()
        let active = faults.withLock { faults -> [DrillFault] in
            guard !faults.isEmpty else { return [] }
            faults.removeAll { $0.expiresAt <= now }
            return faults.filter { $0.deployment == deployment }
        }
        var effect = FaultEffect()
        for fault in active where fault.rate >= 1 || Double.random(in: 0..<1) < fault.rate {
            effect.kinds.append(fault.kind)
            switch fault.kind {
            case .error: effect.errorStatus = effect.errorStatus ?? fault.status
            case .latency: effect.delayMilliseconds += fault.latencyMilliseconds
            case .disconnect: effect.disconnectAfterTokens = min(effect.disconnectAfterTokens ?? .max, fault.afterTokens)
            case .blackhole: effect.blackhole = true
            }
        }
        return effect
    }
}
