import ArgumentParser
import Foundation
import GPU
import Prune

struct Curve: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Robustness curves: robust accuracy as a function of eps from FMN's per-point minimal distances.",
    discussion: """
      Every checkpoint is attacked on the same first N test points (misclassified points have distance 0, points FMN \
      cannot fool +inf). The plot marks the evaluation eps; --autoattack adds AutoAttack's robust accuracy there on \
      top of each curve. FMN is tuned first (a small search over loss, step rule and step size on 64 points) unless \
      --no-tune.
      """)

  @Argument(help: "Checkpoints (.safetensors), one curve each.") var checkpoints: [String]
  @Option(help: "Perturbation norm: linf, l2 or l1.") var norm: PerturbationNorm = .linf
  @Option(help: "Evaluation eps to mark (default: the data set's L-inf eps; required for l2 and l1).") var eps: Float?
  @Option(help: "FMN steps.") var steps: Int = 200
  @Flag(help: "Run FMN with its default step rule instead of tuning it first.") var noTune = false
  @Option(help: "Run AutoAttack (standard or fast) at eps and mark it on each curve.") var autoattack: AutoAttackVersion?
  @Option(help: "Curve labels, one per checkpoint (default: file name and sparsity).") var label: [String] = []
  @Option(help: "Right end of the eps axis (default: just past the largest finite distance).") var maxEps: Double?
  @Option(help: "Where to write the SVG plot.") var out: String = "curve.svg"
  @Option(help: "Also write the curves as CSV (one row per eps).") var csv: String?
  @OptionGroup var testSet: TestSetOptions
  @OptionGroup var common: CommonOptions

  func run() throws {
    try reportingErrors {
      if steps < 1 { throw UserError.badValue(name: "--steps", value: "\(steps)", problem: "must be >= 1") }
      var job = CurveJob(inputs: checkpoints, points: testSet.n, norm: norm, svgPath: out, seed: common.seed)
      job.labels = label.isEmpty ? nil : label
      job.dataset = try testSet.dataset.map(DatasetName.init(parsing:))
      job.dataDirectory = testSet.dataDir
      job.eps = eps
      job.fmn.steps = steps
      job.tune = noTune ? nil : FMNTuning()
      job.autoAttack = autoattack
      job.csvPath = csv
      job.maxEps = maxEps
      job.compact = testSet.compact
      job.sparse = testSet.sparse
      job.batchSize = testSet.batchSize
      job.architecture = try testSet.arch.map(Architecture.init(parsing:))
      job.width = testSet.width
      let result = try job.run(backend: try common.backend(), progress: common.progress())
      if common.json { return try printJSON(result) }
      print("curve".padding(toLength: 32, withPad: " ", startingAt: 0) + "   clean   median dist   FMN@eps   AutoAttack@eps")
      for c in result.curves {
        let m = c.minimumNorm
        print(
          c.label.padding(toLength: 32, withPad: " ", startingAt: 0)
            + String(
              format: "  %6.2f%%  %12@  %7.2f%%  %@", 100 * m.cleanAccuracy, m.medianDistance.map { String(format: "%.4f", $0) } ?? "inf",
              100 * m.robustAccuracy,
              c.autoAttack.map { String(format: "%6.2f%%", 100 * $0.robustAccuracy) } ?? "-"))
      }
      print("wrote \(result.svg)" + (result.csv.map { " and \($0)" } ?? ""))
    }
  }
}
