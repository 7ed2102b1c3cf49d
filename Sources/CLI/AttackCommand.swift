import ArgumentParser
import Foundation
import GPU
import Prune

extension AttackKind: ExpressibleByArgument {}
extension AutoAttackVersion: ExpressibleByArgument {}
extension AttackLoss: ExpressibleByArgument {}

struct Attack: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Clean and robust accuracy of a checkpoint on the first N test images under an attack, AutoAttack, or FMN.",
    discussion: """
      A point is robust only if it is classified correctly and every attack of the evaluation fails on it; every \
      adversarial point an attack claims is checked (inside the ball and [0, 1], misclassified when evaluated again). \
      --attack autoattack runs APGD-CE, APGD-T (9 targets), FAB-T (9 targets) and Square (5000 queries) in turn, \
      each on the points still robust (--version fast: the two APGDs). --attack fmn gives each point's minimal \
      adversarial distance (--tuned: pick FMN's step rule by a small search first) and the robust accuracy at --eps.
      """)

  @Argument(help: "Checkpoint (.safetensors).") var checkpoint: String
  @Option(help: "The attack, or autoattack (the ensemble) or fmn (minimal distances).") var attack: AttackKind = .pgd
  @Option(help: "Perturbation norm: linf, l2 (l1: fmn only).") var norm: PerturbationNorm = .linf
  @Option(help: "Attack radius in input space (default: the data set's, 0.1 for (Fashion-)MNIST, 8/255 for CIFAR-10 and SVHN).") var eps: Float?
  @Option(help: "AutoAttack version: standard or fast (APGD-CE + APGD-T).") var version: AutoAttackVersion = .standard
  @Option(help: "Iterations (default: pgd 40, apgd/fab 100, fmn 200).") var steps: Int?
  @Option(help: "Step size (pgd: default eps/10; fmn: initial step, default 1).") var alpha: Float?
  @Option(help: "Random restarts (pgd, apgd).") var restarts: Int = 1
  @Option(help: "Loss: ce, dlr or margin (pgd, fgsm, fmn).") var loss: AttackLoss?
  @Option(help: "Target classes of apgd-t and fab-t.") var targets: Int = 9
  @Option(help: "Query budget of square.") var queries: Int?
  @Flag(help: "fmn: choose loss, step rule and step size by a search on a tuning batch first.") var tuned = false
  @Flag(help: "Run the sanity checks (ATTACKS.md) after the evaluation; failures are loud warnings.") var checks = false
  @Option(help: "Write every point's outcome (clean, robust, attack that broke it, distance) as JSON here.") var perPoint: String?
  @Flag(
    help:
      "Time each step of the model (a residual block, a conv with its ReLU, a pooling, a linear layer) over the evaluation and print a table: time, share, MACs and GMAC/s per step (JSON: layerTimes). On OpenCL each step drains the queue, so the evaluation reads slower."
  ) var layerTimes = false
  @OptionGroup var testSet: TestSetOptions
  @OptionGroup var common: CommonOptions

  func run() throws {
    try reportingErrors {
      let data = try testSet.dataset.map(DatasetName.init(parsing:)) ?? Checkpoint.storedDataset(path: checkpoint)
      var plan = AttackPlan(kind: attack, norm: norm, eps: eps ?? data?.defaultEps ?? 0.1)
      plan.steps = steps
      plan.alpha = alpha
      plan.restarts = restarts
      plan.loss = loss
      plan.version = version
      plan.targets = targets
      plan.queries = queries
      if tuned && attack != .fmn { throw UserError.badValue(name: "--tuned", value: "true", problem: "only --attack fmn is tuned") }
      var job = AttackJob(
        input: checkpoint, dataset: data, dataDirectory: testSet.dataDir, points: testSet.n, plan: plan, batchSize: testSet.batchSize,
        seed: common.seed)
      job.architecture = try testSet.arch.map(Architecture.init(parsing:))
      job.width = testSet.width
      job.tune = tuned ? FMNTuning() : nil
      job.perPointPath = perPoint
      job.checks = checks
      job.compact = testSet.compact
      job.sparse = testSet.sparse
      job.layerTimes = layerTimes
      let result = try job.run(backend: try common.backend(), progress: common.progress())
      let failed = result.checks?.filter { !$0.passed } ?? []
      for check in failed { printErr("advprune: WARNING: sanity check failed: \(check.name): \(check.detail)") }
      if common.json { return try printJSON(result) }
      let head = String(
        format: "%@ (%@, sparsity %.2f%%, %@ model)", result.checkpoint, result.architecture, 100 * result.sparsity, result.path)
      if let e = result.evaluation {
        print(
          String(
            format: "%@: clean %.2f%%  robust %.2f%%  on %d points  [%@]  %.1f s", head, 100 * e.cleanAccuracy, 100 * e.robustAccuracy, e.points,
            e.attack, e.seconds))
        if e.stages.count > 1 {
          for s in e.stages {
            print(String(format: "  after %-9@ robust %6.2f%%  (%d broken, %.1f s)", s.name, 100 * s.robustAccuracy, s.broken, s.seconds))
          }
        }
      }
      if let m = result.minimumNorm {
        let median = m.medianDistance.map { String(format: "%.4f", $0) } ?? "inf"
        print(
          String(
            format: "%@: clean %.2f%%  robust %.2f%% at %@ eps %g  median distance %@  (%d not fooled)  on %d points  [fmn %@]  %.1f s", head,
            100 * m.cleanAccuracy, 100 * m.robustAccuracy, m.norm, Double(m.eps), median, m.unbroken, m.points, m.config.summary, m.seconds))
      }
      if let rows = result.layerTimes {
        StepTimeTable.print(rows, passes: "forward: every pass, clean and verification included; backward: the input gradients")
      }
      if let checks = result.checks {
        print(
          "sanity checks: \(checks.count - failed.count) of \(checks.count) passed"
            + (failed.isEmpty ? "" : " — FAILED: " + failed.map(\.name).joined(separator: ", ")))
      }
    }
  }
}
