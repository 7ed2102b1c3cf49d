import Foundation
import GPU

/// A method of a grid cell: a named method (`prune --method`, `train --method`) or a free cell.
public struct MethodSpec: Codable, Hashable, Sendable {
  public var name: String?
  public var criterion: String
  public var locality: String?
  public var structure: String
  public var options: [String: String]
  /// Shown in the report instead of the generated title; not part of a cell's identity.
  public var label: String?

  /// Methods of `train --method` prune while training from scratch; the rest prune a trained model.
  public var trainsFromScratch: Bool { name.map(TrainingMethods.names.contains) ?? false }

  /// "hydra", "lwm global", "gmp filters", "lamp", or the label.
  public var title: String {
    if let label { return label }
    var parts = [name ?? criterion]
    if let locality, name == nil || ["lwm", "magnitude", "random", "gmp"].contains(name!) { parts.append(locality) }
    if structure != Structure.unstructured.rawValue { parts.append(structure) }
    return parts.joined(separator: " ")
  }

  func parsedStructure() throws -> Structure { try Structure(parsing: structure) }
  func parsedLocality() -> Locality? { locality.flatMap(Locality.init(rawValue:)) }

  func pruning() throws -> PruningMethod {
    try PruningMethods.make(
      method: name, criterion: try Criterion(parsing: criterion), locality: parsedLocality(), structure: try parsedStructure(), options: options)
  }

  func training(sparsity: Double) throws -> TrainingMethod {
    try TrainingMethods.make(method: name ?? "", sparsity: sparsity, locality: parsedLocality(), structure: try parsedStructure(), options: options)
  }

  /// Builds the method once (refusing bad options and cells) and returns its taxonomy cell.
  @discardableResult
  func check() throws -> TaxonomyCell {
    trainsFromScratch ? try training(sparsity: 0.5).cell : try pruning().cell
  }
}

/// A training recipe with every value resolved (the data set's defaults filled in), so that a
/// cell's identity changes exactly when what it trains with changes.
public struct RecipeSpec: Codable, Hashable, Sendable {
  public var epochs: Int
  public var adv: String
  public var beta: Double?
  public var eps: Double
  public var alpha: Double
  public var steps: Int
  public var norm: String
  public var lr: Double
  public var batchSize: Int
  public var momentum: Double
  public var weightDecay: Double
  public var schedule: String

  init(_ o: BenchConfig.RecipeOverrides, defaults: Recipe, epochs: Int, lr: Double) {
    self.epochs = epochs
    adv = o.adv
    beta = o.adv == "trades" ? o.beta : nil
    eps = o.eps ?? decimal(defaults.attack.eps)
    alpha = o.alpha ?? (o.eps.map { $0 / 4 } ?? decimal(defaults.attack.alpha))
    steps = o.steps ?? defaults.attack.steps
    norm = PerturbationNorm.linf.rawValue
    self.lr = lr
    batchSize = o.batchSize ?? defaults.batchSize
    momentum = o.momentum ?? decimal(defaults.sgd.momentum)
    weightDecay = o.weightDecay ?? decimal(defaults.sgd.weightDecay)
    schedule = o.schedule.rawValue
  }

  public func config(seed: UInt64) -> TrainConfig {
    let attack = PGDConfig(eps: Float(eps), alpha: Float(alpha), steps: steps, norm: PerturbationNorm(rawValue: norm) ?? .linf)
    return TrainConfig(
      epochs: epochs, batchSize: batchSize,
      sgd: SGDHyper(learningRate: Float(lr), momentum: Float(momentum), weightDecay: Float(weightDecay)),
      attack: adv == "none" ? nil : attack, seed: seed, schedule: LRSchedule(rawValue: schedule) ?? .constant,
      tradesBeta: beta.map(Float.init))
  }
}

/// What a cell makes: the dense model, a pruned one (after training), or one pruned while training.
public enum CellKind: String, Codable, Sendable {
  case dense
  case after
  case during
}

