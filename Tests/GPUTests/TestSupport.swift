import Foundation
import GPU
import XCTest

/// The OpenCL backend for parity tests, built once per test process.
///
/// With `ADVPRUNE_REQUIRE_OPENCL=1` (CI) a missing device fails the test; elsewhere it skips.
enum OpenCLFixture {
  static let shared = Result { try OpenCLBackend.first() }

  static func backend(file: StaticString = #filePath, line: UInt = #line) throws -> OpenCLBackend {
    switch shared {
    case .success(let backend): return backend
    case .failure(let error):
      if ProcessInfo.processInfo.environment["ADVPRUNE_REQUIRE_OPENCL"] == "1" {
        XCTFail("ADVPRUNE_REQUIRE_OPENCL=1 but OpenCL is unavailable: \(error)", file: file, line: line)
        throw error
      }
      throw XCTSkip("OpenCL unavailable (\(error)); set ADVPRUNE_REQUIRE_OPENCL=1 to make this a failure")
    }
  }
}

func assertClose(_ got: [Float], _ want: [Float], atol: Float, rtol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
  let report = ParityReport(reference: want, got: got, atol: atol, rtol: rtol)
  XCTAssert(report.passed, "\(what): \(report)", file: file, line: line)
}
