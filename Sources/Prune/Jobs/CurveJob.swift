import Foundation
import GPU

/// `advprune curve`: robust accuracy as a function of eps for one or more checkpoints, from FMN's
/// per-point minimal distances on the same test points, as an SVG plot and a CSV table; with
/// `autoAttack`, AutoAttack's robust accuracy at the evaluation eps on top of each curve.
public struct CurveJob {
  public var inputs: [String]
  public var labels: [String]?
  public var dataset: DatasetName?
  public var dataDirectory: String?
  public var points: Int
  public var norm: PerturbationNorm
  /// The evaluation eps, marked on the plot (default: the data set's for L-inf).
  public var eps: Float?
  public var fmn: FMNConfig
  public var tune: FMNTuning?
  public var autoAttack: AutoAttackVersion?
  public var svgPath: String
  public var csvPath: String?
  public var maxEps: Double?
  public var batchSize = 200
  public var seed: UInt64
  public var architecture: Architecture?
  public var width: Double?
  /// Filter-pruned models run compacted unless `off`.
  public var compact = CompactMode.auto
  public var sparse = SparseMode.auto

  public init(inputs: [String], points: Int, norm: PerturbationNorm, svgPath: String, seed: UInt64) {
    self.inputs = inputs
    self.points = points
    self.norm = norm
    self.svgPath = svgPath
    self.seed = seed
    fmn = FMNConfig(norm: norm)
  }

  public struct Curve: Codable, Sendable {
    public let checkpoint: String
    public let label: String
    public let sparsity: Double
    public let minimumNorm: MinimumNormResult
    /// AutoAttack's robust accuracy at eps (with `autoAttack`).
    public let autoAttack: RobustnessResult?
  }

  public struct Result: Codable, Sendable {
    public let eps: Float?
    public let norm: String
    public let curves: [Curve]
    public let svg: String
    public let csv: String?
  }

  public func run(backend: Backend, progress: ProgressSink) throws -> Result {
    if inputs.isEmpty { throw UserError.badValue(name: "FILE", value: "", problem: "name at least one checkpoint") }
    if let labels, labels.count != inputs.count {
      throw UserError.badValue(name: "--label", value: labels.joined(separator: ","), problem: "give one label per checkpoint (\(inputs.count))")
    }
    if points < 1 { throw UserError.badValue(name: "--n", value: "\(points)", problem: "must be >= 1") }
    if let eps, !(eps >= 0 && eps.isFinite) { throw UserError.badValue(name: "--eps", value: "\(eps)", problem: "must be a finite number >= 0") }
    if eps == nil && norm != .linf {
      throw UserError.badValue(
        name: "--eps", value: "", problem: "name the evaluation eps of an \(norm.rawValue) curve (data sets' defaults are L-inf radii)")
    }
    if autoAttack != nil && norm == .l1 { throw UserError.badValue(name: "--norm", value: "l1", problem: "AutoAttack runs in linf or l2") }
    for path in [svgPath] + (csvPath.map { [$0] } ?? []) { try checkWritable(path) }
    var curves: [Curve] = []
    for (k, input) in inputs.enumerated() {
      let (loaded, test, data) = try loadForEvaluation(
        path: input, architecture: architecture, width: width, dataset: dataset, dataDirectory: dataDirectory, points: points, compact: compact,
        sparse: sparse,
        backend: backend)
      let model = loaded.model
      if points > test.count { throw UserError.badValue(name: "--n", value: "\(points)", problem: "the test set has only \(test.count) points") }
      let radius = eps ?? data.defaultEps
      let evaluation = RobustnessEvaluation(model: model, data: test, count: points, batchSize: batchSize, seed: seed)
      let sparsity = loaded.sparsity
      let label = labels?[k] ?? defaultLabel(input, sparsity: sparsity)
      if loaded.path != "masked" { progress.finish("\(label): \(loaded.summary)") }
      progress.finish("\(label): minimum-norm attack on \(points) points")
      let distances = try evaluation.minimumNorm(config: fmn, eps: radius, tune: tune, progress: progress)
      var ensemble: RobustnessResult?
      if let autoAttack {
        var plan = AttackPlan(kind: .autoattack, norm: norm, eps: radius)
        plan.version = autoAttack
        try plan.validate(classes: test.classCount, pointChannels: test.channels)
        let attacks = plan.attacks(backend: backend)
        ensemble = try evaluation.run(attacks: attacks, description: plan.description(of: attacks), progress: progress)
      }
      curves.append(Curve(checkpoint: input, label: label, sparsity: sparsity, minimumNorm: distances, autoAttack: ensemble))
    }
    let plotted = curves.map { RobustnessCurve(label: $0.label, distances: $0.minimumNorm.distances.map(Double.init), norm: norm.rawValue) }
    let markers = curves.compactMap { c in c.autoAttack.map { CurveMarker(label: c.label, eps: Double($0.eps), accuracy: $0.robustAccuracy) } }
    let markedEps = eps ?? curves.first.map { $0.minimumNorm.eps }
    let title =
      "Robust accuracy vs \(norm == .linf ? "L∞" : norm.rawValue.uppercased()) perturbation (FMN\(tune == nil ? "" : ", tuned"), \(points) points)"
    let svg = RobustnessCurvePlot.svg(curves: plotted, evaluationEps: markedEps.map(Double.init), markers: markers, maxEps: maxEps, title: title)
    try writeAtomically(Data(svg.utf8), to: svgPath)
    if let csvPath {
      let grid = RobustnessCurvePlot.epsGrid(curves: plotted, evaluationEps: markedEps.map(Double.init), maxEps: maxEps)
      try writeAtomically(Data(RobustnessCurvePlot.csv(curves: plotted, grid: grid).utf8), to: csvPath)
    }
    return Result(eps: markedEps, norm: norm.rawValue, curves: curves, svg: svgPath, csv: csvPath)
  }

  func defaultLabel(_ path: String, sparsity: Double) -> String {
    let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    return sparsity > 0 ? String(format: "%@ (%.0f %% sparse)", name, 100 * sparsity) : name
  }
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
func writeAtomically(_ data: Data, to path: String) throws {
  do {
    try data.write(to: URL(fileURLWithPath: path), options: .atomic)
  } catch {
    throw UserError.cannotWrite(path: path, problem: error.localizedDescription)
  }
}