/// Everything that determines a cell's model; its canonical JSON's hash is the cell's id.
public struct CellSpec: Codable, Hashable, Sendable {
  public var kind: CellKind
  public var dataset: String
  public var architecture: String
  public var width: Double
  public var trainLimit: Int?
  public var seed: UInt64
  /// Dense and during: the training recipe; after: the fine-tuning recipe.
  public var recipe: RecipeSpec
  public var method: MethodSpec?
  public var sparsity: Double?
  /// After: the method's own phase.
  public var pruneEpochs: Int?
  public var pruneLR: Double?
  /// After: the dense cell it prunes.
  public var parent: String?

  public var canonicalJSON: String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(data: try! encoder.encode(self), encoding: .utf8)!
  }

  /// A stable 64-bit FNV-1a hash of the canonical JSON, as 16 hex digits.
  public var id: String { String(format: "%016llx", fnv1a64(canonicalJSON)) }
}

/// One evaluation of a cell's model; `key` names it in the results (and changes with any setting).
public struct EvaluationSpec: Codable, Hashable, Sendable {
  public var attack: String
  public var version: String?
  public var norm: String
  public var eps: Double
  public var steps: Int
  public var points: Int
  public var batchSize: Int
  public var seed: UInt64
  public var checks: Bool
  /// Targets of the targeted attacks (APGD-T, FAB-T, in AutoAttack too); nil: AutoAttack's 9.
  public var targets: Int? = nil

  public var key: String {
    let name = version.map { "\(attack)-\($0)" } ?? "\(attack)-\(steps)"
    return "\(name) \(norm) eps \(eps) n \(points) seed \(seed)" + (targets.map { " targets \($0)" } ?? "") + (checks ? " checked" : "")
  }

  public var plan: AttackPlan {
    var plan = AttackPlan(kind: AttackKind(rawValue: attack) ?? .pgd, norm: PerturbationNorm(rawValue: norm) ?? .linf, eps: Float(eps))
    if plan.kind == .square { plan.queries = steps } else if plan.kind != .fgsm { plan.steps = steps }
    if let version { plan.version = AutoAttackVersion(rawValue: version) ?? .standard }
    if let targets { plan.targets = targets }
    return plan
  }
}

/// A cell of the grid with what to evaluate and how to show it.
public struct BenchCell: Sendable {
  public let spec: CellSpec
  public let id: String
  public let evaluations: [EvaluationSpec]
  /// The taxonomy cell of its method ("A/U/G/lwm"; "dense" for the dense model).
  public let taxonomy: TaxonomyCell?
  /// Where its `[[method]]` is in the config, for errors.
  public let line: Int?
  /// The `[[method]]`'s label: shown, but not part of the cell's identity (its spec has none).
  public var label: String? = nil

  public var title: String { label ?? spec.method?.title ?? "dense" }
}

/// The grid's cells in the order they run: each dense model before the cells that prune it.
public struct BenchPlan: Sendable {
  public let config: BenchConfig
  public let cells: [BenchCell]

