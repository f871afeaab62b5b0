// swift-tools-version:6.1
import PackageDescription

// Benchmarks live in their own package so `swift test` at the root never builds them.
// Run: cd Benchmarks && swift package benchmark
let package = Package(
    name: "TidemarkBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Tidemark", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
    ],
    targets: [
        .executableTarget(
            name: "StorageBenchmarks",
            dependencies: [
                .product(name: "TidemarkStorage", package: "Tidemark"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/StorageBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "EngineBenchmarks",
            dependencies: [
                .product(name: "Tidemark", package: "Tidemark"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/EngineBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Not a benchmark of the plugin's: a server, run by unbatched/run.sh beside produce_floor.c.
        .executableTarget(
            name: "NIOProduceFloor",
            dependencies: [
                .product(name: "TidemarkStorage", package: "Tidemark"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/NIOProduceFloor"
        ),
        .executableTarget(
            name: "MetricsBenchmarks",
            dependencies: [
                .product(name: "Tidemark", package: "Tidemark"),
                .product(name: "TidemarkHTTP", package: "Tidemark"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/MetricsBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
