import Prune

/// A benchmark grid config (TOML): parsed, checked and planned.
func fuzzOne(_ bytes: [UInt8]) {
  guard let text = String(validating: bytes, as: UTF8.self) else { return }
  if let config = try? BenchConfig.parse(text, path: "fuzz.toml") { _ = try? BenchPlan(config) }
}

/// libFuzzer's entry: one input per call (scripts/fuzz.sh links libFuzzer's own main).
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
  fuzzOne(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
  return 0
}
