import ArgumentParser
import Foundation
import GPU
import Prune

struct Attack: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Clean and robust accuracy of a checkpoint under PGD on the first N test images.",
    discussion: "A point is robust only if it is classified correctly and no PGD iterate of any restart misclassifies it.")

  @Argument(help: "Checkpoint (.safetensors).") var checkpoint: String
  @Option(help: "Attack: pgd.") var attack: String = "pgd"
  @Option(help: "Attack radius in input space (default: the data set's, 0.1 for (Fashion-)MNIST, 8/255 for CIFAR-10 and SVHN).") var eps: Float?
  @Option(help: "Step size (default eps/10).") var alpha: Float?
  @Option(help: "Iterations.") var steps: Int = 40
  @Option(help: "Random restarts.") var restarts: Int = 1
  @Option(help: "Perturbation norm: linf or l2.") var norm: PerturbationNorm = .linf
  @Option(name: [.customLong("n"), .customLong("test-limit")], help: "Number of test points (the first N).") var n: Int = 1000
  @Option(help: "Batch size.") var batchSize: Int = 200
  @Option(help: "Data set (default: the checkpoint's).") var dataset: String?
  @Option(help: "Directory of the data set's files.") var dataDir: String?
  @Option(help: "Architecture of a checkpoint saved from PyTorch (ours carry it in their metadata).") var arch: String?
  @Option(help: "Channel multiplier of such a checkpoint.") var width: Double?
  @OptionGroup var common: CommonOptions

  func run() throws {
    try reportingErrors {
      guard attack.lowercased() == "pgd" else {
        throw UserError.badValue(name: "--attack", value: attack, problem: "unknown; known: pgd")
      }
      let data = try dataset.map(DatasetName.init(parsing:)) ?? Checkpoint.storedDataset(path: checkpoint)
      let radius = eps ?? data?.defaultEps ?? 0.1
      let config = PGDConfig(eps: radius, alpha: alpha ?? radius / 10, steps: steps, norm: norm, randomStart: true, restarts: restarts)
      var job = AttackJob(
        input: checkpoint, dataset: data, dataDirectory: dataDir, points: n, attack: config,
        batchSize: batchSize, seed: common.seed)
      job.architecture = try arch.map(Architecture.init(parsing:))
      job.width = width
      let result = try job.run(backend: try common.backend(), progress: common.progress())
      if common.json { return try printJSON(result) }
      let e = result.evaluation
      print(String(format: "%@ (%@, sparsity %.2f%%): clean %.2f%%  robust %.2f%%  on %d points  [%@]  %.1f s", result.checkpoint, result.architecture, 100 * result.sparsity, 100 * e.cleanAccuracy, 100 * e.robustAccuracy, e.points, e.attack, e.seconds))
    }
  }
}
