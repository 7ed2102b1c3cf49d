import Foundation
import GPU

/// A benchmark grid as its TOML file states it (`bench/*.toml`; README "Benchmark"). Every key
/// is checked: an unknown key or a bad value is refused with the file, line and key.
public struct BenchConfig: Sendable {
  public let path: String
  public var name: String
  public var seeds: [UInt64]
  public var datasets: [DatasetName]
  /// Where a data set's files are (default: `DatasetName.defaultDirectory`).
  public var dataDirectories: [DatasetName: String]
  public var trainLimit: Int?
  public var architectures: [Architecture]
  public var width: Double
  /// The dense recipe (pretrained models, and the methods that prune while training).
  public var train: RecipeOverrides
  public var sparsities: [Double]
  public var pruneEpochs: Int
  public var pruneLR: Double?
  public var finetuneEpochs: Int
  public var finetuneLR: Double?
  public var methods: [MethodEntry]
  public var evaluation: EvaluationSettings

  /// What the user changed of the data set's recipe (`Recipe.defaults`); nil keeps the default.
  public struct RecipeOverrides: Sendable {
    public var epochs: Int
    public var adv: String
    public var beta: Double
    public var eps: Double?
    public var alpha: Double?
    public var steps: Int?
    public var lr: Double?
    public var batchSize: Int?
    public var momentum: Double?
    public var weightDecay: Double?
    public var schedule: LRSchedule
  }

  /// One `[[method]]`: a named method of `prune` or `train`, or a free cell (no name).
  public struct MethodEntry: Sendable {
    public var spec: MethodSpec
    /// Sparsities of this method (default: the grid's).
    public var sparsities: [Double]?
    /// Where it stands in the file, for errors found when it runs.
    public var line: Int?
  }

  public struct EvaluationSettings: Sendable {
    public var points: Int
    public var batchSize: Int
    /// PGD steps of the PGD evaluation (0: none).
    public var pgdSteps: Int
    public var autoattack: AutoAttackVersion?
    /// FMN steps of the minimum-norm curve (0: no curve).
    public var curveSteps: Int
    /// Single attacks evaluated on their own as well (fgsm, apgd-ce, apgd-dlr, apgd-t, fab-t, square).
    public var attacks: [AttackKind]
    public var checks: Bool
    public var eps: Double?
    public var norm: PerturbationNorm
    /// Targets of APGD-T and FAB-T (nil: AutoAttack's 9); fewer make a CPU grid affordable.
    public var targets: Int?
  }

