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

    static func missing(_ param: String, style: ErrorStyle = .openAI) -> RequestError {
        switch style {
        case .openAI: RequestError("Missing required parameter: '\(param)'.", param: param)
        case .anthropic: RequestError("\(ErrorStyle.dotted(param)): Field required", param: param)
        }
    }

    static func type(_ param: String, expected: String, got value: JSONValue, style: ErrorStyle = .openAI) -> RequestError {
        switch style {
        case .openAI:
            RequestError("Invalid type for '\(param)': expected \(expected), but got \(value.typeNameWithArticle) instead.", param: param)
        case .anthropic:
            RequestError("\(ErrorStyle.dotted(param)): Input should be \(expected)", param: param)
        }
    }

    /// A value outside what is allowed; `detail` says what is.
    static func range(_ param: String, _ detail: String, style: ErrorStyle = .openAI) -> RequestError {
        switch style {
        case .openAI: RequestError("Invalid value for '\(param)': \(detail).", param: param)
        case .anthropic: RequestError("\(ErrorStyle.dotted(param)): \(detail)", param: param)
        }
    }

    /// A value outside an enumeration, worded as each API words it.
    static func notOneOf(_ param: String, _ value: String, allowed: [String], style: ErrorStyle = .openAI) -> RequestError {
        let quoted = allowed.map { "'\($0)'" }
        switch style {
        case .openAI:
            let list = quoted.count > 1 ? quoted.dropLast().joined(separator: ", ") + " and " + quoted.last! : quoted.joined()
            return RequestError("Invalid value: '\(value)'. Supported values are: \(list).", param: param)
        case .anthropic:
            let list = quoted.count > 1 ? quoted.dropLast().joined(separator: ", ") + " or " + quoted.last! : quoted.joined()
            return RequestError("\(ErrorStyle.dotted(param)): Input should be \(list)", param: param)
        }
    }

    /// A number below its minimum or above its maximum.
    static func bound(_ param: String, kind: String, value: Double, minimum: Double?, maximum: Double?, style: ErrorStyle) -> RequestError {
        let shown = value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : String(value)
        func number(_ x: Double) -> String { x.rounded() == x && abs(x) < 1e15 ? String(Int(x)) : String(x) }
        if let minimum, value < minimum {
            return switch style {
            case .openAI: RequestError("Invalid '\(param)': \(kind) below minimum value. Expected a value >= \(number(minimum)), but got \(shown) instead.", param: param)
            case .anthropic: RequestError("\(ErrorStyle.dotted(param)): Input should be greater than or equal to \(number(minimum))", param: param)
            }
        }
        let maximum = maximum ?? value
        return switch style {
        case .openAI: RequestError("Invalid '\(param)': \(kind) above maximum value. Expected a value <= \(number(maximum)), but got \(shown) instead.", param: param)
        case .anthropic: RequestError("\(ErrorStyle.dotted(param)): Input should be less than or equal to \(number(maximum))", param: param)
        }
    }

    /// A string, array or object longer (or shorter) than allowed.
    static func size(_ param: String, of what: String, count: Int, minimum: Int? = nil, maximum: Int? = nil, style: ErrorStyle = .openAI) -> RequestError {
        let unit = what == "string" ? "characters" : what == "object" ? "properties" : "items"
        if let minimum, count < minimum {
            return switch style {
            case .openAI:
                count == 0 && what == "array"
                    ? RequestError("Invalid '\(param)': empty array. Expected an array with minimum length \(minimum), but got an empty array instead.", param: param)
                    : RequestError("Invalid '\(param)': \(what) too short. Expected \(article(what)) \(what) with minimum length \(minimum), but got \(article(what)) \(what) with length \(count) instead.", param: param)
            case .anthropic:
                RequestError("\(ErrorStyle.dotted(param)): \(what.capitalized) should have at least \(minimum) \(unit)", param: param)
            }
        }
        let maximum = maximum ?? count
        return switch style {
        case .openAI:
            what == "object"
                ? RequestError("Invalid '\(param)': too many properties. Expected an object with at most \(maximum) properties, but got an object with \(count) properties instead.", param: param)
                : RequestError("Invalid '\(param)': \(what) too long. Expected \(article(what)) \(what) with maximum length \(maximum), but got \(article(what)) \(what) with length \(count) instead.", param: param)
        case .anthropic:
            RequestError("\(ErrorStyle.dotted(param)): \(what.capitalized) should have at most \(maximum) \(unit)", param: param)
        }
    }

    private static func article(_ word: String) -> String { "aeiou".contains(word.first ?? "x") ? "an" : "a" }
}

/// How an API words its validation messages: OpenAI's sentences naming `'param'`, or
/// Anthropic's `path.0.field: Input should be …`.
public enum ErrorStyle: Sendable {
    case openAI, anthropic

    /// `messages[0].content` as Anthropic writes it: `messages.0.content`.
    static func dotted(_ param: String) -> String {
        param.replacingOccurrences(of: "[", with: ".").replacingOccurrences(of: "]", with: "")
    }
}

