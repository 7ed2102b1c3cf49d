import GPU

/// What pruning methods decide about a model, kept apart from how the model runs.
///
/// Everything is keyed by parameter name and saved in checkpoints as `<name>_<slot>` tensors:
/// 0/1 masks (`_mask`: weights, and the biases and batch-norm parameters of removed channels),
/// importance scores a method trains (`_scores`, HYDRA and HARP), TwinRep's trained twin factor
/// (`_twin`), and a method's auxiliary tensors (`_admm_z`, `_admm_u`: R-ADMM). Exports for PyTorch drop them all. A layer asks `source(for:)`
/// how it gets its effective weight; the optimiser asks `mask(for:)` what it must keep at zero.
public final class PruningState {
  /// A saved slot: the suffix after the parameter name.
  public enum Slot: String, CaseIterable, Sendable {
    case mask
    case scores
    case admmZ = "admm_z"
    case admmU = "admm_u"
    case twin

    public var suffix: String { "_" + rawValue }
    /// Slots that hold trained tensors (with gradient and momentum), not fixed ones.
    public static let trained: [Slot] = [.scores, .twin]
  }

  let backend: Backend
  private var masks: [String: Tensor] = [:]
  /// Trained tensors by slot and weight name (value, gradient, momentum), as `Parameter`s named
  /// `<name>_scores` or `<name>_twin`.
  private var trained: [Slot: [String: Parameter]] = [:]
  /// HYDRA's and HARP's scores by weight name.
  public var scores: [String: Parameter] { trained[.scores] ?? [:] }
  /// TwinRep's twin factors by weight name: the layer computes with `w * twin (* mask)`.
  public var twins: [String: Parameter] { trained[.twin] ?? [:] }
  /// Every trained tensor of the state, for checkpoints.
  var allTrained: [Parameter] { Slot.trained.flatMap { (trained[$0] ?? [:]).values.sorted { $0.name < $1.name } } }
  /// Top-k counts of live scores: while a weight's name is here, its mask is the top-`keep` of |scores|.
  public private(set) var liveScores: [String: Int] = [:]
  private var auxiliaries: [String: [Slot: Tensor]] = [:]

  init(backend: Backend) {
    self.backend = backend
  }

  /// The mask the optimiser and the layer apply to `name`, if any.
  public func mask(for name: String) -> Tensor? { masks[name] }

  /// Attaches `mask` (0/1, the parameter's shape) to `name`; nil removes it.
  public func setMask(_ mask: Tensor?, for name: String) { masks[name] = mask }

  /// Names of parameters that carry a mask.
  public var maskedNames: [String] { masks.keys.sorted() }

  public func auxiliary(_ slot: Slot, for name: String) -> Tensor? { auxiliaries[name]?[slot] }

  public func setAuxiliary(_ slot: Slot, _ tensor: Tensor?, for name: String) {
    precondition(slot != .mask && slot != .scores, "masks and scores have their own setters")
    auxiliaries[name, default: [:]][slot] = tensor
  }

  /// Every auxiliary tensor by (name, slot), for checkpoints.
  var allAuxiliaries: [(name: String, slot: Slot, tensor: Tensor)] {
    auxiliaries.sorted { $0.key < $1.key }.flatMap { name, slots in
      slots.sorted { $0.key.rawValue < $1.key.rawValue }.map { (name, $0.key, $0.value) }
    }
  }

  /// Scores for the weight `parameter` (created zero, or holding `values`).
  @discardableResult
  public func setScores(for parameter: Parameter, values: [Float]? = nil) throws -> Parameter {
    try setTrained(.scores, for: parameter, values: values ?? [Float](repeating: 0, count: parameter.count))
  }

  /// TwinRep's twin factor for the weight `parameter` (ones, or `values`).
  @discardableResult
  public func setTwin(for parameter: Parameter, values: [Float]? = nil) throws -> Parameter {
    try setTrained(.twin, for: parameter, values: values ?? [Float](repeating: 1, count: parameter.count))
  }

  private func setTrained(_ slot: Slot, for parameter: Parameter, values: [Float]) throws -> Parameter {
    let value = try backend.upload(values, shape: parameter.shape)
    let t = try Parameter(name: parameter.name + slot.suffix, value: value, backend: backend, isPrunable: false)
    trained[slot, default: [:]][parameter.name] = t
    return t
  }

  /// Folds every twin into its weight (`w = w * twin`) and drops the twins: the model computes
  /// the same function with plain weights (the end of TwinRep's training, and exports).
  public func foldTwins(_ model: Model) throws {
    for (name, twin) in twins {
      guard let w = model.parameter(named: name) else { continue }
      try backend.multiply(out: w.value, a: w.value, b: twin.value)
    }
    trained[.twin] = nil
  }

  /// Makes the mask of `name` the top-`keep` of its |scores| from now on (HYDRA's forward), with
  /// gradients reaching the scores straight through; nil freezes the current mask.
  public func setLiveScores(keep: Int?, for name: String) throws {
    liveScores[name] = keep
    if keep != nil { try refreshMask(name) }
  }

  /// Recomputes the masks of live scores after the scores moved.
  public func refreshLiveMasks() throws {
    for name in liveScores.keys.sorted() { try refreshMask(name) }
  }

  private func refreshMask(_ name: String) throws {
    guard let keep = liveScores[name], let s = scores[name] else { return }
    let m = try masks[name] ?? backend.zeros(like: s.value)
    try backend.topKMask(mask: m, scores: s.value, keep: keep)
    masks[name] = m
  }

  /// How a layer computes with its weight.
  public func source(for weight: Parameter) -> WeightSource {
    if let twin = twins[weight.name] { return .product(twin: twin, mask: masks[weight.name]) }
    if liveScores[weight.name] != nil, let s = scores[weight.name], let m = masks[weight.name] { return .scoreTopK(scores: s, mask: m) }
    if let m = masks[weight.name] { return .masked(m) }
    return .dense
  }

  /// Drops every mask, score and auxiliary (before a checkpoint's are loaded).
  func clear() {
    masks = [:]
    trained = [:]
    liveScores = [:]
    auxiliaries = [:]
  }
}

/// Where a conv or linear layer's effective weight comes from.
public enum WeightSource {
  /// The parameter's value.
  case dense
  /// `value * mask` (the value's pruned entries are zero already; the product keeps them so).
  case masked(Tensor)
  /// `value * topk(|scores|)` with the mask refreshed as the scores train; the weight gradient
  /// reaches the scores straight through the top-k and the absolute value:
  /// `dL/dscores = dL/dw_eff * value` (HYDRA's reference code).
  case scoreTopK(scores: Parameter, mask: Tensor)
  /// `value * twin (* mask)`: TwinRep's reparameterisation (its hooks turn `dL/dw_eff` into the
  /// gradients of both factors).
  case product(twin: Parameter, mask: Tensor?)

  /// The weight to compute with: `value`, or `value * mask` written into `slot`.
  func effective(_ weight: Parameter, _ backend: Backend, _ slot: BufferSlot) throws -> Tensor {
    let mask: Tensor
    switch self {
    case .dense: return weight.value
    case .masked(let m): mask = m
    case .scoreTopK(_, let m): mask = m
    case .product(let twin, let m):
      let w = try slot.get(weight.shape, backend)
      try backend.multiply(out: w, a: weight.value, b: twin.value)
      if let m { try backend.multiply(out: w, a: w, b: m) }
      return w
    }
    let w = try slot.get(weight.shape, backend)
    try backend.multiply(out: w, a: weight.value, b: mask)
    return w
  }
}
