@testable import LifelineGateway
import AsyncHTTPClient
import LifelineWire
import NIOCore
import XCTest

/// What a client reads when upstreams refuse: pure wording and redaction, no sockets.
final class UpstreamErrorReportTests: XCTestCase {
    func testKeyShapedTextIsRedactedAndOrdinaryWordsAreNot() {
        let redactor = SecretRedactor()
        redactor.register(["configured-secret-value"])
        let cases: [(String, String)] = [
            ("Incorrect API key provided: sk-proj-Ab12Cd34Ef56.", "Incorrect API key provided: [redacted]."),
            ("sent Authorization: Bearer eyJhbGciOi.J9x-yz", "sent Authorization: Bearer [redacted]"),
            ("api_key=hunter22hunter; retry", "api_key=[redacted]; retry"),
            ("id AKIAIOSFODNN7EXAMPLE here", "id [redacted] here"),
            ("token abcDEF123ghiJKL456mnoPQR789 seen", "token [redacted] seen"),
            ("the configured-secret-value leaked", "the [redacted] leaked"),
            ("Invalid value for 'max_completion_tokens_per_request': too large", "Invalid value for 'max_completion_tokens_per_request': too large"),
            ("messages[0].content must be a string", "messages[0].content must be a string"),
            ("Only basic text and bearer tokens are described here", "Only basic text and bearer tokens are described here"),
        ]
        for (input, expected) in cases {
            XCTAssertEqual(redactor.redactForClient(input), expected, input)
        }
    }

    func testALogLinesCauseNamesTheTransportFailureAndNeverTheUpstreamsWords() {
        let words = "Incorrect API key provided: sk-upstream-x"
        XCTAssertEqual(UpstreamFailure(.status(401), words).cause, "status 401")
        XCTAssertEqual(UpstreamFailure(.malformed, "unreadable answer: \(words)").cause, "malformed answer")
        let connectTimeout = UpstreamClient.failure(from: HTTPClientError.connectTimeout)
        XCTAssertEqual(connectTimeout.cause, "timeout: HTTPClientError.connectTimeout")
        XCTAssertFalse(connectTimeout.reachedUpstream)
        XCTAssertFalse(UpstreamClient.failure(from: HTTPClientError.getConnectionFromPoolTimeout).reachedUpstream)
        XCTAssertFalse(UpstreamClient.failure(from: IOError(errnoCode: ECONNREFUSED, reason: "connect")).reachedUpstream)
        // A read timeout or a reset came after the request was written: the upstream may have acted on it.
        XCTAssertTrue(UpstreamClient.failure(from: HTTPClientError.readTimeout).reachedUpstream)
        XCTAssertTrue(UpstreamClient.failure(from: HTTPClientError.remoteConnectionClosed).reachedUpstream)
        XCTAssertTrue(UpstreamClient.failure(from: IOError(errnoCode: ECONNRESET, reason: "read")).reachedUpstream)
        XCTAssertEqual(String(UpstreamFailure(.connect, String(repeating: "x", count: 500)).cause.dropFirst(9)).count, 120)
    }

    func testEveryDeploymentMisconfiguredIs502NamingTheFieldsToCheck() {
        var refused = UpstreamFailure(.status(401), "Incorrect API key provided: sk-upstream-x")
        refused.deployment = "primary"
        var missing = UpstreamFailure(.status(404), "The model does not exist")
        missing.deployment = "backup"
        let error = UpstreamErrorReport.allFailed(model: "chat", failures: [refused, missing], budgetSpent: false)
        XCTAssertEqual(error.status, 502)
        XCTAssertEqual(error.code, "upstream_misconfigured")
        XCTAssertNil(error.retryAfterSeconds)
        XCTAssertEqual(error.message, "No deployment of model 'chat' could answer: deployment 'primary' rejected Lifeline's credentials; "
            + "check its api_key; deployment 'backup' answered not found; check its base_url and model.")
    }

    func testAMixOfOutagesAndRefusalsIs503WithLifelinesOwnWords() {
        var refused = UpstreamFailure(.status(403), "forbidden for key sk-upstream-x")
        refused.deployment = "primary"
        var down = UpstreamFailure(.status(503), "upstream body quoting Bearer abc", retryAfterSeconds: 2.5)
        down.deployment = "backup"
        let error = UpstreamErrorReport.allFailed(model: "chat", failures: [refused, down], budgetSpent: false)
        XCTAssertEqual(error.status, 503)
        XCTAssertEqual(error.retryAfterSeconds, 3)
        XCTAssertEqual(error.message, "Every deployment of model 'chat' that was tried failed. Deployment 'primary' rejected Lifeline's "
            + "credentials; check its api_key. Last error: deployment 'backup' answered HTTP 503.")
        // A refusal with the budget spent: another deployment might have answered, so 503.
        XCTAssertEqual(UpstreamErrorReport.allFailed(model: "chat", failures: [refused], budgetSpent: true).status, 503)
        var timedOut = UpstreamFailure(.timeout, "HTTPClientError.deadlineExceeded")
        timedOut.deployment = "backup"
        XCTAssertTrue(UpstreamErrorReport.allFailed(model: "chat", failures: [timedOut], budgetSpent: false).message
            .hasSuffix("Last error: deployment 'backup' timed out."))
    }

    func testOnlyTheRequestsOwnFaultsStayWithTheClient() {
        for status in [401, 403, 404, 408, 409, 429, 500, 502, 503, 529] {
            XCTAssertTrue(UpstreamFailure(.status(status), "").isRetryable, "\(status)")
        }
        for status in [400, 413, 422] {
            XCTAssertFalse(UpstreamFailure(.status(status), "").isRetryable, "\(status)")
        }
        XCTAssertEqual(ModelGroup.outcome(UpstreamFailure(.status(401), "")), "auth_error")
        XCTAssertEqual(ModelGroup.outcome(UpstreamFailure(.status(403), "")), "auth_error")
        XCTAssertEqual(ModelGroup.outcome(UpstreamFailure(.status(404), "")), "not_found")
        XCTAssertEqual(ModelGroup.outcome(UpstreamFailure(.status(400), "")), "client_error")
        let fault = UpstreamErrorReport.clientFault(UpstreamFailure(.status(400), "bad 'messages' for sk-upstream-abcdef12",
                                                                    body: ["error": ["param": "messages"]]))
        XCTAssertEqual(fault.status, 400)
        XCTAssertEqual(fault.message, "bad 'messages' for [redacted]")
        XCTAssertEqual(fault.param, "messages")
    }

    func testAProblemLastsUntilTheDeploymentAnswers() {
        let log = DeploymentProblemLog(deployment: "d", metrics: GatewayMetrics())
        log.record(UpstreamFailure(.status(401), ""), at: 10)
        log.record(UpstreamFailure(.status(500), ""), at: 11)
        log.record(UpstreamFailure(.status(403), ""), at: 12)
        XCTAssertEqual(log.problem, DeploymentProblem(kind: .credentialsRejected, status: 403, since: 10, lastAt: 12, count: 2))
        log.record(UpstreamFailure(.status(404), ""), at: 13)
        XCTAssertEqual(log.problem, DeploymentProblem(kind: .notFound, status: 404, since: 13, lastAt: 13, count: 1))
        log.record(nil, at: 14)
        XCTAssertNil(log.problem)
    }
}
