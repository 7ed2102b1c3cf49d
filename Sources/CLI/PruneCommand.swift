import ArgumentParser
import Foundation
import GPU
import Prune

struct PruneCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "prune",
    abstract: "Prune a checkpoint (one-shot: single weights, or whole filters) and fine-tune it adversarially with the masks held.")

  @Argument(help: "Trained checkpoint (.safetensors).") var checkpoint: String
  @Option(help: "What ranks the weights: magnitude (LWM) or random.") var criterion: String = "magnitude"
  @Option(help: "local (same rate per layer) or global (one ranking across layers).") var locality: Locality = .global
  @Option(help: "unstructured (single weights) or filter (alias structured: whole conv channels; `export --compact` removes them).") var structure:
    Structure = .unstructured
  @Option(help: "Share to remove, in [0, 1): of the conv and linear weights (unstructured), of the conv channels (filter).") var sparsity: Double
  @Option(help: "Fine-tuning epochs (0: prune only).") var finetuneEpochs: Int = 1
  @Option(help: "Data set (default: the checkpoint's).") var dataset: String?
  @Option(help: "Directory of the data set's files.") var dataDir: String?
  @Option(help: "Fine-tune on the first N training images only.") var trainLimit: Int?
  @Option(help: "Output checkpoint (.safetensors).") var out: String
  @OptionGroup var recipe: RecipeOptions
  @Option(help: "Architecture of a checkpoint saved from PyTorch (ours carry it in their metadata).") var arch: String?
  @Option(help: "Channel multiplier of such a checkpoint.") var width: Double?
  @OptionGroup var common: CommonOptions

  func run() throws {
    try reportingErrors {
      let data = try dataset.map(DatasetName.init(parsing:))
      try PruneJob.check(sparsity: sparsity)
      let defaults = Recipe.defaults(for: .smallcnn, on: try data ?? Checkpoint.storedDataset(path: checkpoint) ?? .fashionMNIST)
      var job = PruneJob(
        input: checkpoint, criterion: try Criterion(parsing: criterion), locality: locality, sparsity: sparsity, dataset: data,
        dataDirectory: dataDir, trainLimit: trainLimit,
        finetune: try recipe.config(defaults, epochs: finetuneEpochs, learningRate: defaults.finetuneLearningRate, seed: common.seed), output: out)
      job.architecture = try arch.map(Architecture.init(parsing:))
      job.width = width
      job.structure = structure
      let result = try job.run(backend: try common.backend(), progress: common.progress())
      if common.json { return try printJSON(result) }
      if let groups = result.groups {
        print("channel group        channels      kept  removed")
        for g in groups {
          print(g.name.padding(toLength: 18, withPad: " ", startingAt: 0) + String(format: "%10d %9d  %6.2f%%", g.channels, g.kept, 100 * g.sparsity))
        }
      } else {
        print("layer            weights      kept  sparsity")
        for l in result.layers {
          print(l.name.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: "%10d %9d  %7.2f%%", l.weights, l.kept, 100 * l.sparsity))
        }
      }
      let what = result.structure == "filter" ? "filters" : "weights"
      print(
        String(
          format: "pruned %@ %@ %@ (target %.2f%%): %.2f%% of the weights are zero; fine-tuned %d epochs; saved %@", result.locality,
          result.criterion, what, 100 * result.targetSparsity, 100 * result.sparsity, result.finetune.count, result.checkpoint))
    }
  }
}
