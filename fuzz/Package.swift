// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets, one per parser of untrusted files (README "Hardening"). Built by
// scripts/fuzz.sh with -sanitize=fuzzer,address -parse-as-library; each calls libFuzzer's driver.
let parsers = ["Safetensors", "IDX", "IDXFile", "MAT", "CIFAR10", "BenchConfig"]
let package = Package(
  name: "advprune-fuzz",
  dependencies: [.package(name: "advprune", path: "..")],
  targets: parsers.map { .executableTarget(name: "Fuzz\($0)", dependencies: [.product(name: "Prune", package: "advprune")]) },
  swiftLanguageModes: [.v5]
)
