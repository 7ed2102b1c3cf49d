import ArgumentParser
import Foundation
import GPU
import Prune

struct Export: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write a checkpoint as a plain PyTorch state dict; with --compact, physically remove the filters filter pruning zeroed.",
    discussion: """
      The result is checked before it is kept: rebuilt from its tensors it must reproduce the source's logits.
      A compact file records its channel counts in the metadata (`channels`), so every advprune command loads it.
      """)

  @Argument(help: "Checkpoint (.safetensors).") var checkpoint: String
  @Flag(help: "Remove pruned channels: a smaller dense model (after `prune --structure filter`).") var compact = false
  @Option(help: "Output file (.safetensors).") var out: String
  @Option(help: "Architecture of a checkpoint saved from PyTorch (ours carry it in their metadata).") var arch: String?
  @Option(help: "Channel multiplier of such a checkpoint.") var width: Double?
  @OptionGroup var common: CommonOptions

  func run() throws {
    try reportingErrors {
      var job = ExportJob(input: checkpoint, compact: compact, output: out)
      job.architecture = try arch.map(Architecture.init(parsing:))
      job.width = width
      job.seed = common.seed
      let result = try job.run(backend: try common.backend())
      if common.json { return try printJSON(result) }
      if !result.groups.isEmpty {
        print("channel group        before     after")
        for g in result.groups where g.kept != g.channels {
          print(g.name.padding(toLength: 18, withPad: " ", startingAt: 0) + String(format: "%9d %9d", g.channels, g.kept))
        }
      }
      print(
        String(
          format: "%@: %.3fM parameters (%.3fM non-zero before), %.1f MFLOPs per image (%.1f before); logits match to %.1e; saved %@",
          result.architecture, Double(result.parametersAfter) / 1e6, Double(result.parametersBefore) / 1e6, 2 * Double(result.macsAfter) / 1e6,
          2 * Double(result.macsBefore) / 1e6, Double(result.maxLogitDifference), result.checkpoint))
    }
  }
}
