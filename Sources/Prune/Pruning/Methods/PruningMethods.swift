/// The named methods `advprune prune --method` runs, and the free cells it composes.
public enum PruningMethods {
  public static let names = ["lwm", "lamp", "random", "hydra", "harp", "radmm"]
  /// Method options and the methods that take them (`--gamma 2` is `options["gamma"] = "2"`).
  public static let optionOwners = ["gamma": ["harp"], "harp-start": ["harp"], "rho": ["radmm"], "admm-period": ["radmm"]]
  public static let defaultPruneEpochs = 1

  /// The method for `--method` (or, without one, the free cell of criterion, locality, structure).
  public static func make(method: String?, criterion: Criterion, locality: Locality?, structure: Structure, options: [String: String]) throws
    -> PruningMethod
  {
    let name = method?.lowercased()
    let options = try MethodOptions(options, owners: optionOwners, method: name)
    guard let name else {
      return try OneShotPruning(criterion: criterion, locality: locality ?? .global, structure: structure)
    }
    let refuse = MethodOptions.refuse
    func only(_ structures: [Structure], _ localities: [Locality]) throws {
      guard structures.contains(structure) else {
        throw refuse("--structure", structure.rawValue, "\(name) prunes \(structures.map(\.rawValue).joined(separator: " or "))")
      }
      if let locality, !localities.contains(locality) {
        throw refuse("--locality", locality.rawValue, "\(name) is \(localities.map(\.rawValue).joined(separator: "/")) by definition")
      }
    }
    switch name {
    case "lwm", "magnitude": return try OneShotPruning(criterion: .lwm, locality: locality ?? .global, structure: structure)
    case "lamp":
      try only([.unstructured], [.global])
      return try OneShotPruning(criterion: .lamp, locality: .global, structure: structure)
    case "random": return try OneShotPruning(criterion: .random, locality: locality ?? .global, structure: structure)
    case "hydra":
      try only([.unstructured, .filters, .channels], [.local])
      return HYDRA(structure: structure)
    case "harp":
      try only([.unstructured, .filters, .channels], [.global])
      let start = try options["harp-start"].map { text in
        guard let s = HARP.Start(rawValue: text) else { throw refuse("--harp-start", text, "expected lamp or uniform") }
        return s
      }
      return try HARP(gamma: try options.number("gamma", { $0 > 0 }, "a number > 0") ?? 1, start: start, structure: structure)
    case "radmm":
      try only([.unstructured, .filters], [.local])
      return try RADMM(
        structure: structure, rho: try options.number("rho", { $0 > 0 }, "a number > 0") ?? 1e-3,
        period: try options.count("admm-period", minimum: 1, "a whole number of steps >= 1"))
    default:
      throw refuse("--method", name, "unknown; known: \(names.joined(separator: ", "))")
    }
  }

  /// The recipe of a method's own phase: the fine-tuning recipe for `epochs`, at `learningRate`
  /// (default: `defaultLearningRate`); score training follows its references' cosine schedule.
  public static func phase(of method: PruningMethod, finetune: TrainConfig, epochs: Int, learningRate: Float?) -> TrainConfig {
    var phase = finetune
    phase.epochs = epochs
    phase.sgd.learningRate = learningRate ?? defaultLearningRate(method, finetune: finetune.sgd.learningRate)
    if method.cell.criterion == .lis { phase.schedule = .cosine }
    return phase
  }

  /// The learning rate of a method's own phase: HYDRA's and HARP's score training use 0.1 (their
  /// references), R-ADMM trains weights at the fine-tuning rate.
  public static func defaultLearningRate(_ method: PruningMethod, finetune: Float) -> Float {
    method.cell.criterion == .lis ? 0.1 : finetune
  }
}
