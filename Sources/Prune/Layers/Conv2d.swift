import GPU

/// A 2-D convolution with bias: `y = conv(x, w_eff) + b`, where the pruning state says
/// what the effective weight is (`WeightSource`: `w`, `w * m`, or `w * topk(|s|)`).
public final class Conv2d: SparseComputable {
  let backend: Backend
  public let weight: Parameter
  public let bias: Parameter?
  public let stride: Int
  public let padding: Int
  private var input: Tensor?
  private var geometry: ConvGeometry?
  /// The last forward's output (after the ReLU when one was fused in).
  private(set) var lastOutput: Tensor?
  private let output = BufferSlot()
  private let inputGrad = BufferSlot()
  private let masked = BufferSlot()
  private let gridOutput = BufferSlot()
  /// The effective weight of the last forward, which the backward differentiates through.
  private var usedWeight: Tensor?
  /// The model's pruning state, which says where the effective weight comes from.
  private var pruning: PruningState?
  public private(set) var sparse: SparseConvWeights?
  /// With `sparse`: the batch size from which the dense passes are faster after all (set by
  /// `--sparse auto` where the dense kernels change algorithm with the batch); nil: sparse always.
  public var denseFromBatch: Int?
  /// The eval-mode batch norm after it folded in (`fold`): the effective weight scaled per output
  /// channel, and the bias the norm's shift makes of its own; without a norm, a frozen copy of
  /// the effective weight and the layer's own bias.
  private var folded: (weight: Tensor, bias: Tensor?)?
  /// The compressed weight is of the weight before a fold or unfold: the next forward compresses again.
  private var sparseIsStale = false
  /// Where folds write (reused: a training loop folds before every batch's attack).
  private let foldedWeight = BufferSlot()
  private let foldedBias = BufferSlot()
  private let noBias = BufferSlot()
  /// The bias the layer computes with.
  private var activeBias: Tensor? {
    guard let folded else { return bias?.value }
    return folded.bias
  }

  public init(
    name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true,
    initialization: WeightInit = .pytorchDefault, backend: Backend, rng: inout SeededRNG
  ) throws {
    self.backend = backend
    self.stride = stride
    self.padding = padding
    let fanIn = inChannels * kernel * kernel
    let shape = [outChannels, inChannels, kernel, kernel]
    weight = try Parameter(
      name: "\(name).weight", value: try backend.upload(initialization.weights(count: shape.reduce(1, *), fanIn: fanIn, rng: &rng), shape: shape),
      backend: backend, isPrunable: true)
    self.bias =
      bias
      ? try Parameter(
        name: "\(name).bias", value: try backend.upload(initialization.biases(count: outChannels, fanIn: fanIn, rng: &rng), shape: [outChannels]),
        backend: backend, isPrunable: false)
      : nil
  }

  public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

  func geometry(for input: [Int]) -> ConvGeometry {
    precondition(input.count == 4 && input[1] == weight.shape[1], "\(weight.name): input \(input) does not have \(weight.shape[1]) channels")
    return ConvGeometry(
      batch: input[0], inChannels: input[1], height: input[2], width: input[3], outChannels: weight.shape[0],
      kernel: weight.shape[2], stride: stride, padding: padding)
  }

  public func outputShape(for input: [Int]) -> [Int] { geometry(for: input).outputShape }

  public func forwardMACs(input: [Int]) -> Int {
    let g = geometry(for: input)
    return g.outChannels * g.outPixels * g.patchSize * g.batch
  }

  public func forward(_ x: Tensor) throws -> Tensor { try forward(x, relu: false) }

  /// The forward, with `relu`: `max(conv(x), 0)` (a ReLU after it, fused; see `ConvReLU`).
  func forward(_ x: Tensor, relu: Bool) throws -> Tensor {
    let (dense, y, g) = try prepareForward(x, relu: relu)
    if let dense {
      try backend.runStepByStep([dense])
    } else if let sparse = sparse(forBatch: g.batch) {
      try backend.sparseConv2dForward(y: y, x: x, weights: sparse, bias: activeBias, geometry: g, relu: relu)
    }
    return y
  }

