// swift-tools-version:6.1
import PackageDescription

// Dependencies point one way: storage <- engine, storage <- wire codecs,
// {engine, wire} <- server, engine <- http (metrics, health) <- executable.
let package = Package(
    name: "Tidemark",
    products: [
        .library(name: "TidemarkStorage", targets: ["TidemarkStorage"]),
        .library(name: "Tidemark", targets: ["Tidemark"]),
        .library(name: "TidemarkWire", targets: ["TidemarkWire"]),
        .library(name: "TidemarkServer", targets: ["TidemarkServer"]),
        .library(name: "TidemarkHTTP", targets: ["TidemarkHTTP"]),
        .executable(name: "tidemark", targets: ["tidemark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        // Metrics: swift-metrics in the server (backend-neutral), swift-prometheus in the HTTP
        // module that exposes them (clean build of both: ~10 s on this machine).
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
        // Tracing: the API in the engine (light); the OTLP exporter only in the executable.
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.0"),
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // liblz4 from the system (Debian: liblz4-dev).
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        // The other codecs Kafka producers use, from the system: gzip (zlib), zstd, snappy.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CSnappy", pkgConfig: "snappy", providers: [.apt(["libsnappy-dev"])]),
        // CRC-32C (Castagnoli): SSE4.2 when the CPU has it, table-driven otherwise.
        .target(name: "CCRC32C"),
        // Linux calls Swift's Glibc module does not declare (syncfs needs _GNU_SOURCE).
        .target(name: "CSystemShims"),
        // The stop-signal handler of `tidemark serve` (async-signal-safe, so in C).
        .target(name: "CStopSignals"),
        .target(
            name: "TidemarkStorage",
            dependencies: [
                "CLZ4",
                "CZlib",
                "CZstd",
                "CSnappy",
                "CCRC32C",
                "CSystemShims",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The engine and embedded API: topics, producers, consumers, groups.
        .target(
            name: "Tidemark",
            dependencies: [
                "TidemarkStorage", .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ]
        ),
        // Kafka wire protocol codecs: pure encode/decode, no I/O.
        .target(name: "TidemarkWire", dependencies: ["TidemarkStorage"]),
        .testTarget(name: "TidemarkWireTests", dependencies: ["TidemarkWire"], exclude: ["Vectors"]),
        // The Kafka front: SwiftNIO server over the engine.
        .target(
            name: "TidemarkServer",
            dependencies: [
                "Tidemark", "TidemarkWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // The HTTP listener above the engine: /metrics (Prometheus), /healthz, /readyz.
        .target(
            name: "TidemarkHTTP",
            dependencies: [
                "Tidemark",
                "TidemarkStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "TidemarkServerTests",
            dependencies: [
                "TidemarkServer", "TidemarkWire", "Tidemark", "TestSupport", "TidemarkHTTP",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        // Runs the built `tidemark` executable and checks its output and exit codes.
        .testTarget(name: "TidemarkCLITests", dependencies: ["TestSupport", "TidemarkStorage", "Tidemark"]),
        // A small blocking Kafka client for the tools (replay, --bootstrap).
        .target(name: "TidemarkClient", dependencies: ["TidemarkWire", "TidemarkStorage"]),
        // The CLI: tools/tidemark.
        .executableTarget(
            name: "tidemark",
            dependencies: [
                "TidemarkServer", "Tidemark", "TidemarkClient", "TidemarkWire", "TidemarkHTTP",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                "CStopSignals",
            ],
            path: "tools/tidemark"
        ),
        // The request fuzz target (tools/fuzz.sh builds it with libFuzzer); built plainly, it
        // replays fuzz inputs given as files.
        .executableTarget(
            name: "tidemark-fuzz",
            dependencies: ["TidemarkServer", "Tidemark", .product(name: "Logging", package: "swift-log")],
            path: "tools/fuzz",
            exclude: ["seeds", "capture.py"]
        ),
        // Helpers shared by the test targets (temporary directories, seeded randomness).
        .target(
            name: "TestSupport",
            dependencies: [
                "TidemarkStorage", .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "TidemarkTests",
            dependencies: [
                "Tidemark", "TidemarkStorage", "TestSupport",
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .testTarget(
            name: "TidemarkStorageTests",
            dependencies: ["TidemarkStorage", "CLZ4", "CZstd", "TestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
