import ArgumentParser
import Foundation
import GPU
import Prune

struct PruneCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "prune",
    abstract: "Prune a checkpoint with a method of the taxonomy (or a free cell), then fine-tune it adversarially with the masks held.",
    discussion: """
      Named methods (--method): \(PruningMethods.names.joined(separator: ", ")). Without --method, the cell given by
      --criterion/--locality/--structure runs one-shot (criteria lwm, lamp, random).
      """)

  @Argument(help: "Trained checkpoint (.safetensors).") var checkpoint: String
  @Option(help: "A named method: lwm, lamp, random, hydra, harp, radmm (`advprune taxonomy` lists their cells).") var method: String?
  @Option(help: "What ranks the weights in a free cell: lwm (alias magnitude), lamp or random.") var criterion: String = "lwm"
  @Option(help: "local (same rate per layer) or global (one ranking across layers).") var locality: Locality?
  @Option(help: "unstructured (single weights), filters (alias filter, structured) or channels: whole conv channels.") var structure: Structure =
    .unstructured
  @Option(help: "Share to remove, in [0, 1): of the conv and linear weights (unstructured), of the conv channels (filters).") var sparsity: Double
  @Option(help: "Epochs of the method's own phase (HYDRA/HARP score training, R-ADMM); one-shot methods have none.") var pruneEpochs: Int?
  @Option(help: "Learning rate of that phase (default: the method's: 0.1 for scores, the fine-tuning rate for R-ADMM).") var pruneLr: Float?
  @Option(help: "HARP: weight gamma_0 of the compression penalty (default 1).") var gamma: String?
  @Option(help: "HARP: initial layer rates, lamp (default) or uniform.") var harpStart: String?
  @Option(help: "R-ADMM: initial rho of the proximal term (default 0.001; x1.3 per update).") var rho: String?
  @Option(help: "R-ADMM: steps between Z/U updates (default: a quarter epoch).") var admmPeriod: String?
  @Option(help: "Fine-tuning epochs (0: prune only).") var finetuneEpochs: Int = 1
  @Option(help: "Data set (default: the checkpoint's).") var dataset: String?
  @Option(help: "Directory of the data set's files.") var dataDir: String?
  @Option(help: "Fine-tune on the first N training images only.") var trainLimit: Int?
  @Option(help: "Output checkpoint (.safetensors).") var out: String
  @Flag(help: "Continue the run stored in --out (same method and recipe): fine-tuning goes on from its last checkpoint.") var resume = false
  @Option(help: "Also checkpoint every N fine-tuning steps inside an epoch (SIGINT/SIGTERM always checkpoint the step they interrupt).")
  var checkpointEvery: Int?
  @OptionGroup var recipe: RecipeOptions
  @Option(help: "Architecture of a checkpoint saved from PyTorch (ours carry it in their metadata).") var arch: String?
  @Option(help: "Channel multiplier of such a checkpoint.") var width: Double?
  @OptionGroup var common: CommonOptions

  var methodOptions: [String: String] {
    let given = ["gamma": gamma, "harp-start": harpStart, "rho": rho, "admm-period": admmPeriod]
    return given.compactMapValues { $0 }
  }

  func run() throws {
    try reportingErrors(resume: "the same command with --resume") {
      GracefulStop.install()
      let data = try dataset.map(DatasetName.init(parsing:))
      try PruneJob.check(sparsity: sparsity)
      let defaults = Recipe.defaults(for: .smallcnn, on: try data ?? Checkpoint.storedDataset(path: checkpoint) ?? .fashionMNIST)
      let chosen = try PruningMethods.make(
        method: method, criterion: try Criterion(parsing: criterion), locality: locality, structure: structure, options: methodOptions)
      let finetune = try recipe.config(defaults, epochs: finetuneEpochs, learningRate: defaults.finetuneLearningRate, seed: common.seed)
      var job = PruneJob(
        input: checkpoint, method: chosen, sparsity: sparsity, dataset: data, dataDirectory: dataDir, trainLimit: trainLimit, finetune: finetune,
        output: out)
      if chosen.trainsWhilePruning {
        // --lr sets every rate of the run, as it always did; then --prune-lr, then the method's default.
        job.pruneTraining = PruningMethods.phase(
          of: chosen, finetune: finetune, epochs: pruneEpochs ?? PruningMethods.defaultPruneEpochs, learningRate: recipe.lr ?? pruneLr)
      } else if let epochs = pruneEpochs, epochs > 0 {
        throw UserError.badValue(name: "--prune-epochs", value: "\(epochs)", problem: "\(chosen.name) prunes in one shot and has no phase to train")
      }
      job.architecture = try arch.map(Architecture.init(parsing:))
      job.width = width
      job.resume = resume
      job.checkpointEvery = checkpointEvery
      let result = try job.run(backend: try common.backend(), progress: common.progress())
      if common.json { return try printJSON(result) }
      if let groups = result.groups {
        print("channel group        channels      kept  removed")
        for g in groups {
          print(g.name.padding(toLength: 18, withPad: " ", startingAt: 0) + String(format: "%10d %9d  %6.2f%%", g.channels, g.kept, 100 * g.sparsity))
        }
      } else {
        printLayerTable(result.layers)
      }
      for (key, value) in result.details.sorted(by: { $0.key < $1.key }) { print("\(result.method) \(key): \(value)") }
      let what = result.structure == "unstructured" ? "weights" : result.structure
      print(
        String(
          format: "pruned %@ with %@ (%@, target %.2f%%): %.2f%% of the weights are zero; %d method epochs, fine-tuned %d epochs; %.0f s; saved %@",
          what, result.method, result.cell, 100 * result.targetSparsity, 100 * result.sparsity, result.pruneEpochs.count, result.finetune.count,
          result.seconds, result.checkpoint))
    }
  }
}

/// The per-layer sparsity table prune and train print.
func printLayerTable(_ layers: [LayerSparsity]) {
  print("layer            weights      kept  sparsity")
  for l in layers {
    print(l.name.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: "%10d %9d  %7.2f%%", l.weights, l.kept, 100 * l.sparsity))
  }
}