  /// The dense forward as a step of a per-image run (`Backend.runPerImage`), with the layer's
  /// state set as `forward` sets it; nil where this batch runs on the sparse kernels.
  func perImageForward(_ x: Tensor, relu: Bool) throws -> (step: ImageStep, output: Tensor)? {
    let (dense, y, _) = try prepareForward(x, relu: relu)
    return dense.map { ($0, y) }
  }

  /// The forward's output and geometry, with the state a backward reads set, and its op where it
  /// is dense (nil where this batch runs on the sparse kernels).
  private func prepareForward(_ x: Tensor, relu: Bool) throws -> (dense: ImageStep?, output: Tensor, geometry: ConvGeometry) {
    let g = geometry(for: x.shape)
    let y = try output.get(g.outputShape, backend)
    if sparseIsStale { try computeSparse(true) }
    let dense =
      sparse(forBatch: g.batch) == nil
      ? ImageStep.convForward(y: y, x: x, weight: try useWeight(), bias: activeBias, geometry: g, relu: relu) : nil
    (input, geometry, lastOutput) = (x, g, y)
    return (dense, y, g)
  }

  /// The dense input gradient after a forward, as a step (dy read through `reluOutput`'s mask
  /// when given): what `backward` runs on its own, and a per-image run takes with the others.
  func perImageInputGradient(_ dy: Tensor, reluOutput: Tensor?) throws -> (step: ImageStep, dx: Tensor) {
    guard let x = input, let g = geometry else { preconditionFailure("\(weight.name): backward before forward") }
    let dx = try inputGrad.get(x.shape, backend)
    return (.convInputGradient(dx: dx, dy: dy, weight: usedWeight ?? weight.value, geometry: g, reluOutput: reluOutput), dx)
  }

  /// The forward with a fused ReLU from grid to grid (`ResidentGridStep`), `residual` added
  /// before the ReLU. Forward-only: a backward after it fails, as before any forward.
  func forwardOnGrid(_ x: Tensor, layout: ResidentGrid, residual: Tensor?) throws -> Tensor {
    try onGrid(batch: layout.batch, to: layout) { out, sparse in
      try backend.sparseGridConv(out: out, source: x, weights: sparse, bias: activeBias, residual: residual, layout: layout)
    }
  }

  /// The forward from one resident grid to another (a strided conv or a shortcut), with a fused
  /// ReLU when `relu`. Forward-only, as `forwardOnGrid(_:layout:residual:)`.
  func forwardOnGrid(_ x: Tensor, from: ResidentGrid, to: ResidentGrid, relu: Bool) throws -> Tensor {
    let g = geometry(for: [from.batch, weight.shape[1], from.height, from.width])
    return try onGrid(batch: from.batch, to: to) { out, sparse in
      try backend.sparseGridConv(out: out, source: x, weights: sparse, bias: activeBias, relu: relu, geometry: g, from: from, to: to)
    }
  }

  /// `run` with the compressed weight and this layer's output grid on `to`; then nothing is kept
  /// for a backward.
  private func onGrid(batch: Int, to: ResidentGrid, _ run: (Tensor, SparseConvWeights) throws -> Void) throws -> Tensor {
    if sparseIsStale { try computeSparse(true) }
    guard let sparse = sparse(forBatch: batch) else { preconditionFailure("\(weight.name): not sparse at batch \(batch)") }
    let out = try gridOutput.get([to.floats(channels: weight.shape[0])], backend)
    try run(out, sparse)
    input = nil
    lastOutput = nil
    return out
  }

  public func backward(_ dy: Tensor, parameterGradients: Bool, inputGradient: Bool) throws -> Tensor? {
    try backward(dy, parameterGradients: parameterGradients, inputGradient: inputGradient, throughReLU: false)
  }

