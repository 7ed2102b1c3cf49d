/// The closed set of ops advprune runs, implemented by a CPU reference and an OpenCL backend.
///
/// `CPUBackend` defines what is correct; `OpenCLBackend` must agree with it (parity tests and
/// `advprune validate`). Every op writes into tensors the caller allocated, shapes are checked
/// with `precondition`s (a wrong shape is a programmer mistake), and device failures throw.
/// Layouts: images NCHW, conv weights [OC, C, K, K], linear weights [O, I] (PyTorch's layouts).
public protocol Backend: AnyObject {
  /// "cpu" or "opencl:<index> (<device name>)".
  var name: String { get }

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

  // MARK: Convolution (im2col + GEMM over the whole batch)
  /// `y[n, o, p] = sum_{c, i, j} w[o, c, i, j] * x[n, c, p + (i, j)] + b[o]`.
  func conv2dForward(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, geometry: ConvGeometry) throws
  /// Gradient with respect to the input.
  func conv2dBackwardData(dx: Tensor, dy: Tensor, weight: Tensor, geometry: ConvGeometry) throws
  /// Gradients with respect to the weight and the bias.
  func conv2dBackwardWeight(dWeight: Tensor, dBias: Tensor?, dy: Tensor, x: Tensor, geometry: ConvGeometry) throws

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
  /// Non-overlapping k x k average pooling over [N, C, H, W] (H, W multiples of k): global and
  /// adaptive pooling to an exact divisor are this op.
  func avgPoolForward(y: Tensor, x: Tensor, kernel: Int) throws
  /// `dx = dy / k^2` spread over each window.
  func avgPoolBackward(dx: Tensor, dy: Tensor, kernel: Int) throws

  // MARK: Batch normalisation (per channel of [N, C, H, W], M = N*H*W values each)
  /// Training: `mean`, `invStd = 1/sqrt(var + eps)` from the batch (biased variance), running stats
  /// updated as PyTorch does (`r = (1 - momentum) r + momentum * stat`, unbiased variance).
  /// Inference: `mean`, `invStd` from the running stats, which stay unchanged. Then
  /// `y = gamma * (x - mean) * invStd + beta`; `mean` and `invStd` are kept for the backward.
  func batchNormForward(
    y: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, invStd: Tensor,
    runningMean: Tensor, runningVar: Tensor, training: Bool, momentum: Float, eps: Float) throws
  /// `dGamma = sum dy * xhat`, `dBeta = sum dy`, and `dx`: in training mode
  /// `gamma * invStd / M * (M dy - dBeta - xhat dGamma)` (the batch statistics depend on x),
  /// in inference mode `gamma * invStd * dy`.
  func batchNormBackward(
    dx: Tensor?, dGamma: Tensor, dBeta: Tensor, dy: Tensor, x: Tensor, gamma: Tensor, mean: Tensor, invStd: Tensor,
    training: Bool) throws

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
}

extension Backend {
  /// A zero tensor with the shape of `like`.
  public func zeros(like t: Tensor) throws -> Tensor { try zeros(t.shape) }
}
