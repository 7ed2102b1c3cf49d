import Foundation
import GPU

/// Per-kernel time read from OpenCL's profiling events: what `profile --kernels` and
/// `predict --kernels` print.
struct KernelRow: Encodable {
  let name: String
  let calls: Int
  let totalMilliseconds: Double
  let share: Double
  /// For convolutions and GEMMs.
  let gflops: Double?

  /// Starts timing every launch and transfer on `cl` from a clean slate.
  static func startProfiling(_ cl: OpenCLBackend) {
    cl.resetTimings()
    cl.profiling = true
  }

  /// Stops timing and reads what was timed since `startProfiling` (events are read at a
  /// synchronisation).
  static func stopProfiling(_ cl: OpenCLBackend) throws -> [KernelRow] {
    try cl.synchronize()
    cl.profiling = false
    return rows(of: cl)
  }

  /// The timings `cl` has gathered since its last reset, slowest first.
  private static func rows(of cl: OpenCLBackend) -> [KernelRow] {
    let total = cl.timings.values.reduce(0) { $0 + $1.totalNanoseconds }
    return cl.timings.values.sorted { $0.totalNanoseconds > $1.totalNanoseconds }.map {
      KernelRow(
        name: $0.name, calls: $0.calls, totalMilliseconds: $0.totalNanoseconds / 1e6, share: total > 0 ? $0.totalNanoseconds / total : 0,
        gflops: $0.gflops)
    }
  }

  static func printTable(_ rows: [KernelRow]) {
    guard !rows.isEmpty else { return }
    print("kernel".padding(toLength: 44, withPad: " ", startingAt: 0) + " calls   total ms   share  GFLOP/s")
    for r in rows {
      print(
        r.name.padding(toLength: 44, withPad: " ", startingAt: 0)
          + String(format: "%6d %10.2f  %5.1f%%", r.calls, r.totalMilliseconds, 100 * r.share)
          + (r.gflops.map { String(format: "  %7.1f", $0) } ?? ""))
    }
  }
}