extension JSONValue {
    /// The JSON type with its article, as OpenAI's messages name it ("a string", "an object").
    var typeNameWithArticle: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// Typed readers over a JSON object that name the field when a value is wrong.
struct FieldReader {
    let object: [String: JSONValue]
    let path: String
    let style: ErrorStyle

    init(_ object: [String: JSONValue], path: String = "", style: ErrorStyle = .openAI) {
        self.object = object
        self.path = path
        self.style = style
    }

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// A reader for a nested object, with the same style.
    func nested(_ object: [String: JSONValue], at path: String) -> FieldReader { FieldReader(object, path: path, style: style) }

    private var typeWords: (string: String, boolean: String, integer: String, number: String, array: String, object: String) {
        switch style {
        case .openAI: ("a string", "a boolean", "an integer", "a decimal", "an array", "an object")
        case .anthropic: ("a valid string", "a valid boolean", "a valid integer", "a valid number", "a valid list", "a valid dictionary")
        }
    }

    /// The value unless absent or null.
    func value(_ key: String) -> JSONValue? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    func string(_ key: String, maximumLength: Int? = nil) throws(RequestError) -> String? {
        guard let value = value(key) else { return nil }
        guard let string = value.stringValue else { throw .type(name(key), expected: typeWords.string, got: value, style: style) }
        if let maximumLength, string.count > maximumLength {
            throw .size(name(key), of: "string", count: string.count, maximum: maximumLength, style: style)
        }
        return string
    }

    func requiredString(_ key: String) throws(RequestError) -> String {
        guard let string = try string(key) else { throw .missing(name(key), style: style) }
        return string
    }

    /// A string that must be one of `allowed`.
    func enumeration(_ key: String, _ allowed: [String]) throws(RequestError) -> String? {
        guard let string = try string(key) else { return nil }
        guard allowed.contains(string) else { throw .notOneOf(name(key), string, allowed: allowed, style: style) }
        return string
    }

    func bool(_ key: String) throws(RequestError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard let bool = value.boolValue else { throw .type(name(key), expected: typeWords.boolean, got: value, style: style) }
        return bool
    }

    func int(_ key: String, in range: ClosedRange<Int>? = nil) throws(RequestError) -> Int? {
        try int(key, minimum: range?.lowerBound, maximum: range?.upperBound)
    }

    func int(_ key: String, minimum: Int?, maximum: Int? = nil) throws(RequestError) -> Int? {
        guard let value = value(key) else { return nil }
        guard let int = value.intValue else { throw .type(name(key), expected: typeWords.integer, got: value, style: style) }
        if let minimum, int < minimum {
            throw .bound(name(key), kind: "integer", value: Double(int), minimum: Double(minimum), maximum: nil, style: style)
        }
        if let maximum, int > maximum {
            throw .bound(name(key), kind: "integer", value: Double(int), minimum: nil, maximum: Double(maximum), style: style)
        }
        return int
    }

    func double(_ key: String, in range: ClosedRange<Double>? = nil) throws(RequestError) -> Double? {
        guard let value = value(key) else { return nil }
        guard let double = value.doubleValue else { throw .type(name(key), expected: typeWords.number, got: value, style: style) }
        if let range, !range.contains(double) {
            throw .bound(name(key), kind: "decimal", value: double, minimum: range.lowerBound, maximum: range.upperBound, style: style)
        }
        return double
    }

    func array(_ key: String, minimum: Int? = nil, maximum: Int? = nil) throws(RequestError) -> [JSONValue]? {
        guard let value = value(key) else { return nil }
        guard let array = value.arrayValue else { throw .type(name(key), expected: typeWords.array, got: value, style: style) }
        if let minimum, array.count < minimum { throw .size(name(key), of: "array", count: array.count, minimum: minimum, style: style) }
        if let maximum, array.count > maximum { throw .size(name(key), of: "array", count: array.count, maximum: maximum, style: style) }
        return array
    }

    func object(_ key: String) throws(RequestError) -> [String: JSONValue]? {
        guard let value = value(key) else { return nil }
        guard let object = value.objectValue else { throw .type(name(key), expected: typeWords.object, got: value, style: style) }
        return object
    }

    /// A string or an array of strings (OpenAI's `stop`), as an array.
    func strings(_ key: String, maximum: Int) throws(RequestError) -> [String] {
        guard let value = value(key) else { return [] }
        if let single = value.stringValue { return [single] }
        guard let array = value.arrayValue else {
            throw .type(name(key), expected: style == .openAI ? "a string or an array of strings" : typeWords.array, got: value, style: style)
        }
        guard array.count <= maximum else { throw .size(name(key), of: "array", count: array.count, maximum: maximum, style: style) }
        var strings: [String] = []
        for (index, element) in array.enumerated() {
            guard let string = element.stringValue else { throw .type("\(name(key))[\(index)]", expected: typeWords.string, got: element, style: style) }
            strings.append(string)
        }
        return strings
    }
}
