import Foundation
import Hummingbird
import LifelineCore
import LifelineStore
import LifelineWire

/// `/admin/v1/keys`: create (the secret is shown once), list, show usage, revoke.
enum KeyRoutes {
    static func add(to admin: RouterGroup<GatewayRequestContext>, runtime: GatewayRuntime) {
        admin.post("/keys") { request, _ in
            do throws(GatewayError) {
                let body = try await readJSON(request, limit: 64 * 1024)
                let newKey: KeyRegistry.NewKey
                do throws(RequestError) { newKey = try parse(body) } catch { throw GatewayError(error) }
                let (key, secret) = try await createKey(newKey, runtime: runtime)
                runtime.logger.notice("api key created", metadata: ["id": .string(key.id), "name": .string(key.name), "tier": .string(key.tier)])
                var answer = describe(key, runtime: runtime).objectValue ?? [:]
                answer["secret"] = .string(secret)
                return jsonResponse(.created, .object(answer))
            } catch {
                return error.response(for: .openai)
            }
        }
        admin.get("/keys") { _, _ in
            jsonResponse(.ok, ["data": .array(runtime.keys.list().map { describe($0, runtime: runtime) })])
        }
        admin.get("/keys/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let key = runtime.keys.key(id: id) else { return adminError(404, "No API key has id '\(id)'.", param: "id") }
            var answer = describe(key, runtime: runtime).objectValue ?? [:]
            let dayStart = Int(KeyRegistry.periodStart("day", at: Date()).timeIntervalSince1970)
            let today = (try? await runtime.store.usage(since: dayStart, keyID: id))?[id] ?? UsageTotals()
            answer["usage_today"] = ["requests": .number(Double(today.requests)), "prompt_tokens": .number(Double(today.promptTokens)),
                                     "completion_tokens": .number(Double(today.completionTokens))]
            return jsonResponse(.ok, .object(answer))
        }
        let revoke: @Sendable (Request, GatewayRequestContext) async throws -> Response = { _, context in
            let id = context.parameters.get("id") ?? ""
            do {
                guard let key = try await runtime.keys.revoke(id: id) else {
                    return adminError(404, "No active API key has id '\(id)'.", param: "id")
                }
                runtime.logger.notice("api key revoked", metadata: ["id": .string(id)])
                return jsonResponse(.ok, describe(key, runtime: runtime))
            } catch {
                return adminError(500, "The store could not revoke the key: \(error)")
            }
        }
        admin.delete("/keys/{id}", use: revoke)
        admin.post("/keys/{id}/revoke", use: revoke)
    }

    static func createKey(_ newKey: KeyRegistry.NewKey, runtime: GatewayRuntime) async throws(GatewayError) -> (StoredKey, String) {
        do {
            return try await runtime.keys.create(newKey)
        } catch {
            throw GatewayError(status: 500, message: "The store could not save the key: \(error)")
        }
    }

