import Hummingbird
import LifelineWire
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import XCTest

/// A local HTTP server that records webhook posts; it can fail the first few with a status.
final class WebhookReceiver: Sendable {
    struct Post: Sendable {
        var path: String
        var headers: [String: String]
        var body: JSONValue
    }

    private let posts = Mutex<[Post]>([])
    private let failures = Mutex<(remaining: Int, status: Int)>((0, 500))
    private let redirectTarget = Mutex<String?>(nil)
    private let task = Mutex<Task<Void, any Error>?>(nil)
    private let boundPort = Atomic<Int>(0)

    var port: Int { boundPort.load(ordering: .relaxed) }
    var url: String { "http://127.0.0.1:\(port)" }
    var received: [Post] { posts.withLock { $0 } }

    /// Answers the next `count` posts with `status` (and records them) before accepting again.
    func fail(next count: Int, status: Int = 500) { failures.withLock { $0 = (count, status) } }

    /// Answers every post (and records it) with `307 Temporary Redirect` to `location`.
    func redirect(to location: String) { redirectTarget.withLock { $0 = location } }

    static func start() async throws -> WebhookReceiver {
        let receiver = WebhookReceiver()
        let router = Router()
        router.post("/**") { request, _ in
            let body = try await request.body.collect(upTo: 1024 * 1024)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            let json = (try? JSONCoding.decode(body.readableBytesView)) ?? .null
            receiver.posts.withLock { $0.append(Post(path: request.uri.path, headers: headers, body: json)) }
            if let location = receiver.redirectTarget.withLock({ $0 }) {
                return Response(status: .temporaryRedirect, headers: [.location: location])
            }
            let status = receiver.failures.withLock { failures -> Int? in
                guard failures.remaining > 0 else { return nil }
                failures.remaining -= 1
                return failures.status
            }
            return Response(status: .init(code: status ?? 200))
        }
        var logger = Logger(label: "receiver")
        logger.logLevel = .critical
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in
                                  continuation.yield(channel.localAddress?.port ?? 0)
                                  continuation.finish()
                              }, logger: logger)
        let running = Task { try await ServiceGroup(services: [app], logger: logger).run() }
        receiver.task.withLock { $0 = running }
        var iterator = ports.makeAsyncIterator()
        let port = await iterator.next()
        receiver.boundPort.store(try XCTUnwrap(port), ordering: .relaxed)
        return receiver
    }

    func stop() async {
        let running = task.withLock { $0 }
        running?.cancel()
        _ = await running?.result
    }

    /// Waits until `condition` holds for the posts so far, or the timeout passes.
    func wait(timeout: Duration = .seconds(10), until condition: ([Post]) -> Bool) async -> [Post] {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            let current = received
            if condition(current) { return current }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return received
    }
}
