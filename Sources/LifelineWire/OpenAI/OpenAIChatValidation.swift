/// The value rules of OpenAI's published Chat Completions reference (its OpenAPI description):
/// types, enumerations, ranges, size limits and the rules that tie fields together, checked
/// before anything is sent upstream. Fields it does not list are left alone, and are passed on
/// to OpenAI-protocol upstreams, which judge them for themselves.
enum OpenAIChatValidation {
    static let serviceTiers = ["auto", "default", "flex", "scale", "priority", "fast"]
    static let reasoningEfforts = ["none", "minimal", "low", "medium", "high", "xhigh", "max"]
    static let verbosities = ["low", "medium", "high"]
    static let modalities = ["text", "audio"]
    static let audioFormats = ["wav", "aac", "mp3", "flac", "opus", "pcm16"]
    static let imageDetails = ["auto", "low", "high"]
    static let inputAudioFormats = ["wav", "mp3"]
    static let searchContextSizes = ["low", "medium", "high"]
    static let maximumTools = 128
    static let metadataEntries = 16
    static let metadataKeyLength = 64
    static let metadataValueLength = 512

    /// Checks the top-level fields that decoding does not read itself.
    static func validate(_ fields: FieldReader) throws(RequestError) {
        let store = try fields.bool("store")
        try metadata(fields, store: store ?? false)
        try logitBias(fields)
        _ = try fields.double("frequency_penalty", in: -2...2)
        _ = try fields.double("presence_penalty", in: -2...2)
        _ = try fields.enumeration("service_tier", serviceTiers)
        _ = try fields.enumeration("reasoning_effort", reasoningEfforts)
        _ = try fields.enumeration("verbosity", verbosities)
        _ = try fields.string("safety_identifier", maximumLength: 64)
        _ = try fields.string("prompt_cache_key")
        if try fields.int("max_tokens") != nil, try fields.int("max_completion_tokens") != nil {
            throw RequestError("Invalid value for 'max_tokens': 'max_tokens' and 'max_completion_tokens' cannot both be set; use 'max_completion_tokens'.",
                               param: "max_tokens")
        }
        let tools = try fields.array("tools", maximum: maximumTools)
        if try fields.bool("parallel_tool_calls") != nil, tools?.isEmpty ?? true {
            throw RequestError("Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are specified.",
                               param: "parallel_tool_calls")
        }
        if fields.value("tool_choice") != nil, tools?.isEmpty ?? true {
            throw RequestError("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", param: "tool_choice")
        }
        var wantsAudio = false
        for (index, value) in (try fields.array("modalities") ?? []).enumerated() {
            let param = "modalities[\(index)]"
            guard let modality = value.stringValue else { throw .type(param, expected: "a string", got: value) }
            guard modalities.contains(modality) else { throw .notOneOf(param, modality, allowed: modalities) }
            wantsAudio = wantsAudio || modality == "audio"
        }
        if let audio = try fields.object("audio") {
            let reader = fields.nested(audio, at: "audio")
            guard reader.value("voice") != nil else { throw .missing("audio.voice") }
            if let voice = reader.value("voice"), voice.stringValue == nil, voice["id"]?.stringValue == nil {
                throw .type("audio.voice", expected: "a string or an object with an 'id'", got: voice)
            }
            guard try reader.enumeration("format", audioFormats) != nil else { throw .missing("audio.format") }
        } else if wantsAudio {
            throw RequestError("Audio output is requested in 'modalities', so the 'audio' parameter is required.", param: "audio")
        }
        if let options = try fields.object("web_search_options") {
            _ = try fields.nested(options, at: "web_search_options").enumeration("search_context_size", searchContextSizes)
        }
        if let prediction = try fields.object("prediction") {
            let reader = fields.nested(prediction, at: "prediction")
            guard try reader.enumeration("type", ["content"]) != nil else { throw .missing("prediction.type") }
            guard reader.value("content") != nil else { throw .missing("prediction.content") }
        }
    }

    /// At most 16 entries; keys up to 64 characters, string values up to 512; only with `store: true`.
    private static func metadata(_ fields: FieldReader, store: Bool) throws(RequestError) {
        guard let metadata = try fields.object("metadata") else { return }
        guard metadata.count <= metadataEntries else {
            throw .size("metadata", of: "object", count: metadata.count, maximum: metadataEntries)
        }
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            guard key.count <= metadataKeyLength else {
                throw RequestError("Invalid 'metadata': key too long. Expected keys with maximum length \(metadataKeyLength), but got a key with length \(key.count) instead.",
                                   param: "metadata")
            }
            let param = "metadata.\(key)"
            guard let string = value.stringValue else { throw .type(param, expected: "a string", got: value) }
            guard string.count <= metadataValueLength else {
                throw .size(param, of: "string", count: string.count, maximum: metadataValueLength)
            }
        }
        guard store else {
            throw RequestError("The 'metadata' parameter is only allowed when 'store' is enabled.", param: "metadata")
        }
    }

    /// Token ids (integer keys) mapped to integer biases from -100 to 100.
    private static func logitBias(_ fields: FieldReader) throws(RequestError) {
        guard let bias = try fields.object("logit_bias") else { return }
        for (key, value) in bias.sorted(by: { $0.key < $1.key }) {
            guard Int(key) != nil else {
                throw RequestError("Invalid key in 'logit_bias': \(key.prefix(64)). Keys must be token ids (integers).", param: "logit_bias")
            }
            guard let number = value.intValue else { throw .type("logit_bias.\(key)", expected: "an integer", got: value) }
            guard (-100...100).contains(number) else {
                throw RequestError("Invalid 'logit_bias.\(key)': expected a value from -100 to 100, but got \(number) instead.", param: "logit_bias")
            }
        }
    }

    /// A function or schema name: letters, digits, underscores and dashes, 1 to 64 of them.
    static func checkName(_ name: String, param: String) throws(RequestError) {
        guard !name.isEmpty, name.count <= 64,
              name.unicodeScalars.allSatisfy({ ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" || $0 == "-" })
        else {
            if name.count > 64 { throw .size(param, of: "string", count: name.count, maximum: 64) }
            throw RequestError("Invalid '\(param)': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                               param: param)
        }
    }

    /// A user message's content part: text, image_url, input_audio or file, with their fields.
    static func checkUserPart(_ reader: FieldReader, type: String) throws(RequestError) {
        switch type {
        case "text":
            _ = try reader.requiredString("text")
        case "image_url":
            guard let image = try reader.object("image_url") else { throw .missing(reader.name("image_url")) }
            let imageReader = reader.nested(image, at: reader.name("image_url"))
            _ = try imageReader.requiredString("url")
            _ = try imageReader.enumeration("detail", imageDetails)
        case "input_audio":
            guard let audio = try reader.object("input_audio") else { throw .missing(reader.name("input_audio")) }
            let audioReader = reader.nested(audio, at: reader.name("input_audio"))
            _ = try audioReader.requiredString("data")
            guard try audioReader.enumeration("format", inputAudioFormats) != nil else { throw .missing(audioReader.name("format")) }
        case "file":
            guard try reader.object("file") != nil else { throw .missing(reader.name("file")) }
        default:
            throw .notOneOf(reader.name("type"), type, allowed: ["text", "image_url", "input_audio", "file"])
        }
    }
}
