import HTTPTypes
import Hummingbird
import LifelineCore
import LifelineWire
import Tracing

/// Everything a request passes before it may reach an upstream, in order: who is calling
/// (401), may they use this model (403), are they within their limits (429), does the service
/// have room (503, shed by priority). None of these refusals costs an upstream call.
struct AccessGate: Sendable {
    let runtime: GatewayRuntime

    func authenticate(_ request: Request) -> Result<Caller, GatewayError> {
        let authorization = request.headers[.authorization]
        let bearer = authorization.flatMap { $0.lowercased().hasPrefix("bearer ") ? String($0.dropFirst(7)).trimmingCharacters(in: .whitespaces) : nil }
        let result = runtime.keys.authenticate(bearer: bearer, apiKey: request.headers[.apiKey])
        if case .failure(let error) = result, error.code == "conflicting_credentials" { runtime.metrics.requestRefused(reason: .conflictingCredentials) }
        return result
    }

    /// Checks permission, limits and capacity; on success `record` holds what `finish` must release.
    func admit(_ caller: Caller, model: String, request: Request, estimatedTokens: Int, record: inout RequestRecord) async -> GatewayError? {
        record.caller = caller
        let priority: Priority
        switch permit(caller, model: model, request: request) {
        case .failure(let refusal): return refusal
        case .success(let granted): priority = granted
        }
        record.priority = priority
        if let refusal = runtime.keys.admit(caller, estimatedTokens: estimatedTokens) {
            runtime.metrics.rateLimited(reason: refusal.reason, tier: caller.tier.description)
            return Self.error(for: refusal)
        }
        record.estimatedTokens = estimatedTokens
        let span = record.span.map { Tracing.startSpan("admission", context: $0.context) }
        span?.attributes["lifeline.priority"] = priority.description
        defer { span?.end() }
        switch await runtime.admission.acquire(priority: priority) {
        case .admitted(let ticket):
            span?.attributes["lifeline.outcome"] = "admitted"
            record.ticket = ticket
            record.admittedAt = runtime.clock()
            return nil
        case .cancelled:
            span?.attributes["lifeline.outcome"] = "client_closed"
            return .clientClosed
        case .shed(let reason, let retryAfter):
            span?.attributes["lifeline.outcome"] = "shed"
            record.shedByService = true
            return GatewayError(status: 503, message: "Lifeline is at capacity and is serving more important requests first (\(reason)); retry after \(retryAfter) s.",
                                code: "overloaded", retryAfterSeconds: retryAfter)
        }
    }

    /// What is checked before anything answers, the answer cache included: the key may use the
    /// model, and `x-lifeline-priority` is valid. Gives the request's priority.
    func permit(_ caller: Caller, model: String, request: Request) -> Result<Priority, GatewayError> {
        if !caller.models.isEmpty, !caller.models.contains(model) {
            let usable = caller.usableModels(of: runtime.pool.modelNames)
            return .failure(GatewayError(status: 403, message: "This API key may not use model '\(model)'; "
                                             + (usable.isEmpty ? "it may use none of the configured models." : "it may use: \(GatewayError.listed(usable))."),
                                         param: "model", code: "model_not_allowed"))
        }
        var requested: Priority?
        if let header = request.headers[.lifelinePriority] {
            guard let parsed = Priority(name: header) else {
                return .failure(GatewayError(status: 400, message: "x-lifeline-priority must be critical, high, normal or low, got '\(header)'.",
                                             param: "x-lifeline-priority"))
            }
            requested = parsed
        }
        return .success(caller.tier.lowered(by: requested))
    }

    static func error(for refusal: LimitRefusal) -> GatewayError {
        switch refusal {
        case .requestsPerMinute(let wait):
            GatewayError(status: 429, message: "Rate limit reached for requests per minute; retry in \(Int(wait.rounded(.up))) s.",
                         code: "rate_limit_exceeded", retryAfterSeconds: max(1, Int(wait.rounded(.up))))
        case .tokensPerMinute(let wait):
            GatewayError(status: 429, message: "Rate limit reached for tokens per minute; retry in \(Int(wait.rounded(.up))) s.",
                         code: "rate_limit_exceeded", retryAfterSeconds: max(1, Int(wait.rounded(.up))))
        case .concurrency:
            GatewayError(status: 429, message: "Too many concurrent requests for this API key.", code: "concurrency_limit_exceeded",
                         retryAfterSeconds: 1)
        case .budget:
            GatewayError(status: 429, message: "This API key has used its token budget for the current period.", code: "insufficient_quota",
                         retryAfterSeconds: 3600)
        }
    }

    /// OpenAI-style `x-ratelimit-*` headers for the caller's limits that are set.
    func rateLimitHeaders(_ caller: Caller?) -> HTTPFields {
        guard let caller else { return [:] }
        let snapshot = runtime.keys.snapshot(caller)
        var headers: HTTPFields = [:]
        if let limit = snapshot.requestLimit { headers[.rateLimitLimitRequests] = String(limit) }
        if let remaining = snapshot.requestsRemaining { headers[.rateLimitRemainingRequests] = String(remaining) }
        if let reset = snapshot.requestsResetSeconds { headers[.rateLimitResetRequests] = Self.duration(reset) }
        if let limit = snapshot.tokenLimit { headers[.rateLimitLimitTokens] = String(limit) }
        if let remaining = snapshot.tokensRemaining { headers[.rateLimitRemainingTokens] = String(remaining) }
        if let reset = snapshot.tokensResetSeconds { headers[.rateLimitResetTokens] = Self.duration(reset) }
        return headers
    }

    /// OpenAI writes resets as durations like `1s`, `6m0s`, `120ms`.
    static func duration(_ seconds: Double) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded(.up)))ms" }
        let whole = Int(seconds.rounded(.up))
        return whole >= 60 ? "\(whole / 60)m\(whole % 60)s" : "\(whole)s"
    }

    /// A rough token estimate for admission: about four characters a token, plus the answer's cap.
    static func estimateTokens(_ chat: ChatRequest) -> Int {
        let characters = (chat.system?.count ?? 0) + chat.messages.reduce(0) { $0 + $1.text.count + 16 }
        let answer = (chat.maxTokens ?? 1024) * chat.choiceCount
        return characters / 4 + 1 + answer
    }
}

extension HTTPField.Name {
    static let apiKey = Self("x-api-key")!
    static let lifelinePriority = Self("x-lifeline-priority")!
    static let rateLimitLimitRequests = Self("x-ratelimit-limit-requests")!
    static let rateLimitRemainingRequests = Self("x-ratelimit-remaining-requests")!
    static let rateLimitResetRequests = Self("x-ratelimit-reset-requests")!
    static let rateLimitLimitTokens = Self("x-ratelimit-limit-tokens")!
    static let rateLimitRemainingTokens = Self("x-ratelimit-remaining-tokens")!
    static let rateLimitResetTokens = Self("x-ratelimit-reset-tokens")!
}
