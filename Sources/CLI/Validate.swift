import ArgumentParser
import Foundation
import GPU

struct Validate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run every op on a backend and on the CPU reference with random inputs and compare.",
    discussion: """
      Passes when |candidate - reference| <= atol + rtol*|reference| everywhere. Exit 1 on any failure. \
      --device opencl (the default) checks an OpenCL device; --device cpu checks the CPU backend's fast \
      paths (Winograd convolutions) against its plain reference loops.
      """)

  @OptionGroup var common: CommonOptions

  struct Row: Encodable {
    let op: String
    let shape: String
    let maxAbsError: Float
    let maxRelError: Float
    let passed: Bool
    let detail: String?
  }

  struct Report: Encodable {
    let device: String
    let passed: Bool
    let ops: [Row]
  }

  func run() throws {
    try reportingErrors {
      var request = try common.deviceRequest()
      if request == .auto { request = .opencl(nil) }
      let (backend, reason) = try makeBackend(request, kernelsDirectory: common.kernelsDir)
      if !common.quiet { printErr("device: \(reason)") }
      let results = try OpSuite.compare(candidate: backend, seed: common.seed)
      let rows = results.map { r in
        Row(
          op: r.op, shape: r.shape, maxAbsError: r.maxAbsoluteError, maxRelError: r.maxRelativeError, passed: r.passed,
          detail: r.passed ? nil : r.reports.filter { !$0.passed }.map(\.description).joined(separator: "; "))
      }
      let passed = rows.allSatisfy(\.passed)
      if common.json {
        try printJSON(Report(device: backend.name, passed: passed, ops: rows))
      } else {
        print("op              shape                                        max abs err  max rel err  result")
        for r in rows {
          print(
            r.op.padding(toLength: 16, withPad: " ", startingAt: 0) + r.shape.padding(toLength: 45, withPad: " ", startingAt: 0)
              + String(format: "%11.2e  %11.2e  %@", r.maxAbsError, r.maxRelError, r.passed ? "pass" : "FAIL"))
          if let d = r.detail { print("    \(d)") }
        }
        print(passed ? "all \(rows.count) checks passed on \(backend.name)" : "FAILED: \(rows.filter { !$0.passed }.count) of \(rows.count) checks")
      }
      if !passed { throw ExitCode(1) }
    }
  }
}
