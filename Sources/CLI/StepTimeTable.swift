import Foundation
import Prune

/// `attack --layer-times` and `predict --layer-times`: each step's time, share and multiply-add
/// rate, in the model's order.
enum StepTimeTable {
  /// `passes` says what the columns cover.
  static func print(_ rows: [StepTime], passes: String) {
    let total = rows.reduce(0) { $0 + $1.seconds }
    Swift.print(
      "step".padding(toLength: 22, withPad: " ", startingAt: 0) + "output".padding(toLength: 12, withPad: " ", startingAt: 0)
        + " MMACs/img  forward ms  backward ms   share  GMAC/s")
    for r in rows {
      let shape = r.outputShape.map(String.init).joined(separator: "x")
      Swift.print(
        r.step.padding(toLength: 22, withPad: " ", startingAt: 0) + shape.padding(toLength: 12, withPad: " ", startingAt: 0)
          + String(
            format: " %9.3f %11.1f %12.1f  %5.1f%%  %6.1f", Double(r.macsPerImage) / 1e6, 1e3 * r.forwardSeconds, 1e3 * r.backwardSeconds,
            total > 0 ? 100 * r.seconds / total : 0, r.macsPerSecond / 1e9))
    }
    Swift.print(String(format: "all steps: %.1f ms (%@)", 1e3 * total, passes))
  }
}
