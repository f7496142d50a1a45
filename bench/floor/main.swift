import AsyncHTTPClient
import Hummingbird
import NIOCore
import NIOPosix

// The overhead benchmark's floor: the least proxy that can be built on the two libraries the
// gateway is built on (Hummingbird serving, AsyncHTTPClient calling the upstream), set up as the
// gateway sets them up: the same event loops run the tasks, and each loop has its own pool.
// It passes the request body to the upstream and the answer back as it arrives, and does nothing
// else: no parsing, routing, admission, metrics or logs. What it costs per request is what those
// libraries cost; what the gateway costs over it is the gateway's own.
//
// Usage: lifeline-bench-floor PORT UPSTREAM_URL
//   POST /v1/chat/completions        relayed to UPSTREAM_URL
//   POST /fixed/v1/chat/completions  answered at once with a fixed body (Hummingbird alone)

_ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
let arguments = CommandLine.arguments
guard arguments.count == 3, let port = Int(arguments[1]) else {
    print("usage: lifeline-bench-floor PORT UPSTREAM_URL")
    exit(2)
}
let upstream = arguments[2]

var configuration = HTTPClient.Configuration()
configuration.httpVersion = .http1Only
configuration.decompression = .disabled
configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 16_384)
let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
let clients = loops.map { HTTPClient(eventLoopGroup: $0, configuration: configuration) }
let clientOfLoop = Dictionary(uniqueKeysWithValues: zip(loops.map { ObjectIdentifier($0) }, clients))

let router = Router()
router.post("/v1/chat/completions") { request, _ -> Response in
    var outbound = HTTPClientRequest(url: upstream)
    outbound.method = .POST
    outbound.headers.add(name: "content-type", value: "application/json")
    outbound.body = .bytes(try await request.body.collect(upTo: 1 << 20))
    let http = MultiThreadedEventLoopGroup.currentEventLoop.flatMap { clientOfLoop[ObjectIdentifier($0)] } ?? clients[0]
    let answer = try await http.execute(outbound, timeout: .seconds(60))
    let contentType = answer.headers.first(name: "content-type") ?? "application/json"
    return Response(status: .init(code: Int(answer.status.code)), headers: [.contentType: contentType], body: ResponseBody { writer in
        for try await chunk in answer.body { try await writer.write(chunk) }
        try await writer.finish(nil)
    })
}
let fixed = ByteBuffer(string: #"{"id":"chatcmpl-floor","object":"chat.completion","created":1,"model":"sim-model","choices":[{"index":0,"message":{"role":"assistant","content":"Latency is the time a request waits."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":8,"total_tokens":17}}"#)
router.post("/fixed/v1/chat/completions") { request, _ -> Response in
    _ = try await request.body.collect(upTo: 1 << 20)
    return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: fixed))
}
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: nil, backlog: 4096))
try await app.runService()
