/// The survey's taxonomy as types (DESIGN.md, PRUNING.md): when a method prunes (pipeline, and
/// whether in one shot or iteratively) and how (structure, locality, criterion).

/// When pruning happens relative to training.
public enum Pipeline: String, CaseIterable, Codable, Sendable {
  /// Train, prune, fine-tune (A).
  case after
  /// Prune at or near initialisation, then train the sparse network (B).
  case before
  /// The mask changes while the network trains (D).
  case during

  public var letter: String { rawValue.prefix(1).uppercased() }
}

/// Whether the mask is found in one step or over several rounds of pruning.
public enum Schedule: String, CaseIterable, Codable, Sendable {
  case oneShot = "one-shot"
  case iterative
}

/// What pruning removes. A conv filter and the matching input channel of the layers that read it
/// are the same tensor channel; advprune removes both together (`ChannelGroup`), so `filters`
/// and `channels` run the same operation and differ only in how a method counts cost (HARP's
/// channel variant penalises FLOPs). `kernels` (single k x k kernels) is in the taxonomy only.
public enum Structure: String, CaseIterable, Codable, Sendable {
  case unstructured
  case filters
  case channels
  case kernels

  public var isStructured: Bool { self != .unstructured }

  public init(parsing name: String) throws {
    let aliases = ["filter": Structure.filters, "structured": .filters, "channel": .channels, "weights": .unstructured, "kernel": .kernels]
    guard let s = Structure(rawValue: name.lowercased()) ?? aliases[name.lowercased()] else {
      throw UserError.badValue(
        name: "--structure", value: name,
        problem: "unknown; known: \(Structure.allCases.map(\.rawValue).joined(separator: ", ")) (filter and structured = filters)")
    }
    self = s
  }
}

/// Locality of a pruning method: the same rate in every layer, or one ranking across layers (or
/// learned per-layer rates) so each layer gets its own rate.
public enum Locality: String, CaseIterable, Codable, Sendable {
  case local
  case global
}

/// What ranks the weights (PRUNING.md's criteria; the survey's benchmark code calls `relwm`
/// "sparsity-based LWM", SPALWM).
public enum Criterion: String, CaseIterable, Codable, Sendable {
  /// Lowest weight magnitude |w| (filters: mean |w| of the filter, scaled by sqrt(fan-in)).
  case lwm
  /// Layer-adaptive magnitude: `w_u^2 / sum_{v >= u} w_v^2` over each layer's sorted weights.
  case lamp
  /// Lowest learned importance score, trained on the adversarial loss (HYDRA, HARP).
  case lis
  /// Solver-based magnitude: the sparse projection of an ADMM solver (R-ADMM, PwoA).
  case solwm
  /// Regularisation-based magnitude: magnitude after a sparsity-inducing reparameterisation (TwinRep).
  case relwm
  /// Highest gradient magnitude.
  case hgm
  /// Random scores: the control every table needs.
  case random
  /// Bayesian connectivity sampling.
  case bcs

  /// `magnitude` is the name earlier versions used for LWM.
  public static var magnitude: Criterion { .lwm }

  public init(parsing name: String) throws {
    guard let c = Criterion(rawValue: name.lowercased()) ?? (name.lowercased() == "magnitude" ? .lwm : nil) else {
      throw UserError.badValue(
        name: "--criterion", value: name, problem: "unknown; known: \(Criterion.allCases.map(\.rawValue).joined(separator: ", ")) (magnitude = lwm)")
    }
    self = c
  }

  public var summary: String {
    switch self {
    case .lwm: return "lowest weight magnitude"
    case .lamp: return "layer-adaptive magnitude (LAMP)"
    case .lis: return "lowest learned importance score"
    case .solwm: return "solver-based magnitude (ADMM)"
    case .relwm: return "regularisation-based magnitude"
    case .hgm: return "highest gradient magnitude"
    case .random: return "random"
    case .bcs: return "Bayesian connectivity sampling"
    }
  }
}

/// A method's place in the taxonomy. Methods with variants list every structure they offer.
public struct TaxonomyCell: Codable, Sendable, Equatable {
  public var pipeline: Pipeline
  /// nil for methods that prune during training (their mask moves continuously).
  public var schedule: Schedule?
  public var structures: [Structure]
  /// Empty where the method's paper does not say.
  public var localities: [Locality]
  public var criterion: Criterion

  /// The survey's short form, e.g. `A/U,S/G/lis`.
  public var code: String {
    let s = structures.map { $0 == .unstructured ? "U" : "S" }
    let unique = s.enumerated().filter { s.firstIndex(of: $0.element) == $0.offset }.map(\.element)
    let l = localities.isEmpty ? "?" : localities.map { $0 == .local ? "L" : "G" }.joined(separator: ",")
    return "\(pipeline.letter)/\(unique.joined(separator: ","))/\(l)/\(criterion.rawValue)"
  }
}