  public init(_ config: BenchConfig) throws {
    self.config = config
    var cells: [BenchCell] = []
    var seen: Set<String> = []
    func add(_ cell: BenchCell) {
      if seen.insert(cell.id).inserted { cells.append(cell) }
    }
    for dataset in config.datasets {
      for architecture in config.architectures {
        let defaults = Recipe.defaults(for: architecture, on: dataset)
        for seed in config.seeds {
          let dense = CellSpec(
            kind: .dense, dataset: dataset.rawValue, architecture: architecture.rawValue, width: config.width, trainLimit: config.trainLimit,
            seed: seed,
            recipe: RecipeSpec(
              config.train, defaults: defaults, epochs: config.train.epochs, lr: config.train.lr ?? decimal(defaults.sgd.learningRate)))
          add(Self.cell(dense, config: config, dataset: dataset, taxonomy: nil, line: nil))
          for entry in config.methods {
            var method = entry.spec
            method.label = nil
            let taxonomy = try entry.spec.check()
            for sparsity in entry.sparsities ?? config.sparsities {
              var spec = dense
              spec.method = method
              spec.sparsity = sparsity
              if method.trainsFromScratch {
                spec.kind = .during
              } else {
                spec.kind = .after
                spec.parent = dense.id
                spec.recipe = RecipeSpec(
                  config.train, defaults: defaults, epochs: config.finetuneEpochs, lr: config.finetuneLR ?? decimal(defaults.finetuneLearningRate))
                let trainsWhilePruning = try method.pruning().trainsWhilePruning
                spec.pruneEpochs = trainsWhilePruning ? config.pruneEpochs : nil
                spec.pruneLR = trainsWhilePruning ? config.pruneLR : nil
              }
              var cell = Self.cell(spec, config: config, dataset: dataset, taxonomy: taxonomy, line: entry.line)
              cell.label = entry.spec.label
              add(cell)
            }
          }
        }
      }
    }
    self.cells = cells
  }

  static func cell(_ spec: CellSpec, config: BenchConfig, dataset: DatasetName, taxonomy: TaxonomyCell?, line: Int?) -> BenchCell {
    let e = config.evaluation
    let eps = e.eps ?? decimal(dataset.defaultEps)
    func evaluation(_ attack: String, version: String?, steps: Int, checks: Bool) -> EvaluationSpec {
      let targeted = ["autoattack", AttackKind.apgdT.rawValue, AttackKind.fabT.rawValue].contains(attack)
      return EvaluationSpec(
        attack: attack, version: version, norm: e.norm.rawValue, eps: eps, steps: steps, points: e.points, batchSize: e.batchSize, seed: spec.seed,
        checks: checks, targets: targeted ? e.targets : nil)
    }
    var evaluations: [EvaluationSpec] = []
    if e.pgdSteps > 0 { evaluations.append(evaluation("pgd", version: nil, steps: e.pgdSteps, checks: e.checks && e.autoattack == nil)) }
    if let aa = e.autoattack { evaluations.append(evaluation("autoattack", version: aa.rawValue, steps: 100, checks: e.checks)) }
    if e.curveSteps > 0 { evaluations.append(evaluation("fmn", version: nil, steps: e.curveSteps, checks: false)) }
    for kind in e.attacks {
      // Each at its reference's budget: FGSM one step, APGD and FAB 100 iterations, Square 5000 queries.
      let budget = kind == .fgsm ? 1 : kind == .square ? 5000 : 100
      evaluations.append(evaluation(kind.rawValue, version: nil, steps: budget, checks: false))
    }
    return BenchCell(spec: spec, id: spec.id, evaluations: evaluations, taxonomy: taxonomy, line: line)
  }

  /// The cells of shard `index` of `count` (1-based), chosen by the cell id so that a shard's share
  /// does not change when other cells are added to the grid.
  public func shard(_ index: Int, of count: Int) -> [BenchCell] {
    cells.filter { Int(UInt64($0.id, radix: 16)! % UInt64(count)) == index - 1 }
  }
}

/// `I/N` of `--shard`, 1-based.
public struct Shard: Sendable, CustomStringConvertible {
  public let index: Int
  public let count: Int

  public init(parsing text: String) throws {
    let parts = text.split(separator: "/").map { Int($0) }
    guard parts.count == 2, let i = parts[0], let n = parts[1], n >= 1, i >= 1, i <= n else {
      throw UserError.badValue(name: "--shard", value: text, problem: "expected I/N with 1 <= I <= N, e.g. 2/8")
    }
    index = i
    count = n
  }

  public var description: String { "\(index)/\(count)" }
}

/// A Float as the Double of its shortest decimal form (0.1f -> 0.1, not 0.10000000149), so that
/// identities and keys read as the user wrote them.
func decimal(_ value: Float) -> Double { Double("\(value)") ?? Double(value) }
