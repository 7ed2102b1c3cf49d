import Prune

/// A MATLAB v5 file (SVHN's train_32x32.mat), compressed elements included.
func fuzzOne(_ bytes: [UInt8]) {
  _ = try? MATv5.parse(bytes, path: "fuzz.mat")
}

/// libFuzzer's entry: one input per call (scripts/fuzz.sh links libFuzzer's own main).
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
  fuzzOne(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
  return 0
}
