import Prune

/// An (already decompressed) IDX file: MNIST / Fashion-MNIST images and labels.
func fuzzOne(_ bytes: [UInt8]) {
  _ = try? IDX.parse(bytes, path: "fuzz-idx3-ubyte")
}

/// libFuzzer's entry: one input per call (scripts/fuzz.sh links libFuzzer's own main).
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
  fuzzOne(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
  return 0
}
