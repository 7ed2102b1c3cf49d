import GPU

/// A network as a chain of layers, with its parameters in state_dict order.
///
/// Residual models (issue: the survey's models) will add their own `Layer` blocks; the chain
/// itself stays a list.
public final class Model {
  public let architecture: Architecture
  /// Channel multiplier it was built with (1 = the published model).
  public let width: Double
  /// Channel counts by channel group that replace `width`'s (a compacted model lists every group).
  public let channels: [String: Int]
  public let backend: Backend
  public let layers: [Layer]
  /// What forward and backward run: `layers` with each conv + ReLU pair fused (`ConvReLU`), and
  /// the batch norms left out while folded into their convolutions.
  private(set) var steps: [Layer] {
    didSet {
      let same = oldValue.count == steps.count && zip(oldValue, steps).allSatisfy { $0 === $1 }
      if stepTimes != nil && !same { stepTimes = emptyStepTimes() }
    }
  }
  /// Each step's time since `timeSteps(true)` (folding or unfolding batch norm, where it changes
  /// the steps, starts them over); nil while off.
  public internal(set) var stepTimes: [StepTime]?
  public let parameters: [Parameter]
  /// What pruning decided (masks, scores, auxiliaries), by parameter name.
  public let pruning: PruningState
  /// Batch norm uses batch statistics when true; attacks and evaluation switch it off.
  public private(set) var isTraining = true
  /// Whether `foldBatchNorm` froze the convolutions' weights (with or without a norm to fold).
  public private(set) var isFolded = false
  /// Runs of steps the last `inference` kept on the grid (each copied on once and off once).
  public private(set) var gridRuns = 0
  /// Whether the last pass was a `forward`, which `backward` differentiates.
  private var canBackward = false
  /// Where `inference` copies onto the grid and back, per run of grid steps.
  private let gridEntries = BufferSlots()
  private let gridExits = BufferSlots()

  init(architecture: Architecture, width: Double = 1, channels: [String: Int] = [:], backend: Backend, layers: [Layer]) {
    self.architecture = architecture
    self.width = width
    self.channels = channels
    self.backend = backend
    self.layers = layers
    steps = Self.steps(layers)
    parameters = layers.flatMap(\.parameters)
    pruning = PruningState(backend: backend)
    for layer in layers { layer.attach(pruning) }
  }

  /// The mask of a parameter, if pruning gave it one.
  public func mask(of p: Parameter) -> Tensor? { pruning.mask(for: p.name) }

  /// Attaches `values` (0/1) as the mask of `p` and zeroes its pruned values; resets its momentum
  /// (a pruned model's fine-tuning starts its own), or with `resetMomentum` false only the pruned
  /// entries' (pruning during training keeps the rest going).
  public func applyMask(_ values: [Float], to p: Parameter, resetMomentum: Bool = true) throws {
    let m = try backend.upload(values, shape: p.shape)
    pruning.setMask(m, for: p.name)
    try backend.multiply(out: p.value, a: p.value, b: m)
    if resetMomentum {
      try backend.fill(p.velocity, value: 0)
    } else {
      try backend.multiply(out: p.velocity, a: p.velocity, b: m)
    }
  }

  public func setTraining(_ training: Bool) {
    guard training != isTraining else { return }
    // A folded norm is a snapshot of the parameters, which training changes.
    if training { unfoldBatchNorm() }
    isTraining = training
    for layer in layers { layer.setTraining(training) }
  }

  /// Parameters SGD updates (everything but batch-norm running statistics).
  public var trainableParameters: [Parameter] { parameters.filter(\.isTrainable) }

  /// Multiply-adds of one image's forward pass.
  public var macsPerImage: Int {
    var shape = [1] + architecture.inputShape
    var total = 0
    for layer in layers {
      total += layer.forwardMACs(input: shape)
      shape = layer.outputShape(for: shape)
    }
    return total
  }

  /// Number of trainable values (weights, biases, batch-norm affine parameters).
  public var parameterCount: Int { trainableParameters.reduce(0) { $0 + $1.count } }

