// swift-tools-version:6.0
import PackageDescription

// Arrows point one way: CLI -> Prune -> GPU -> COpenCL (see DESIGN.md). CKernels holds the CPU
// backend's few hot loops that need per-CPU vector copies, which Swift cannot express.
let package = Package(
  name: "advprune",
  products: [
    .executable(name: "advprune", targets: ["CLI"]),
    .library(name: "Prune", targets: ["Prune"]),
    .library(name: "GPU", targets: ["GPU"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
  ],
  targets: [
    .systemLibrary(name: "COpenCL", path: "Sources/COpenCL"),
    .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
    .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
    .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O3"])]),
    .target(name: "GPU", dependencies: ["COpenCL", "CKernels"]),
    .target(name: "Prune", dependencies: ["GPU", "CZlib", "CSQLite"]),
    .executableTarget(
      name: "CLI",
      dependencies: ["Prune", "GPU", .product(name: "ArgumentParser", package: "swift-argument-parser")]
    ),
    .testTarget(name: "GPUTests", dependencies: ["GPU"]),
    .testTarget(name: "PruneTests", dependencies: ["Prune", "GPU", "CZlib", "CSQLite"]),
    .testTarget(name: "CLITests", dependencies: ["CLI"]),
  ],
  swiftLanguageModes: [.v5]
)
