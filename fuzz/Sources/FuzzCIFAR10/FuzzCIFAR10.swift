import Prune

/// A CIFAR-10 binary batch file.
func fuzzOne(_ bytes: [UInt8]) {
  var images: [Float] = []
  var labels: [Int] = []
  try? CIFAR10.decode(bytes, path: "fuzz.bin", limit: .max, into: &images, labels: &labels)
}

/// libFuzzer's entry: one input per call (scripts/fuzz.sh links libFuzzer's own main).
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
  fuzzOne(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
  return 0
}
