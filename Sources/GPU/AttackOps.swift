/// What `Backend.reduce` computes over a tensor.
public enum Reduction: Int, CaseIterable, Sendable {
  case sum = 0
  case sumOfSquares = 1
  case sumOfAbsolutes = 2
  case maxAbsolute = 3
}

/// Per-sample objectives attacks take from the logits z of a sample with label y (and target t).
///
/// Sorted descending, z_pi1 >= z_pi2 >= ... (ties broken by the lower class index, on every
/// backend); `max_{i != y} z_i` is the runner-up.
public enum AttackLoss: String, CaseIterable, Sendable {
  /// `logsumexp(z) - z_y` (APGD-CE, PGD).
  case crossEntropy = "ce"
  /// Difference of logits ratio, `-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12)`: invariant
  /// to `z -> a z + b` (a > 0), so it cannot be masked by scaling the logits.
  case dlr
  /// Targeted DLR, `-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)` (APGD-T).
  case targetedDLR = "dlr-t"
  /// Margin `z_y - max_{i != y} z_i`: negative exactly when misclassified (Square, FMN).
  case margin
  /// Targeted margin `z_y - z_t` (FAB-T's boundary is where it is 0).
  case targetedMargin = "margin-t"

  /// The code the kernels switch on.
  public var code: Int {
    switch self {
    case .crossEntropy: 0
    case .dlr: 1
    case .targetedDLR: 2
    case .margin: 3
    case .targetedMargin: 4
    }
  }

  public var isTargeted: Bool { self == .targetedDLR || self == .targetedMargin }
  /// +1 where an attack ascends the loss to fool the model (CE, DLR), -1 where it descends it
  /// (the margins, negative once fooled).
  public var ascentSign: Float { self == .margin || self == .targetedMargin ? -1 : 1 }
  /// DLR needs the third and fourth largest logits.
  public var minimumClasses: Int { self == .dlr ? 3 : (self == .targetedDLR ? 4 : 2) }
}

/// Square-L2's "meta pseudo-Gaussian" square of side s (Andriushchenko et al. 2020): the top
/// s/2 rows hold the concentric-rectangle bump `eta(s/2, s)`, the bottom rows `-eta(s - s/2, s)`,
/// each normalised to unit L2 norm, all divided by sqrt 2 (unit norm), optionally transposed.
/// `eta(X, Y)[a, b] = sum_{k >= kmin}^{K-1} 1/(k+1)^2`, K = max(X/2+1, Y/2+1), kmin the smallest
/// k whose centred rectangle (2k+1 wide) covers (a, b).
public struct PseudoGaussianSquare {
  public let side: Int
  let topRows: Int
  let topNorm: Float
  let bottomNorm: Float

  public init(side: Int) {
    self.side = side
    topRows = side / 2
    topNorm = Self.norm(rows: side / 2, columns: side)
    bottomNorm = Self.norm(rows: side - side / 2, columns: side)
  }

  /// Unnormalised bump value at (a, b) of an X x Y rectangle.
  public static func bump(_ a: Int, _ b: Int, rows: Int, columns: Int) -> Float {
    let (xc, yc) = (rows / 2 + 1, columns / 2 + 1)
    let kmin = max(0, xc - 1 - a, a - xc + 1, yc - 1 - b, b - yc + 1)
    var value: Float = 0
    var k = kmin
    while k < max(xc, yc) {
      value += 1 / Float((k + 1) * (k + 1))
      k += 1
    }
    return value
  }

  static func norm(rows: Int, columns: Int) -> Float {
    var total: Float = 0
    for a in 0..<rows {
      for b in 0..<columns {
        let v = bump(a, b, rows: rows, columns: columns)
        total += v * v
      }
    }
    return max(total.squareRoot(), 1e-12)
  }

  /// The pattern's value at row i, column j.
  public func value(_ i: Int, _ j: Int, transposed: Bool) -> Float {
    let (r, c) = transposed ? (j, i) : (i, j)
    let half: Float = 0.70710678
    if r < topRows { return Self.bump(r, c, rows: topRows, columns: side) / topNorm * half }
    return -Self.bump(r - topRows, c, rows: side - topRows, columns: side) / bottomNorm * half
  }
}

/// Device-side state of an FMN run on a batch of N samples with D features each.
public struct FMNState {
  /// Momentum of the normalised gradient [N, D].
  public let velocity: Tensor
  /// Current radius per sample [N] (+inf before the first estimate).
  public let epsilons: Tensor
  /// Smallest adversarial distance found [N] (+inf while none: finite means found).
  public let bestNorms: Tensor
  /// The adversarial point of `bestNorms` [N, D] (x while none).
  public let best: Tensor
  /// Largest distance inside the box, `|max(x, 1 - x)|_p` [N]: the radius never exceeds it.
  public let worstNorms: Tensor

  public init(velocity: Tensor, epsilons: Tensor, bestNorms: Tensor, best: Tensor, worstNorms: Tensor) {
    self.velocity = velocity
    self.epsilons = epsilons
    self.bestNorms = bestNorms
    self.best = best
    self.worstNorms = worstNorms
  }
}

/// Step parameters of one FMN iteration. The radius rule per sample, with ||delta|| the current
/// distance: adversarial now -> `min(eps (1 - gamma), best)`; adversarial before -> `eps (1 + gamma)`;
/// never -> `(||delta|| + |loss| / ||g||_dual)(1 + gamma)` (a linear estimate of the boundary,
/// overshot by gamma: the reference's exact estimate can pin delta onto the boundary, where float
/// rounding keeps the point correctly classified forever); then `min(eps, worst)`.
public struct FMNStepParameters: Sendable {
  public var norm: PerturbationNorm
  public var alpha: Float
  public var gamma: Float
  public var momentum: Float

  public init(norm: PerturbationNorm, alpha: Float, gamma: Float, momentum: Float) {
    self.norm = norm
    self.alpha = alpha
    self.gamma = gamma
    self.momentum = momentum
  }
}