  /// The backward; with `throughReLU` (a fused ReLU after the convolution, see `ConvReLU`) the
  /// input gradient reads dy through the ReLU's mask, the output of the last forward. Only the
  /// input gradient fuses it: the weight gradient needs dy masked first.
  func backward(_ dy: Tensor, parameterGradients: Bool, inputGradient: Bool, throughReLU: Bool) throws -> Tensor? {
    guard let x = input, let g = geometry else { preconditionFailure("\(weight.name): backward before forward") }
    precondition(!throughReLU || !parameterGradients, "\(weight.name): only the input gradient fuses the ReLU")
    if parameterGradients {
      precondition(sparse == nil && folded == nil, "\(weight.name): a sparse or folded layer evaluates; it has no weight gradient")
      try backend.conv2dBackwardWeight(dWeight: weight.grad, dBias: bias?.grad, dy: dy, x: x, geometry: g)
    }
    guard inputGradient else { return nil }
    let reluOutput = throughReLU ? lastOutput : nil
    guard let sparse = sparse(forBatch: g.batch) else {
      let (dense, dx) = try perImageInputGradient(dy, reluOutput: reluOutput)
      try backend.runStepByStep([dense])
      return dx
    }
    let dx = try inputGrad.get(x.shape, backend)
    try backend.sparseConv2dBackwardData(dx: dx, dy: dy, weights: sparse, geometry: g, reluOutput: reluOutput)
    return dx
  }

  public func attach(_ pruning: PruningState) { self.pruning = pruning }

  public var lastConvolution: ConvGeometry? { geometry }

  /// The convolution without its padding, into `slot`: what Square's windowed evaluation runs on a
  /// window cut from the input with its zero border. Keeps nothing for a backward, and computes
  /// with the dense effective weight also when the layer computes sparse (whose compressed
  /// offsets are laid out for the whole plane).
  func forwardUnpadded(_ x: Tensor, relu: Bool, into slot: BufferSlot) throws -> Tensor {
    let full = geometry(for: x.shape)
    let g = ConvGeometry(
      batch: full.batch, inChannels: full.inChannels, height: full.height, width: full.width, outChannels: full.outChannels,
      kernel: full.kernel, stride: stride, padding: 0)
    let y = try slot.get(g.outputShape, backend)
    let w = try folded?.weight ?? effectiveWeight()
    try backend.conv2dForward(y: y, x: x, weight: w, bias: activeBias, geometry: g, relu: relu)
    return y
  }

  /// Folds `norm` (eval mode, right after this layer) in: `norm(conv(x, w) + b) =
  /// conv(x, w * s) + norm(b)` with `s = gamma / sqrt(running_var + eps)` per output channel, so
  /// evaluation runs one pass where it ran two and attacks differentiate through one. A sparse
  /// layer compresses the folded weight again. With no norm (a convolution without one, e.g.
  /// SmallCNN's) the effective weight is only copied and frozen: the CPU backend then keeps what
  /// it derives from it (Winograd transforms) for the evaluation instead of redoing it per call,
  /// and a masked weight is multiplied once, not at every forward.
  func fold(_ norm: BatchNorm2d?) throws {
    folded = nil
    let w = try effectiveWeight()
    let scaled = try foldedWeight.get(weight.shape, backend)
    guard let norm else {
      try backend.copy(from: w, to: scaled)
      backend.freeze(scaled)
      folded = (scaled, bias?.value)
      sparseIsStale = sparse != nil
      return
    }
    let (o, perChannel) = (weight.shape[0], weight.count / weight.shape[0])
    let shifted = try foldedBias.get([o], backend)
    try norm.scale(w.reshaped([1, o, perChannel, 1]), into: scaled.reshaped([1, o, perChannel, 1]))
    try norm.normalize(try (bias?.value ?? noBias.get([o], backend)).reshaped([1, o]), into: shifted.reshaped([1, o]))
    backend.freeze(scaled)
    folded = (scaled, shifted)
    sparseIsStale = sparse != nil
  }

  /// Computes with its own weight and bias again.
  func unfold() {
    guard folded != nil else { return }
    folded = nil
    sparseIsStale = sparse != nil
  }

  /// The compressed weight if this batch computes with it.
  func sparse(forBatch batch: Int) -> SparseConvWeights? {
    guard let sparse, denseFromBatch.map({ batch < $0 }) ?? true else { return nil }
    return sparse
  }

  public func computeSparse(_ on: Bool) throws {
    sparse = on ? try SparseConvWeights(dense: try backend.download(try useWeight()), shape: weight.shape, backend: backend) : nil
    sparseIsStale = false
  }

  /// The weight as pruning says it computes (`w`, `w * m`, ...), without a fold.
  private func effectiveWeight() throws -> Tensor {
    try (pruning?.source(for: weight) ?? .dense).effective(weight, backend, masked)
  }

  private func useWeight() throws -> Tensor {
    let w = try folded?.weight ?? effectiveWeight()
    usedWeight = w
    return w
  }
}
