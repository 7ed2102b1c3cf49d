/// The closed set of ops advprune runs, implemented by a CPU reference and an OpenCL backend.
///
/// `CPUBackend` defines what is correct; `OpenCLBackend` must agree with it (parity tests and
/// `advprune validate`). Every op writes into tensors the caller allocated, shapes are checked
/// with `precondition`s (a wrong shape is a programmer mistake), and device failures throw.
/// Layouts: images NCHW, conv weights [OC, C, K, K], linear weights [O, I] (PyTorch's layouts).
public protocol Backend: AnyObject {
  /// "cpu" or "opencl:<index> (<device name>)".
  var name: String { get }
  /// The device memory ledger, where the backend keeps one (OpenCL); nil for host memory.
  var deviceMemory: DeviceMemory? { get }

  // MARK: Memory
  func zeros(_ shape: [Int]) throws -> Tensor
  func upload(_ values: [Float], shape: [Int]) throws -> Tensor
  /// Overwrites `tensor` with `values` (same count).
  func write(_ values: [Float], to tensor: Tensor) throws
  func download(_ tensor: Tensor) throws -> [Float]
  func copy(from source: Tensor, to destination: Tensor) throws
  func fill(_ tensor: Tensor, value: Float) throws
  /// Waits until every queued op has finished.
  func synchronize() throws
  /// Promises that `tensor`'s values do not change until the next `freeze` of it (folded weights:
  /// an evaluation's, or a training batch's attack's), so the backend may keep what it derives
  /// from them meanwhile; who writes it again freezes it again.
  func freeze(_ tensor: Tensor)