  /// Conv and linear weights: what pruning may remove.
  public var prunableParameters: [Parameter] { parameters.filter(\.isPrunable) }

  public func parameter(named name: String) -> Parameter? { parameters.first { $0.name == name } }

  /// Batch-norm scales and shifts: score-training methods keep them trainable (HYDRA's reference).
  public var batchNormParameters: [Parameter] {
    func walk(_ layer: Layer) -> [Parameter] {
      if let bn = layer as? BatchNorm2d { return [bn.weight, bn.bias] }
      return layer.children.flatMap(walk)
    }
    return layers.flatMap(walk)
  }

  /// Logits [N, classes] for a batch of images [N, C, H, W] in [0, 1].
  public func forward(_ x: Tensor) throws -> Tensor {
    var h = x
    for (i, step) in steps.enumerated() { h = try timed(i, backward: false, images: x.shape[0]) { try step.forward(h) } }
    canBackward = true
    return h
  }

  /// `forward`'s logits for a pass no backward follows (predictions, clean accuracy): in eval
  /// mode, runs of steps that can (`ResidentGridStep`: a sparse model's stem and residual
  /// blocks) keep their activations on the sparse grid where the backend prefers it, copied on
  /// once and off once per run instead of at every layer. The same sums in the same order as
  /// `forward`'s sparse layers, so the same logits.
  public func inference(_ x: Tensor) throws -> Tensor {
    canBackward = false
    var (h, shape, grid, run) = (x, x.shape, ResidentGrid?.none, 0)
    func leave() throws {
      guard let layout = grid else { return }
      let y = try gridExits.slot(run).get(shape, backend)
      try backend.sparseGridLeave(y: y, grid: h, layout: layout)
      (h, grid, run) = (y, nil, run + 1)
    }
    func inferenceStep(_ step: Layer) throws {
      if !isTraining, shape.count == 4, let s = step as? ResidentGridStep, s.runsOnGrid(shape) {
        let layout = ResidentGrid(batch: shape[0], height: shape[2], width: shape[3])
        if backend.prefersResidentGrid(layout, channels: s.gridChannels) {
          if grid == nil {
            let entry = try gridEntries.slot(run).get([layout.floats(channels: shape[1])], backend)
            try backend.sparseGridEnter(grid: entry, x: h, layout: layout)
            (h, grid) = (entry, layout)
          }
          h = try s.forwardOnGrid(h, layout: layout)
          shape = s.outputShape(for: shape)
          grid = ResidentGrid(batch: shape[0], height: shape[2], width: shape[3])
          return
        }
      }
      try leave()
      h = try step.forward(h)
      shape = h.shape
    }
    // Timed, the copy onto the grid counts with the step that starts a run, the copy off it with
    // the step after the run (the last step, where the run ends the model).
    for (i, step) in steps.enumerated() {
      try timed(i, backward: false, images: x.shape[0]) { try inferenceStep(step) }
    }
    if !steps.isEmpty { try timed(steps.count - 1, backward: false, images: 0) { try leave() } }
    gridRuns = run
    return h
  }

  /// Back-propagates dL/dlogits through the last forward. With `parameterGradients` it fills
  /// every `Parameter.grad`; it returns dL/dx when `inputGradient` (attacks need it).
  @discardableResult
  public func backward(_ dLogits: Tensor, parameterGradients: Bool, inputGradient: Bool) throws -> Tensor? {
    precondition(canBackward, "\(architecture): backward needs a forward first (an inference pass keeps nothing for one)")
    var g: Tensor? = dLogits
    for (i, step) in steps.enumerated().reversed() {
      guard let dy = g else { break }
      let needInput = i > 0 || inputGradient
      g = try timed(i, backward: true, images: dy.shape[0]) {
        try step.backward(dy, parameterGradients: parameterGradients, inputGradient: needInput)
      }
    }
    return inputGradient ? g : nil
  }

  /// dL/dx of the last forward from dL/dlogits, without parameter gradients (what attacks need).
  public func inputGradient(_ dLogits: Tensor) throws -> Tensor {
    guard let g = try backward(dLogits, parameterGradients: false, inputGradient: true) else {
      preconditionFailure("\(architecture): backward returned no input gradient")
    }
    return g
  }