  public static func load(path: String) throws -> BenchConfig {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw UserError.badConfig(path: path, line: nil, key: "file", problem: "cannot read it")
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw UserError.badConfig(path: path, line: nil, key: "file", problem: "not UTF-8 text")
    }
    return try parse(text, path: path)
  }

  public static func parse(_ text: String, path: String) throws -> BenchConfig {
    let table: TOMLTable
    do {
      table = try TOMLReader.parse(text)
    } catch let error as TOMLSyntaxError {
      throw UserError.badConfig(path: path, line: error.line, key: "syntax", problem: error.message)
    }
    let top = TOMLSection(table: table, path: path, name: "")
    let name = try top.string("name") ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    let seeds = try top.ints("seeds")?.map(UInt64.init) ?? [0]
    if seeds.isEmpty { throw top.error("seeds", "needs at least one seed") }

    let data = try top.section("data") ?? TOMLSection(table: TOMLTable(line: 1), path: path, name: "data")
    let datasetNames = try data.strings("datasets") ?? ["fashion-mnist"]
    let datasets = try datasetNames.map { try data.parsed("datasets", $0, DatasetName.init(parsing:)) }
    var directories: [DatasetName: String] = [:]
    if let dirs = try data.section("directories") {
      for key in dirs.table.keys {
        let set = try dirs.parsed(key, key, DatasetName.init(parsing:))
        directories[set] = try dirs.string(key)
      }
    }
    let trainLimit = try data.int("train_limit", minimum: 1)
    try data.finish(known: ["datasets", "directories", "train_limit"])

    let train = try top.section("train") ?? TOMLSection(table: TOMLTable(line: 1), path: path, name: "train")
    let architectures = try (train.strings("architectures") ?? ["smallcnn"]).map {
      try train.parsed("architectures", $0, Architecture.init(parsing:))
    }
    let width = try train.double("width") ?? 1
    if !(width > 0) { throw train.error("width", "must be > 0") }
    let adv = try train.string("adv") ?? "pgd"
    guard ["pgd", "trades", "none"].contains(adv) else { throw train.error("adv", "'\(adv)': expected pgd, trades or none") }
    let schedule = try train.string("lr_schedule").map { text in
      guard let s = LRSchedule(rawValue: text) else {
        throw train.error("lr_schedule", "'\(text)': expected \(LRSchedule.allCases.map(\.rawValue).joined(separator: ", "))")
      }
      return s
    }
    let recipe = RecipeOverrides(
      epochs: try train.int("epochs", minimum: 1) ?? 2, adv: adv, beta: try train.double("beta") ?? 6, eps: try positive(train, "eps"),
      alpha: try positive(train, "alpha"), steps: try train.int("steps", minimum: 1), lr: try positive(train, "lr"),
      batchSize: try train.int("batch_size", minimum: 1), momentum: try train.double("momentum"), weightDecay: try train.double("weight_decay"),
      schedule: schedule ?? .constant)
    try train.finish(known: [
      "architectures", "width", "epochs", "adv", "beta", "eps", "alpha", "steps", "lr", "batch_size", "momentum", "weight_decay", "lr_schedule",
    ])

    let prune = try top.section("prune") ?? TOMLSection(table: TOMLTable(line: 1), path: path, name: "prune")
    let sparsities = try prune.doubles("sparsities") ?? [0.9, 0.95, 0.99]
    for s in sparsities where !(s > 0 && s < 1) { throw prune.error("sparsities", "\(s) is not in (0, 1)") }
    let pruneEpochs = try prune.int("prune_epochs", minimum: 0) ?? PruningMethods.defaultPruneEpochs
    let pruneLR = try positive(prune, "prune_lr")
    let finetuneEpochs = try prune.int("finetune_epochs", minimum: 0) ?? 1
    let finetuneLR = try positive(prune, "finetune_lr")
    try prune.finish(known: ["sparsities", "prune_epochs", "prune_lr", "finetune_epochs", "finetune_lr"])

    let methods = try top.sections("method").map { try methodEntry($0) }
    if methods.isEmpty {
      throw UserError.badConfig(path: path, line: nil, key: "method", problem: "no [[method]] tables: the grid has no methods to compare")
    }

    let evaluate = try top.section("evaluate") ?? TOMLSection(table: TOMLTable(line: 1), path: path, name: "evaluate")
    let aa = try evaluate.string("autoattack") ?? "fast"
    guard aa == "none" || AutoAttackVersion(rawValue: aa) != nil else {
      throw evaluate.error("autoattack", "'\(aa)': expected standard, fast or none")
    }
    let norm = try evaluate.string("norm").map { text in
      guard let n = PerturbationNorm(rawValue: text), n != .l1 else { throw evaluate.error("norm", "'\(text)': expected linf or l2") }
      return n
    }
    let single: [AttackKind] = [.fgsm, .apgdCE, .apgdDLR, .apgdT, .fabT, .square]
    let attacks = try (evaluate.strings("attacks") ?? []).map { name in
      guard let kind = AttackKind(rawValue: name), single.contains(kind) else {
        throw evaluate.error(
          "attacks", "'\(name)': expected \(single.map(\.rawValue).joined(separator: ", ")) (pgd, autoattack and fmn have keys of their own)")
      }
      return kind
    }
    let evaluation = EvaluationSettings(
      points: try evaluate.int("points", minimum: 1) ?? 1000, batchSize: try evaluate.int("batch_size", minimum: 1) ?? 200,
      pgdSteps: try evaluate.int("pgd_steps", minimum: 0) ?? 40, autoattack: AutoAttackVersion(rawValue: aa),
      curveSteps: try evaluate.int("curve_steps", minimum: 0) ?? 0, attacks: attacks, checks: try evaluate.bool("checks") ?? false,
      eps: try positive(evaluate, "eps"),
      norm: norm ?? .linf, targets: try evaluate.int("targets", minimum: 1))
    if let targets = evaluation.targets, targets > 9 { throw evaluate.error("targets", "\(targets): at most 9 (the data sets have 10 classes)") }
    if evaluation.pgdSteps == 0 && evaluation.autoattack == nil && evaluation.curveSteps == 0 {
      throw evaluate.error("pgd_steps", "no evaluation left: set pgd_steps, autoattack or curve_steps")
    }
    try evaluate.finish(known: ["points", "batch_size", "pgd_steps", "autoattack", "curve_steps", "attacks", "checks", "eps", "norm", "targets"])
    try top.finish(known: ["name", "seeds", "data", "train", "prune", "method", "evaluate"])

    return BenchConfig(
      path: path, name: name, seeds: seeds, datasets: datasets, dataDirectories: directories, trainLimit: trainLimit, architectures: architectures,
      width: width, train: recipe, sparsities: sparsities, pruneEpochs: pruneEpochs, pruneLR: pruneLR, finetuneEpochs: finetuneEpochs,
      finetuneLR: finetuneLR, methods: methods, evaluation: evaluation)
  }

  static func positive(_ section: TOMLSection, _ key: String) throws -> Double? {
    guard let v = try section.double(key) else { return nil }
    if !(v > 0) { throw section.error(key, "must be > 0, found \(v)") }
    return v
  }

  /// A `[[method]]` table, checked by building the method it names (options and cell included).
  static func methodEntry(_ section: TOMLSection) throws -> MethodEntry {
    let name = try section.string("name")?.lowercased()
    let criterion = try section.string("criterion")
    let locality = try section.string("locality").map { text in
      guard let l = Locality(rawValue: text) else { throw section.error("locality", "'\(text)': expected local or global") }
      return l
    }
    let structure = try section.string("structure").map { text in try section.parsed("structure", text, Structure.init(parsing:)) }
    let label = try section.string("label")
    let sparsities = try section.doubles("sparsities")
    for s in sparsities ?? [] where !(s > 0 && s < 1) { throw section.error("sparsities", "\(s) is not in (0, 1)") }
    let owners = PruningMethods.optionOwners.merging(TrainingMethods.optionOwners) { a, _ in a }
    var options: [String: String] = [:]
    for key in section.unreadKeys(allowing: ["name", "criterion", "locality", "structure", "label", "sparsities"]) {
      guard owners[key] != nil else { continue }
      options[key] = try section.scalarText(key)
    }
    if let name, !(PruningMethods.names + TrainingMethods.names + ["magnitude"]).contains(name) {
      throw section.error("name", "'\(name)': unknown; known: \((PruningMethods.names + TrainingMethods.names).joined(separator: ", "))")
    }
    if name != nil && criterion != nil { throw section.error("criterion", "a named method has its own criterion; leave out name for a free cell") }
    let spec = MethodSpec(
      name: name, criterion: criterion ?? "lwm", locality: locality?.rawValue, structure: (structure ?? .unstructured).rawValue,
      options: options, label: label)
    do {
      _ = try spec.check()
    } catch UserError.badValue(let option, let value, let problem) {
      let key = option.hasPrefix("--") ? String(option.dropFirst(2)) : option
      throw section.error(section.has(key) ? key : "name", "'\(value)': \(problem)")
    }
    let known = ["name", "criterion", "locality", "structure", "label", "sparsities"] + owners.keys
    try section.finish(known: known)
    return MethodEntry(spec: spec, sparsities: sparsities, line: section.table.line)
  }
}