  // MARK: Dense algebra
  /// Row-major `C = alpha * op(A) * op(B) + beta * C`, `op(A)` is M x K, `op(B)` is K x N.
  func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: Tensor, b: Tensor, beta: Float, c: Tensor) throws
  /// `y[N, O] = x[N, I] * w[O, I]^T + b[O]`.
  func linearForward(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?) throws
  /// `dx[N, I] = dy[N, O] * w[O, I]`.
  func linearBackwardData(dx: Tensor, dy: Tensor, weight: Tensor) throws
  /// `dw[O, I] = dy^T * x`, `db[O] = sum_n dy[n, O]`.
  func linearBackwardWeight(dWeight: Tensor, dBias: Tensor?, dy: Tensor, x: Tensor) throws

  // MARK: Convolution (im2col + GEMM over slices of the batch; Winograd for 3x3 stride 1 on the CPU)
  /// `y[n, o, p] = sum_{c, i, j} w[o, c, i, j] * x[n, c, p + (i, j)] + b[o]`, then `max(y, 0)`
  /// when `relu` (a convolution followed by a ReLU, in one pass over the output).
  func conv2dForward(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, geometry: ConvGeometry, relu: Bool) throws
  /// Gradient with respect to the input; with `reluOutput` (the output of a ReLU that followed
  /// the convolution, dy's shape), of the two together: dy is read as `dy * (reluOutput > 0)`.
  func conv2dBackwardData(dx: Tensor, dy: Tensor, weight: Tensor, geometry: ConvGeometry, reluOutput: Tensor?) throws
  /// Gradients with respect to the weight and the bias.
  func conv2dBackwardWeight(dWeight: Tensor, dBias: Tensor?, dy: Tensor, x: Tensor, geometry: ConvGeometry) throws

  /// The steps in order, with the same results as `runStepByStep`; a backend may run them a few
  /// images at a time (each image's intermediate tensors still in cache when the next step reads
  /// them) where that is faster. A residual block's forward or input gradient is one such run.
  func runPerImage(_ steps: [ImageStep]) throws

  // MARK: Sparse convolution (evaluation of a pruned model: no weight gradient)
  /// `conv2dForward` with the weight given by its nonzeros (ReLU on the output when `relu`); a
  /// linear layer is the 1x1 case.
  func sparseConv2dForward(y: Tensor, x: Tensor, weights: SparseConvWeights, bias: Tensor?, geometry: ConvGeometry, relu: Bool) throws
  /// `conv2dBackwardData` with the weight given by its nonzeros (dy read as `dy * (reluOutput > 0)`
  /// when given: the gradient through the ReLU the forward fused).
  func sparseConv2dBackwardData(dx: Tensor, dy: Tensor, weights: SparseConvWeights, geometry: ConvGeometry, reluOutput: Tensor?) throws

  // MARK: Activations kept on the sparse grid (forward-only passes of a pruned model; `ResidentGrid`)
  /// Whether runs of sparse 3x3 stride-1 layers of up to `channels` channels on this grid are
  /// faster kept on it than copied on and off per layer (where the grid form is the sparse path,
  /// and memory allows).
  func prefersResidentGrid(_ layout: ResidentGrid, channels: Int) -> Bool
  /// `x` [N, C, H, W] onto `grid`: each channel's images as zero-bordered planes one under the other.
  func sparseGridEnter(grid: Tensor, x: Tensor, layout: ResidentGrid) throws
  /// A sparse 3x3, stride-1, padding-1 conv from grid to grid: `out = max(conv(source) + bias +
  /// residual, 0)` on the planes' interior (`residual` on the grid too), zero on their border.
  func sparseGridConv(out: Tensor, source: Tensor, weights: SparseConvWeights, bias: Tensor?, residual: Tensor?, layout: ResidentGrid) throws
  /// The planes' interior back into `y` [N, C, H, W].
  func sparseGridLeave(y: Tensor, grid: Tensor, layout: ResidentGrid) throws
  /// A sparse conv of any stride, kernel and padding (at most 1) from one resident grid to
  /// another (ResNet's strided convs and shortcuts): `out` (`to`'s planes, zero border) gets
  /// `conv(source) + bias` (`from`'s planes), then `max(., 0)` when `relu`.
  func sparseGridConv(
    out: Tensor, source: Tensor, weights: SparseConvWeights, bias: Tensor?, relu: Bool, geometry: ConvGeometry, from: ResidentGrid, to: ResidentGrid
  ) throws

  // MARK: Elementwise and pooling
  /// `y = max(x, 0)`.
  func reluForward(y: Tensor, x: Tensor) throws
  /// `dx = dy * (y > 0)`.
  func reluBackward(dx: Tensor, dy: Tensor, y: Tensor) throws
  /// Non-overlapping 2x2 max pooling over [N, C, H, W] (H, W even).
  func maxPool2x2Forward(y: Tensor, x: Tensor) throws
  /// Routes each `dy` to the first maximum of its window (row-major order), as the forward chose.
  func maxPool2x2Backward(dx: Tensor, dy: Tensor, x: Tensor) throws
  /// `out = a * b` elementwise (masks).
  func multiply(out: Tensor, a: Tensor, b: Tensor) throws
  /// `out = a + b` elementwise (residual connections and their gradients).
  func add(out: Tensor, a: Tensor, b: Tensor) throws
  /// `out = max(a + b, 0)`: a residual block's sum and the ReLU after it in one pass.
  func addReLU(out: Tensor, a: Tensor, b: Tensor) throws
  /// Non-overlapping k x k average pooling over [N, C, H, W] (H, W multiples of k): global and
  /// adaptive pooling to an exact divisor are this op.
  func avgPoolForward(y: Tensor, x: Tensor, kernel: Int) throws
  /// `dx = dy / k^2` spread over each window.
  func avgPoolBackward(dx: Tensor, dy: Tensor, kernel: Int) throws

  // MARK: Batch normalisation (per channel of [N, C, H, W], M = N*H*W values each)
  /// Training: `mean`, `invStd = 1/sqrt(var + eps)` from the batch (biased variance), running stats
  /// updated as PyTorch does (`r = (1 - momentum) r + momentum * stat`, unbiased variance).
  /// Inference: `mean`, `invStd` from the running stats, which stay unchanged. Then
  /// `y = gamma * (x - mean) * invStd + beta`, then `max(y, 0)` when `relu` (a norm and the ReLU
  /// after it in one pass); `mean` and `invStd` are kept for the backward.
  func batchNormForward(
    y: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, invStd: Tensor,
    runningMean: Tensor, runningVar: Tensor, training: Bool, momentum: Float, eps: Float, relu: Bool) throws
  /// `dGamma = sum dy * xhat`, `dBeta = sum dy`, and `dx`: in training mode
  /// `gamma * invStd / M * (M dy - dBeta - xhat dGamma)` (the batch statistics depend on x),
  /// in inference mode `gamma * invStd * dy`. With `dGamma`/`dBeta` nil (an attack step needs
  /// only `dx`) the sums are kept internal in training mode and not computed in inference mode.
  /// With `reluOutput` (the output of a forward with `relu`) dy is read as `dy * (reluOutput > 0)`.
  func batchNormBackward(
    dx: Tensor?, dGamma: Tensor?, dBeta: Tensor?, dy: Tensor, x: Tensor, gamma: Tensor, mean: Tensor, invStd: Tensor,
    training: Bool, reluOutput: Tensor?) throws

  // MARK: Loss
  /// Softmax cross-entropy per sample: `loss[n] = logsumexp(z[n]) - z[n, y_n]`, and, when given,
  /// `dLogits[n, c] = scale * (softmax(z[n])_c - [c == y_n])`. Labels are class indices stored as floats.
  func softmaxCrossEntropy(losses: Tensor, dLogits: Tensor?, logits: Tensor, labels: Tensor, scale: Float) throws
  /// TRADES' divergence per sample: `loss[n] = KL(softmax(p[n]) || softmax(q[n]))`, and, when given,
  /// `dQ = scale * (softmax(q) - softmax(p))` and `dP = scale * softmax(p) * (log softmax(p) - log softmax(q) - KL)`.
  func softmaxKL(losses: Tensor, dP: Tensor?, dQ: Tensor?, p: Tensor, q: Tensor, scale: Float) throws

  // MARK: Optimiser
  /// SGD with momentum and weight decay; where `mask` is 0 the weight and its velocity stay exactly 0:
  /// `g = (grad + wd * w) * m`, `v = (mu * v + g) * m`, `w = (w - lr * v) * m`.
  func sgdStep(weight: Tensor, grad: Tensor, velocity: Tensor, mask: Tensor?, hyper: SGDHyper) throws

  // MARK: Attacks
  /// Fused PGD step on a batch: `d = x_adv - x + alpha * dir(g)`, where dir is sign(g) (L-inf) or
  /// g / ||g||_2 per sample (L2); `d` is projected onto the eps-ball and `x_adv = clamp(x + d, 0, 1)`.
  func pgdStep(xAdv: Tensor, x: Tensor, grad: Tensor, alpha: Float, eps: Float, norm: PerturbationNorm) throws
  /// `x_adv = clamp(x + P_eps(delta), 0, 1)`: places a (random) start inside the ball.
  func pgdProject(xAdv: Tensor, x: Tensor, delta: Tensor, eps: Float, norm: PerturbationNorm) throws
  /// `t[i] = low + (high - low) * CounterRandom.unit(i, seed)`: identical on every backend.
  func randomUniform(_ tensor: Tensor, low: Float, high: Float, seed: UInt64) throws

  // MARK: Pruning building blocks (method state: scores, ADMM's Z and U, penalties)
  /// `y = alpha * x + beta * y`.
  func axpby(y: Tensor, x: Tensor, alpha: Float, beta: Float) throws
  /// One number from all of `x` into `result[0]`: its sum, sum of squares, sum of absolute values
  /// or largest absolute value (two stages on the device, double accumulation on the CPU).
  func reduce(_ x: Tensor, into result: Tensor, _ reduction: Reduction) throws
  /// `mask = 1` on the `keep` entries of largest |scores| and 0 elsewhere, exactly `keep` of them:
  /// ties at the threshold go to the lower index. Sort-free on the device (a bisection on the
  /// values' bit patterns, then a prefix count of the ties); the CPU reference sorts.
  func topKMask(mask: Tensor, scores: Tensor, keep: Int) throws

  // MARK: Attack building blocks (per-sample state stays on the device; see AttackOps.swift)
  /// Per-sample attack objective of the logits, and `dLogits = scale * dLoss/dLogits` when given.
  /// `targets` (class indices as floats) are needed by the targeted losses only.
  func attackLoss(
    _ loss: AttackLoss, losses: Tensor, dLogits: Tensor?, logits: Tensor, labels: Tensor, targets: Tensor?, scale: Float) throws
  /// `flags[n] = 1` where the first maximum of `logits[n]` is not `labels[n]`, else 0.
  func misclassified(flags: Tensor, logits: Tensor, labels: Tensor) throws
  /// `destination[n, :] = source[n, :]` where `flags[n] != 0`; rows are `count / N` values.
  func selectRows(destination: Tensor, source: Tensor, where flags: Tensor) throws
  /// APGD's momentum step with a step size per sample (Croce & Hein 2020), P = projection onto
  /// the eps-ball around x intersected with [0, 1]:
  /// `z = P(x_k + eta_n dir(g))`, `x_{k+1} = P(x_k + m (z - x_k) + (1 - m)(x_k - x_{k-1}))`;
  /// `xPrevious` becomes x_k, `xAdv` becomes x_{k+1}. L-inf and L2.
  func apgdStep(
    xAdv: Tensor, xPrevious: Tensor, x: Tensor, grad: Tensor, stepSizes: Tensor, momentum: Float, eps: Float,
    norm: PerturbationNorm) throws
  /// APGD's per-sample bookkeeping after a step with `losses`: `improved = loss > best`,
  /// `best = max(best, loss)`, `increases += loss > previous`, `previous = loss`.
  func apgdTrack(losses: Tensor, bestLosses: Tensor, previousLosses: Tensor, increases: Tensor, improved: Tensor) throws
  /// FAB's step (Croce & Hein 2020): with `difference` f(x_k) and `grad` its input gradient, f a
  /// function whose zero set is the decision boundary (FAB-T: `z_y - z_t`), project x_k and the original x onto the linearised boundary within [0, 1]
  /// (minimal step d1, d2 in `norm`), `alpha = clamp(|d1| / (|d1| + |d2|), 0, alphaMax)`,
  /// `x_{k+1} = clamp((x_k + eta d1)(1 - alpha) + (x + eta d2) alpha, 0, 1)`.
  func fabStep(
    xAdv: Tensor, x: Tensor, grad: Tensor, difference: Tensor, norm: PerturbationNorm, alphaMax: Float, eta: Float) throws
  /// Minimum-norm bookkeeping (FAB, FMN): where `flags[n]`, the distance `t = |x_adv - x|_p`
  /// replaces `bestNorms[n]` (and x_adv the row of `best`) when smaller; then FAB's backward step
  /// `x_adv = x + beta (x_adv - x)` (none when beta is 1).
  func keepSmallestAdversarial(
    xAdv: Tensor, x: Tensor, flags: Tensor, bestNorms: Tensor, best: Tensor, norm: PerturbationNorm, beta: Float) throws
  /// Square attack's L-inf proposal: `xNew = xBest` except on one square of side `side` per
  /// sample, where each channel is `clamp(x + eps * s_c, 0, 1)` with a random sign s_c; square
  /// positions and signs come from `CounterRandom` with `seed` and the sample's `ids[n]` (its index
  /// in the data set, so draws do not depend on batching), identically on every backend.
  func squareProposal(xNew: Tensor, xBest: Tensor, x: Tensor, ids: Tensor, eps: Float, side: Int, seed: UInt64) throws
  /// Square attack's L2 proposal: with delta = xBest - x, a new pattern (the meta pseudo-Gaussian
  /// square of `PseudoGaussianSquare`, one random sign per channel, plus window 1's old delta
  /// normalised per channel) replaces window 1, window 2 is emptied, the two rescaled so the energy
  /// of both windows (and what the ball has left) moves into window 1; then
  /// `xNew = clamp(x + eps * delta / |delta|_2, 0, 1)`. Windows and signs come from `CounterRandom`
  /// with `seed` and `ids[n]`. At most 4 channels.
  func squareL2Proposal(xNew: Tensor, xBest: Tensor, x: Tensor, ids: Tensor, eps: Float, side: Int, seed: UInt64) throws
  /// Square's acceptance: where `bestMargins[n] > 0` (not yet fooled) and `margins[n] < bestMargins[n]`,
  /// the proposal's row and margin become the best; `accepted[n]` (when given) says 1 there, else 0.
  func squareAccept(xBest: Tensor, bestMargins: Tensor, xNew: Tensor, margins: Tensor, accepted: Tensor?) throws
  /// Windows of a batch of planes (Square's incremental evaluation): `out[n, c, i, j] =
  /// x[n, c, top + i, left + j]` with (top, left) = (corners[2n], corners[2n + 1]), 0 outside x's plane.
  func cropWindows(out: Tensor, x: Tensor, corners: Tensor) throws
  /// The inverse: `window[n, c, i, j]`, the value of a plane of size `plane` at (windowCorners[2n] + i,
  /// windowCorners[2n + 1] + j), is written to `into` at that position less (intoCorners[2n],
  /// intoCorners[2n + 1]) (nil: `into` is the whole plane), where the position is inside both the
  /// plane and `into`; only for rows with `rows[n] != 0` when given.
  func pasteWindows(
    into: Tensor, intoCorners: Tensor?, window: Tensor, windowCorners: Tensor, plane: (height: Int, width: Int), rows: Tensor?) throws
  /// One FMN step (Pintor et al. 2021) from `xAdv = x + delta`, given the gradient of the loss to
  /// minimise and its value: keeps the smallest adversarial delta (`flags`), adapts the radius
  /// `epsilons`, moves `delta -= alpha * v` with `v = momentum * v + g / |g|_2`, projects onto the
  /// radius and [0, 1]. See `FMNStepParameters` for the radius rule.
  func fmnStep(xAdv: Tensor, x: Tensor, grad: Tensor, losses: Tensor, flags: Tensor, state: FMNState, parameters: FMNStepParameters) throws
}