  /// Number of weights, and of weights still present (mask 1), over the prunable parameters.
  public func prunableCounts() throws -> (total: Int, kept: Int) {
    try layerSparsity().reduce((0, 0)) { ($0.0 + $1.weights, $0.1 + $1.kept) }
  }

  /// Share of prunable weights removed.
  public func sparsity() throws -> Double {
    let (total, kept) = try prunableCounts()
    return total == 0 ? 0 : Double(total - kept) / Double(total)
  }
}

extension Model {
  /// Weights and weights kept (mask 1) of each prunable parameter.
  public func layerSparsity() throws -> [LayerSparsity] {
    try prunableParameters.map { p in
      LayerSparsity(name: p.name, weights: p.count, kept: try keptCount(p))
    }
  }

  /// Values of `p` its mask keeps (all of them when it has none).
  func keptCount(_ p: Parameter) throws -> Int {
    try mask(of: p).map { try backend.download($0).reduce(0) { $0 + ($1 != 0 ? 1 : 0) } } ?? p.count
  }
}

extension Model {
  /// Each convolution directly followed by a batch norm, in `layers` and inside residual blocks.
  var convBatchNormPairs: [(Conv2d, BatchNorm2d)] {
    var pairs: [(Conv2d, BatchNorm2d)] = []
    for (i, layer) in layers.enumerated() {
      if let conv = layer as? Conv2d, i + 1 < layers.count, let norm = layers[i + 1] as? BatchNorm2d { pairs.append((conv, norm)) }
      if let block = layer as? BasicBlock { pairs += block.convBatchNormPairs }
    }
    return pairs
  }

  /// Whether the batch norms are folded into their convolutions (`foldBatchNorm`).
  public var isBatchNormFolded: Bool { convBatchNormPairs.first?.1.isFolded ?? false }

  /// Folds every eval-mode batch norm into the convolution before it (`Conv2d.fold`): the same
  /// function in one pass per pair instead of two, and a convolution + ReLU where a norm stood
  /// between them; a convolution without a norm computes with a frozen copy of its weight. A
  /// snapshot of the parameters and masks: `EvaluationModel` folds the model it evaluates, and
  /// switching to training unfolds.
  public func foldBatchNorm() throws {
    precondition(!isTraining, "foldBatchNorm: batch norm folds in eval mode only")
    let pairs = convBatchNormPairs
    for (conv, norm) in pairs {
      try conv.fold(norm)
      norm.isFolded = true
    }
    for conv in layers.compactMap({ $0 as? Conv2d }) where !pairs.contains(where: { $0.0 === conv }) { try conv.fold(nil) }
    isFolded = true
    if !pairs.isEmpty { steps = Self.steps(layers) }
  }

  /// Runs `body` in eval mode, then restores the mode. A model switched from training (a training
  /// loop's attack on its current weights) has its batch norm folded meanwhile; one already in
  /// eval mode runs as its owner set it up (`EvaluationModel` folds, or was asked not to).
  public func evaluating<T>(_ body: () throws -> T) throws -> T {
    let wasTraining = isTraining
    setTraining(false)
    defer { setTraining(wasTraining) }
    if wasTraining { try foldBatchNorm() }
    return try body()
  }

  /// What forward and backward run for `layers`: conv + ReLU pairs fused, folded norms left out.
  static func steps(_ layers: [Layer]) -> [Layer] {
    ConvReLU.fused(layers.filter { !(($0 as? BatchNorm2d)?.isFolded ?? false) })
  }

  /// Every convolution and batch norm computing on its own again.
  public func unfoldBatchNorm() {
    guard isFolded else { return }
    for (conv, norm) in convBatchNormPairs {
      conv.unfold()
      norm.isFolded = false
    }
    for conv in layers.compactMap({ $0 as? Conv2d }) { conv.unfold() }
    isFolded = false
    steps = Self.steps(layers)
  }
}
