import Foundation
import Prune

/// An IDX file as it is read from disk: gzip-compressed or raw, through zlib, stopping at the
/// size its header declares (the decompression-bomb guard).
func fuzzOne(_ bytes: [UInt8]) {
  let path = FileManager.default.temporaryDirectory.appendingPathComponent("advprune-fuzz-\(getpid()).gz").path
  guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { return }
  defer { try? FileManager.default.removeItem(atPath: path) }
  _ = try? IDX.read(path: path)
}

/// libFuzzer's entry: one input per call (scripts/fuzz.sh links libFuzzer's own main).
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
  fuzzOne(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
  return 0
}
