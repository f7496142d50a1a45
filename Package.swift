// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Lifeline",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lifeline", targets: ["lifeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // Traces over OTLP/HTTP only: the OTLPGRPC trait would build gRPC and HTTP/2 as well (6.1 tools for traits).
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    ],
    targets: [
        .target(name: "LifelineCore"),
        .target(name: "LifelineWire", dependencies: [
            "LifelineCore",
            // HMAC and SHA-256 for AWS Signature Version 4 (Bedrock); already built for the gateway.
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "LifelineStore", dependencies: [
            "LifelineCore",
            .product(name: "SQLiteNIO", package: "sqlite-nio"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "LifelineSimulator", dependencies: [
            "LifelineCore", "LifelineWire",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "LifelineGateway", dependencies: [
            "LifelineCore", "LifelineWire", "LifelineSimulator", "LifelineStore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "OTel", package: "swift-otel"),
            .product(name: "Tracing", package: "swift-distributed-tracing"),
        ], resources: [
            // Plain HTML/CSS/JS compiled into the binary; WebUI/WebAssets.swift says why not `.copy`.
            .embedInCode("WebUI/Assets"),
        ]),
        .executableTarget(name: "lifeline", dependencies: [
            "LifelineCore", "LifelineGateway", "LifelineSimulator", "LifelineWire",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ]),
        // The overhead benchmark's floor (bench/floor/main.swift says what it is); not shipped.
        .executableTarget(name: "lifeline-bench-floor", dependencies: [
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ], path: "bench/floor"),
        .testTarget(name: "LifelineCoreTests", dependencies: ["LifelineCore"]),
        .testTarget(name: "LifelineWireTests", dependencies: ["LifelineWire"], exclude: ["Fixtures"]),
        .testTarget(name: "LifelineStoreTests", dependencies: [
            "LifelineStore", "LifelineCore", .product(name: "SQLiteNIO", package: "sqlite-nio"),
        ]),
        .testTarget(name: "LifelineGatewayTests", dependencies: [
            "LifelineGateway", "LifelineSimulator", "LifelineStore",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ]),
    ]
)