extension Backend {
  public func squareAccept(xBest: Tensor, bestMargins: Tensor, xNew: Tensor, margins: Tensor) throws {
    try squareAccept(xBest: xBest, bestMargins: bestMargins, xNew: xNew, margins: margins, accepted: nil)
  }

  public func conv2dForward(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, geometry: ConvGeometry) throws {
    try conv2dForward(y: y, x: x, weight: weight, bias: bias, geometry: geometry, relu: false)
  }

  public func conv2dBackwardData(dx: Tensor, dy: Tensor, weight: Tensor, geometry: ConvGeometry) throws {
    try conv2dBackwardData(dx: dx, dy: dy, weight: weight, geometry: geometry, reluOutput: nil)
  }

  public func batchNormForward(
    y: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, invStd: Tensor,
    runningMean: Tensor, runningVar: Tensor, training: Bool, momentum: Float, eps: Float
  ) throws {
    try batchNormForward(
      y: y, x: x, gamma: gamma, beta: beta, mean: mean, invStd: invStd, runningMean: runningMean, runningVar: runningVar, training: training,
      momentum: momentum, eps: eps, relu: false)
  }

  public func batchNormBackward(
    dx: Tensor?, dGamma: Tensor?, dBeta: Tensor?, dy: Tensor, x: Tensor, gamma: Tensor, mean: Tensor, invStd: Tensor, training: Bool
  ) throws {
    try batchNormBackward(
      dx: dx, dGamma: dGamma, dBeta: dBeta, dy: dy, x: x, gamma: gamma, mean: mean, invStd: invStd, training: training, reluOutput: nil)
  }

  /// A zero tensor with the shape of `like`.
  public func zeros(like t: Tensor) throws -> Tensor { try zeros(t.shape) }

  /// Keeps nothing: a backend that derives nothing from weights it could keep.
  public func freeze(_ tensor: Tensor) {}
}
