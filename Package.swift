// swift-tools-version:6.1
import PackageDescription

// Dependencies point one way: storage <- engine <- wire codecs <- server <- executable.
let package = Package(
    name: "Tidemark",
    products: [
        .library(name: "TidemarkStorage", targets: ["TidemarkStorage"]),
        .library(name: "Tidemark", targets: ["Tidemark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system.git", from: "1.4.0"),
    ],
    targets: [
        // liblz4 from the system (Debian: liblz4-dev).
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        // CRC-32C (Castagnoli): SSE4.2 when the CPU has it, table-driven otherwise.
        .target(name: "CCRC32C"),
        .target(
            name: "TidemarkStorage",
            dependencies: [
                "CLZ4",
                "CCRC32C",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The engine and embedded API: topics, producers, consumers, groups.
        .target(name: "Tidemark", dependencies: ["TidemarkStorage"]),
        // Helpers shared by the test targets (temporary directories, seeded randomness).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TidemarkTests", dependencies: ["Tidemark", "TidemarkStorage", "TestSupport"]),
        .testTarget(
            name: "TidemarkStorageTests",
            dependencies: ["TidemarkStorage", "CLZ4", "TestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
