import LifelineGateway
import LifelineWire
import XCTest

/// What a caller who got something wrong is told, over real sockets: unknown paths and wrong
/// methods in their API's error shape with the closest route, unknown models with the models
/// the caller may use.
final class ErrorGuidanceEndToEndTests: XCTestCase {
    var fixture: GatewayFixture!

    override func setUp() async throws {
        fixture = try await GatewayFixture.start()
    }

    override func tearDown() async throws {
        await fixture.stop()
    }

    func testAnUnknownPathGetsA404InItsAPIShapeNamingTheClosestRoute() async throws {
        let openAI = try await fixture.post("/v1/chat/completion", chatBody("chat-openai", "hi"), headers: ["x-request-id": "typo-1"])
        XCTAssertEqual(openAI.status, 404)
        XCTAssertEqual(openAI.headers["content-type"], "application/json")
        XCTAssertEqual(openAI.headers["x-request-id"], "typo-1")
        let error = try XCTUnwrap(openAI.json?["error"])
        XCTAssertEqual(error["type"], "invalid_request_error")
        XCTAssertEqual(error["code"], "unknown_url")
        XCTAssertEqual(error["param"], .null)
        let message = try XCTUnwrap(error["message"]?.stringValue)
        XCTAssertTrue(message.contains("Did you mean /v1/chat/completions?"), message)

        let anthropic = try await fixture.post("/v1/messages/count_token", chatBody("chat-anthropic", "hi", api: .anthropic))
        XCTAssertEqual(anthropic.status, 404)
        XCTAssertEqual(anthropic.json?["type"], "error")
        XCTAssertEqual(anthropic.json?["error"]?["type"], "not_found_error")
        XCTAssertTrue(anthropic.json?["error"]?["message"]?.stringValue?.contains("Unknown path POST /v1/messages/count_token") == true, anthropic.text)

        // A mistyped Messages path, or any unknown path from an Anthropic client, gets Anthropic's shape.
        let mistyped = try await fixture.post("/v1/message", chatBody("chat-anthropic", "hi", api: .anthropic))
        XCTAssertEqual(mistyped.json?["error"]?["type"], "not_found_error")
        XCTAssertEqual(mistyped.json?["error"]?["message"], "Unknown path POST /v1/message. Did you mean /v1/messages?")
        let fromAnthropicClient = try await fixture.get("/v1/files", headers: ["anthropic-version": "2023-06-01"])
        XCTAssertEqual(fromAnthropicClient.json?["type"], "error")
        let fromOpenAIClient = try await fixture.get("/v1/files")
        XCTAssertEqual(fromOpenAIClient.json?["error"]?["code"], "unknown_url")

        let other = try await fixture.get("/helthz")
        XCTAssertEqual(other.status, 404)
        XCTAssertTrue(other.json?["error"]?["message"]?.stringValue?.contains("Did you mean /healthz?") == true, other.text)
        let parameter = try await fixture.get("/v1/model/chat-openai")
        XCTAssertTrue(parameter.json?["error"]?["message"]?.stringValue?.contains("Did you mean /v1/models/{name}?") == true, parameter.text)
        let nothingClose = try await fixture.get("/wp-login.php")
        XCTAssertEqual(nothingClose.status, 404)
        XCTAssertEqual(nothingClose.json?["error"]?["message"], "Unknown path GET /wp-login.php.")

        // A handler's own 404 is left as it is.
        let model = try await fixture.get("/v1/models/no-such-model")
        XCTAssertEqual(model.json?["error"]?["code"], "model_not_found")
    }

    func testAKnownPathWithTheWrongMethodGets405WithAllow() async throws {
        let openAI = try await fixture.get("/v1/chat/completions")
        XCTAssertEqual(openAI.status, 405)
        XCTAssertEqual(openAI.headers["allow"], "POST")
        XCTAssertEqual(openAI.json?["error"]?["code"], "method_not_allowed")
        XCTAssertEqual(openAI.json?["error"]?["message"], "GET is not allowed on /v1/chat/completions; use POST.")
        let anthropic = try await fixture.send("DELETE", "/v1/messages")
        XCTAssertEqual(anthropic.status, 405)
        XCTAssertEqual(anthropic.headers["allow"], "POST")
        XCTAssertEqual(anthropic.json?["type"], "error")
        XCTAssertEqual(anthropic.json?["error"]?["type"], "invalid_request_error")
        let models = try await fixture.post("/v1/models", ["x": 1])
        XCTAssertEqual(models.status, 405)
        XCTAssertEqual(models.headers["allow"], "GET")
    }

    func testAnUnknownModelListsTheModelsTheCallerMayUse() async throws {
        let typo = try await fixture.post("/v1/chat/completions", chatBody("chat-opnai", "hi"))
        XCTAssertEqual(typo.status, 404)
        XCTAssertEqual(typo.json?["error"]?["code"], "model_not_found")
        XCTAssertEqual(typo.json?["error"]?["param"], "model")
        XCTAssertEqual(typo.json?["error"]?["message"], """
        The model 'chat-opnai' does not exist or you do not have access to it. Did you mean 'chat-openai'? \
        Available models: chat-openai, chat-anthropic.
        """)
        let anthropic = try await fixture.post("/v1/messages", chatBody("claude-x", "hi", api: .anthropic))
        XCTAssertEqual(anthropic.json?["error"]?["type"], "not_found_error")
        XCTAssertTrue(anthropic.json?["error"]?["message"]?.stringValue?.hasSuffix("Available models: chat-openai, chat-anthropic.") == true,
                      anthropic.text)

        // A key limited to one model is told only of that one, on every route that names models.
        let created = try await fixture.admin("POST", "/keys", ["name": "narrow", "models": ["chat-anthropic"]])
        XCTAssertEqual(created.status, 201, created.text)
        let secret = try XCTUnwrap(created.json?["secret"]?.stringValue)
        let auth = ["authorization": "Bearer \(secret)"]
        let narrow = try await fixture.post("/v1/chat/completions", chatBody("gpt-4o", "hi"), headers: auth)
        XCTAssertEqual(narrow.status, 404)
        XCTAssertTrue(narrow.json?["error"]?["message"]?.stringValue?.hasSuffix("Available models: chat-anthropic.") == true, narrow.text)
        let forbidden = try await fixture.post("/v1/chat/completions", chatBody("chat-openai", "hi"), headers: auth)
        XCTAssertEqual(forbidden.status, 403)
        XCTAssertEqual(forbidden.json?["error"]?["message"], "This API key may not use model 'chat-openai'; it may use: chat-anthropic.")
        let embeddings = try await fixture.post("/v1/embeddings", ["model": "text-embedding-3-small", "input": "x"], headers: auth)
        XCTAssertEqual(embeddings.status, 404)
        XCTAssertTrue(embeddings.json?["error"]?["message"]?.stringValue?.hasSuffix("Available models: chat-anthropic.") == true, embeddings.text)
        let lookup = try await fixture.get("/v1/models/gpt-4o", headers: auth)
        XCTAssertTrue(lookup.json?["error"]?["message"]?.stringValue?.hasSuffix("Available models: chat-anthropic.") == true, lookup.text)
    }
}
