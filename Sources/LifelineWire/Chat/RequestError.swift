/// A request the client must fix: which field is wrong and why.
public struct RequestError: Error, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case invalid         // 400
        case notFound        // 404
        case tooLarge        // 413
    }

    public var kind: Kind
    public var message: String
    /// The offending field as a path, e.g. `messages[2].content`.
    public var param: String?

    public init(_ message: String, param: String?, kind: Kind = .invalid) {
        self.kind = kind
        self.message = message
        self.param = param
    }

    static func missing(_ param: String) -> RequestError {
        RequestError("Missing required parameter: '\(param)'.", param: param)
    }

    static func type(_ param: String, expected: String, got value: JSONValue) -> RequestError {
        RequestError("Invalid type for '\(param)': expected \(expected), but got \(value.typeName).", param: param)
    }

    static func range(_ param: String, _ detail: String) -> RequestError {
        RequestError("Invalid value for '\(param)': \(detail).", param: param)
    }
}

/// Typed readers over a JSON object that name the field when a value is wrong.
struct FieldReader {
    let object: [String: JSONValue]
    let path: String

    init(_ object: [String: JSONValue], path: String = "") {
        self.object = object
        self.path = path
    }

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The value unless absent or null.
    func value(_ key: String) -> JSONValue? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    func string(_ key: String) throws(RequestError) -> String? {
        guard let value = value(key) else { return nil }
        guard let string = value.stringValue else { throw .type(name(key), expected: "a string", got: value) }
        return string
    }

    func requiredString(_ key: String) throws(RequestError) -> String {
        guard let string = try string(key) else { throw .missing(name(key)) }
        return string
    }

    func bool(_ key: String) throws(RequestError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard let bool = value.boolValue else { throw .type(name(key), expected: "a boolean", got: value) }
        return bool
    }

    func int(_ key: String, in range: ClosedRange<Int>? = nil) throws(RequestError) -> Int? {
        guard let value = value(key) else { return nil }
        guard let int = value.intValue else { throw .type(name(key), expected: "an integer", got: value) }
        if let range, !range.contains(int) {
            throw .range(name(key), "expected a value from \(range.lowerBound) to \(range.upperBound), but got \(int)")
        }
        return int
    }

    func double(_ key: String, in range: ClosedRange<Double>? = nil) throws(RequestError) -> Double? {
        guard let value = value(key) else { return nil }
        guard let double = value.doubleValue else { throw .type(name(key), expected: "a number", got: value) }
        if let range, !range.contains(double) {
            throw .range(name(key), "expected a value from \(range.lowerBound) to \(range.upperBound), but got \(double)")
        }
        return double
    }

    func array(_ key: String) throws(RequestError) -> [JSONValue]? {
        guard let value = value(key) else { return nil }
        guard let array = value.arrayValue else { throw .type(name(key), expected: "an array", got: value) }
        return array
    }

    func object(_ key: String) throws(RequestError) -> [String: JSONValue]? {
        guard let value = value(key) else { return nil }
        guard let object = value.objectValue else { throw .type(name(key), expected: "an object", got: value) }
        return object
    }

    /// A string or an array of strings (OpenAI's `stop`), as an array.
    func strings(_ key: String, maximum: Int) throws(RequestError) -> [String] {
        guard let value = value(key) else { return [] }
        if let single = value.stringValue { return [single] }
        guard let array = value.arrayValue else { throw .type(name(key), expected: "a string or an array of strings", got: value) }
        guard array.count <= maximum else { throw .range(name(key), "at most \(maximum) entries are allowed") }
        var strings: [String] = []
        for (index, element) in array.enumerated() {
            guard let string = element.stringValue else { throw .type("\(name(key))[\(index)]", expected: "a string", got: element) }
            strings.append(string)
        }
        return strings
    }
}
