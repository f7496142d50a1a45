/// Removes what looks like a credential from text bound for a client, whether or not Lifeline
/// knows it: an upstream may quote a key Lifeline never had (another tenant's, a rotated one).
///
/// Shapes: `sk-…`-style keys, `Bearer` credentials, `api_key=…`-style assignments, AWS
/// access key ids, and long random-looking tokens (24 or more letters and digits mixed).
enum KeyShapes {
    static let replacement = SecretRedactor.replacement

    static func redact(_ text: String) -> String {
        var result = text
        // Regex construction is cheap next to an upstream round trip; this runs on error paths only.
        // Only "Bearer": "Basic" is also an ordinary word; a Basic credential is a long token below.
        // A word after it ("bearer tokens") is prose, not a credential.
        if let scheme = try? Regex(#"(?i)\b(bearer)(\s+)([A-Za-z0-9._~+/=\-]{4,})"#) {
            result = result.replacing(scheme) { match in
                let token = match.output[3].substring ?? ""
                guard !token.allSatisfy({ $0.isLowercase }) else { return String(match.output[0].substring ?? "") }
                return "\(match.output[1].substring ?? "Bearer")\(match.output[2].substring ?? " ")\(replacement)"
            }
        }
        if let assignment = try? Regex(#"(?i)\b(api[_-]?key|access[_-]?token|token|secret|password)(\s*[:=]\s*["']?)[^\s"',;&]{4,}"#) {
            result = result.replacing(assignment) { match in
                "\(match.output[1].substring ?? "")\(match.output[2].substring ?? "")\(replacement)"
            }
        }
        if let prefixed = try? Regex(#"\b(sk|pk|rk|ak)[-_][A-Za-z0-9_\-]{6,}"#) {
            result = result.replacing(prefixed, with: replacement)
        }
        if let aws = try? Regex(#"\b(AKIA|ASIA)[0-9A-Z]{16}\b"#) {
            result = result.replacing(aws, with: replacement)
        }
        if let long = try? Regex(#"[A-Za-z0-9_\-+=]{24,}"#) {
            result = result.replacing(long) { match in
                let token = match.output[0].substring ?? ""
                return looksRandom(token) ? replacement : String(token)
            }
        }
        return result
    }

    /// Letters mixed with digits, or both cases mixed: not a word or a snake_case name.
    static func looksRandom(_ token: Substring) -> Bool {
        var digits = 0, upper = 0, lower = 0
        for character in token.unicodeScalars {
            if ("0"..."9").contains(character) { digits += 1 }
            else if ("A"..."Z").contains(character) { upper += 1 }
            else if ("a"..."z").contains(character) { lower += 1 }
        }
        return (digits >= 2 && upper + lower >= 2) || (upper >= 3 && lower >= 3)
    }
}

extension SecretRedactor {
    /// Text bound for a client: the configured secrets, and anything shaped like a key.
    public func redactForClient(_ text: String) -> String {
        KeyShapes.redact(redact(text))
    }
}
