/// The named methods `advprune prune --method` runs, and the free cells it composes.
public enum PruningMethods {
  public static let names = ["lwm", "lamp", "random"]
  public static let defaultPruneEpochs = 1

  /// The method for `--method` (or, without one, the free cell of criterion, locality, structure).
  public static func make(method: String?, criterion: Criterion, locality: Locality?, structure: Structure, options: [String: String]) throws
    -> PruningMethod
  {
    if let unknown = options.keys.sorted().first {
      throw UserError.badValue(name: "--\(unknown)", value: options[unknown]!, problem: "no method option of that name")
    }
    guard let method else {
      return try OneShotPruning(criterion: criterion, locality: locality ?? .global, structure: structure)
    }
    switch method.lowercased() {
    case "lwm", "magnitude": return try OneShotPruning(criterion: .lwm, locality: locality ?? .global, structure: structure)
    case "lamp": return try OneShotPruning(criterion: .lamp, locality: locality ?? .global, structure: structure)
    case "random": return try OneShotPruning(criterion: .random, locality: locality ?? .global, structure: structure)
    default:
      throw UserError.badValue(name: "--method", value: method, problem: "unknown; known: \(names.joined(separator: ", "))")
    }
  }

  /// The learning rate of a method's own phase.
  public static func defaultLearningRate(_ method: PruningMethod, finetune: Float) -> Float { finetune }
}
