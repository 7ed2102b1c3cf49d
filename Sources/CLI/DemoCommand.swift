import ArgumentParser
import Foundation
import GPU
import Prune

struct Demo: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "The embedded default job: PGD-AT SmallCNN on Fashion-MNIST, prune 90% (global magnitude), fine-tune, evaluate.",
    discussion: "Defaults are the quick subset (20,000 training images, 2 epochs + 1 fine-tuning epoch). --full trains on all 60,000.")

  @Option(help: "Directory of the Fashion-MNIST files.") var dataDir: String?
  @Option(help: "Training images (the first N).") var trainLimit: Int = DemoJob.quick.trainLimit!
  @Flag(help: "Use the whole training set (the issue's full-size quality bar).") var full = false
  @Option(help: "Adversarial training epochs.") var epochs: Int = DemoJob.quick.epochs
  @Option(help: "Fine-tuning epochs after pruning.") var finetuneEpochs: Int = DemoJob.quick.finetuneEpochs
  @Option(help: "Target sparsity.") var sparsity: Double = DemoJob.quick.sparsity
  @Option(name: [.customLong("n"), .customLong("test-limit")], help: "Test points for the PGD-40 evaluation.") var n: Int = DemoJob.quick.evalPoints
  @Option(help: "Where checkpoints go.") var workDir: String = DemoJob.quick.workDirectory
  @OptionGroup var common: CommonOptions

  func run() throws {
    try reportingErrors {
      let job = DemoJob(
        dataDirectory: dataDir, trainLimit: full ? nil : trainLimit, epochs: epochs, finetuneEpochs: finetuneEpochs, sparsity: sparsity,
        evalPoints: n, workDirectory: workDir, seed: common.seed)
      let r = try job.run(backend: try common.backend(), progress: common.progress())
      if common.json { return try printJSON(r) }
      print(
        """

        advprune demo — SmallCNN, Fashion-MNIST, PGD-AT eps 0.1 (10 x 0.025), \(r.train.trainImages) train images x \(r.train.epochs.count) epochs
        backend: \(r.backend)
        model                                   sparsity    clean   PGD-40 (eps 0.1, step 0.01)
        """)
      for (name, e) in [("dense (PGD-AT)", r.dense), ("pruned \(r.prune.locality) \(r.prune.criterion) + fine-tune", r.pruned)] {
        guard let evaluation = e.evaluation else { continue }
        print(
          name.padding(toLength: 40, withPad: " ", startingAt: 0)
            + String(format: "%7.2f%%  %6.2f%%  %6.2f%%", 100 * e.sparsity, 100 * evaluation.cleanAccuracy, 100 * evaluation.robustAccuracy))
      }
      print(
        String(
          format: "evaluated on the first %d test images; adversarial training %.0f images/s; total %.0f s", n, r.trainImagesPerSecond, r.seconds))
      print("checkpoints: \(r.train.checkpoint), \(r.prune.checkpoint)")
    }
  }
}
