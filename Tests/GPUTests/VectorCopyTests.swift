import XCTest

@testable import GPU

/// Every copy of the C hot loops this CPU can run (baseline, AVX2 + FMA, AVX-512) computes what
/// the reference loops compute: each copy is picked in turn and the Winograd, max-pooling and
/// sparse tests run under it.
final class VectorCopyTests: XCTestCase {
  func testEveryCopyTheCPUSupportsMatchesTheReference() throws {
    let before = CPUBackend.vectorCopy
    defer { CPUBackend.selectVectorCopy(before) }
    let best = CPUBackend.selectVectorCopy(nil)
    XCTAssertGreaterThanOrEqual(best.rawValue, before.rawValue)
    for copy in CPUBackend.VectorCopy.allCases where copy.rawValue <= best.rawValue {
      XCTAssertEqual(CPUBackend.selectVectorCopy(copy), copy)
      XCTAssertEqual(CPUBackend.vectorCopy, copy)
      try WinogradTests.checkAgainstIm2col()
      try MaxPoolTests.checkAgainstReference()
      try SparseConvTests.checkAgainstDense()
    }
    #if arch(x86_64)
      // Every x86-64 CPU advprune runs on in CI has AVX2 and FMA; a copy picked by the CPU's
      // model instead of its features (target_clones' arch=haswell) ran baseline on AMD.
      XCTAssertGreaterThanOrEqual(best.rawValue, CPUBackend.VectorCopy.avx2.rawValue, "this CPU's AVX2 + FMA copy was not picked")
    #endif
  }
}