    /// Reads a key request; names the first wrong field.
    static func parse(_ json: JSONValue) throws(RequestError) -> KeyRegistry.NewKey {
        guard let object = json.objectValue else { throw RequestError("The body must be a JSON object.", param: nil) }
        let allowed: Set<String> = ["name", "tier", "rpm", "tpm", "max_concurrency", "budget_tokens", "budget_period", "models",
                                    "expires_at", "expires_in_days"]
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw RequestError("Unknown field '\(unknown)'.", param: unknown)
        }
        guard let name = object["name"]?.stringValue, !name.isEmpty, name.count <= 200 else {
            throw RequestError("'name' is required: a string of 1 to 200 characters.", param: "name")
        }
        var key = KeyRegistry.NewKey(name: name)
        if let tier = object["tier"] {
            guard let text = tier.stringValue, let parsed = Priority(name: text) else {
                throw RequestError("'tier' must be critical, high, normal or low.", param: "tier")
            }
            key.tier = parsed
        }
        func positive(_ field: String) throws(RequestError) -> Int? {
            guard let value = object[field], !value.isNull else { return nil }
            guard let number = value.intValue, number > 0 else { throw RequestError("'\(field)' must be a positive whole number.", param: field) }
            return number
        }
        key.limits = CallerLimitPolicy(requestsPerMinute: try positive("rpm"), tokensPerMinute: try positive("tpm"),
                                       maxConcurrency: try positive("max_concurrency"), budgetTokens: try positive("budget_tokens"))
        if let period = object["budget_period"] {
            guard let text = period.stringValue, ["day", "month"].contains(text) else {
                throw RequestError("'budget_period' must be day or month.", param: "budget_period")
            }
            key.budgetPeriod = text
        }
        if let models = object["models"] {
            guard let list = models.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                throw RequestError("'models' must be an array of model names.", param: "models")
            }
            key.models = list.compactMap(\.stringValue)
        }
        if let expires = object["expires_at"] {
            guard let text = expires.stringValue, let date = ISO8601DateFormatter().date(from: text) else {
                throw RequestError("'expires_at' must be an ISO-8601 time such as 2027-01-31T00:00:00Z.", param: "expires_at")
            }
            key.expiresAt = date
        }
        if let days = object["expires_in_days"] {
            guard let number = days.doubleValue, number > 0 else { throw RequestError("'expires_in_days' must be positive.", param: "expires_in_days") }
            key.expiresAt = Date().addingTimeInterval(number * 86_400)
        }
        return key
    }

    static func describe(_ key: StoredKey, runtime: GatewayRuntime) -> JSONValue {
        let formatter = ISO8601DateFormatter()
        func optional(_ value: Int?) -> JSONValue { value.map { .number(Double($0)) } ?? .null }
        let status = key.revokedAt != nil ? "revoked" : (key.expiresAt.map { $0 <= Date() } ?? false) ? "expired" : "active"
        return [
            "id": .string(key.id), "name": .string(key.name), "prefix": .string(key.prefix), "tier": .string(key.tier),
            "rpm": optional(key.requestsPerMinute), "tpm": optional(key.tokensPerMinute), "max_concurrency": optional(key.maxConcurrency),
            "budget_tokens": optional(key.budgetTokens), "budget_period": .string(key.budgetPeriod),
            "models": .array(key.models.map(JSONValue.string)), "status": .string(status),
            "created_at": .string(formatter.string(from: key.createdAt)),
            "expires_at": key.expiresAt.map { .string(formatter.string(from: $0)) } ?? .null,
            "revoked_at": key.revokedAt.map { .string(formatter.string(from: $0)) } ?? .null,
            "usage": ["period_start": .string(formatter.string(from: KeyRegistry.periodStart(key.budgetPeriod, at: Date()))),
                      "tokens_used": .number(Double(runtime.keys.budgetUsed(id: key.id)))],
        ]
    }
}

/// Key creation without a running server, for the first key of a server that requires one.
public enum OfflineKeys {
    /// Creates a key in the store under `dataDirectory`; returns its JSON description with the secret.
    public static func create(dataDirectory: String, request body: JSONValue) async throws -> JSONValue {
        let store = try await SQLiteStore.open(path: dataDirectory + "/lifeline.sqlite")
        defer { Task { try? await store.close() } }
        let newKey: KeyRegistry.NewKey
        do throws(RequestError) { newKey = try KeyRoutes.parse(body) } catch {
            throw GatewayStartError(message: "\(error.param.map { "\($0): " } ?? "")\(error.message)")
        }
        let registry = try await KeyRegistry.load(store: store, auth: AuthConfig(), host: "127.0.0.1", clock: { 0 })
        let (key, secret) = try await registry.create(newKey)
        let formatter = ISO8601DateFormatter()
        return ["id": .string(key.id), "name": .string(key.name), "tier": .string(key.tier), "secret": .string(secret),
                "created_at": .string(formatter.string(from: key.createdAt))]
    }
}
