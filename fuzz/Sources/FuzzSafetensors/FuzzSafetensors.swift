import Prune

/// A safetensors checkpoint from the internet: any bytes must give a file or a typed error.
func fuzzOne(_ bytes: [UInt8]) {
  _ = try? Safetensors.decode(bytes, path: "fuzz.safetensors")
}

/// libFuzzer's entry: one input per call (scripts/fuzz.sh links libFuzzer's own main).
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
  fuzzOne(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
  return 0
}
