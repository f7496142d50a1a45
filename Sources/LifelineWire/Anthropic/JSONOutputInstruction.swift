/// OpenAI's `response_format` (JSON mode and `json_schema`) for an Anthropic upstream, which has
/// no such field: an instruction appended to the system prompt, carrying the schema when there
/// is one. The model is asked, not forced; the answer is passed on as the model writes it.
public enum JSONOutputInstruction {
    static let jsonOnly = "Answer with one valid JSON object and nothing else: no prose and no code fences."
    static let schemaLead = " The object must conform to this JSON schema, named "

    /// The instruction for a response format; nil for plain text.
    public static func text(for format: JSONValue?) -> String? {
        switch format?["type"]?.stringValue {
        case "json_object":
            return jsonOnly
        case "json_schema":
            let name = format?["json_schema"]?["name"]?.stringValue ?? "answer"
            guard let schema = format?["json_schema"]?["schema"] else { return jsonOnly }
            return jsonOnly + schemaLead + name + ": " + JSONCoding.encodeString(schema)
        default:
            return nil
        }
    }

    /// The response format an instruction in `system` asks for, as a model that follows it
    /// would read it (the simulator does, to answer in JSON as a real model would).
    public static func format(inSystem system: String?) -> JSONValue? {
        guard let system, let start = system.range(of: jsonOnly) else { return nil }
        let rest = system[start.upperBound...]
        guard rest.hasPrefix(schemaLead) else { return ["type": "json_object"] }
        let named = rest.dropFirst(schemaLead.count)
        guard let colon = named.range(of: ": "),
              let schema = try? JSONCoding.decode(Array(named[colon.upperBound...].utf8))
        else { return ["type": "json_object"] }
        return ["type": "json_schema", "json_schema": ["name": .string(String(named[..<colon.lowerBound])), "schema": schema]]
    }
}
