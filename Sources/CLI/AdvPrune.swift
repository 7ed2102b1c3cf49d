import ArgumentParser
import Foundation

@main
struct AdvPrune: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "advprune",
    abstract: "Adversarial pruning: train robust networks, prune them, and evaluate them with reliable attacks.",
    discussion: """
      Every command takes --device auto|cpu|opencl[:N] (or ADVPRUNE_DEVICE), --seed and --json.
      Exit codes: 0 success, 1 failed validation, 2 bad input (file, value or option).
      """,
    version: "0.1.0",
    subcommands: [
      Devices.self, Validate.self, BenchKernel.self, Train.self, PruneCommand.self, Attack.self, Curve.self, Demo.self, Profile.self, Predict.self,
      Export.self,
      Models.self, Taxonomy.self, Bench.self, Report.self,
    ]
  )

  /// ArgumentParser's own main, except that a malformed command line exits 2 (our code for bad
  /// input) instead of its 64.
  static func main() {
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch {
      guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
      printErr(fullMessage(for: error))
      Foundation.exit(2)
    }
  }
}
