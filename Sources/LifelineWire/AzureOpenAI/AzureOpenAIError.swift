/// Azure OpenAI speaks OpenAI's chat format (requests, answers and stream chunks are
/// `OpenAIChatRequest` and `OpenAIChatResponse`); what differs is its URLs, its key header and
/// its error bodies, the content filter's among them:
/// `{"error":{"code":"content_filter","message","param":"prompt","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{…}}}}`.
public enum AzureOpenAIError {
    /// Whether an error body is a content-filter refusal of the prompt.
    public static func isContentFilter(_ body: JSONValue?) -> Bool {
        guard let error = body?["error"] else { return false }
        return error["code"]?.stringValue == "content_filter" || error["innererror"]?["code"]?.stringValue == "ResponsibleAIPolicyViolation"
    }

    /// Azure's code for an HTTP status, as its error bodies carry it.
    public static func code(status: Int) -> String {
        switch status {
        case 400: "BadRequest"
        case 401: "401"
        case 404: "DeploymentNotFound"
        case 429: "429"
        default: String(status)
        }
    }

    public static func body(status: Int, message: String, param: String? = nil) -> JSONValue {
        ["error": ["code": .string(code(status: status)), "message": .string(message), "param": param.map(JSONValue.string) ?? .null,
                   "type": .null, "status": .number(Double(status))]]
    }

    /// The content filter's refusal of a prompt, as Azure words it (the simulator's side).
    public static func contentFilterBody() -> JSONValue {
        func category(_ filtered: Bool) -> JSONValue { ["filtered": .bool(filtered), "severity": filtered ? "medium" : "safe"] }
        return ["error": [
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
            "type": .null, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": ["code": "ResponsibleAIPolicyViolation",
                           "content_filter_result": ["hate": category(false), "self_harm": category(false), "sexual": category(false),
                                                     "violence": category(true)]],
        ]]
    }
}
