// The fused PGD step and the projection of a start point, on the CPU reference backend.
extension CPUBackend {
  public func pgdStep(xAdv: Tensor, x: Tensor, grad: Tensor, alpha: Float, eps: Float, norm: PerturbationNorm) throws {
    let (batch, features) = OpShapes.attack(xAdv: xAdv, x: x, other: grad, op: "pgdStep")
    let (ap, xp, gp) = (ptr(xAdv), ptr(x), ptr(grad))
    switch norm {
    case .linf:
      parallelRanges(x.count) { r in
        for i in r {
          let g = gp[i]
          let s: Float = g > 0 ? 1 : (g < 0 ? -1 : 0)
          let d = min(max(ap[i] - xp[i] + alpha * s, -eps), eps)
          ap[i] = min(max(xp[i] + d, 0), 1)
        }
      }
    case .l1:
      preconditionFailure("pgdStep: L1 balls are for minimum-norm attacks only")
    case .l2:
      for n in 0..<batch {
        let o = n * features
        var gg: Float = 0
        for i in 0..<features { gg += gp[o + i] * gp[o + i] }
        let step = alpha / (gg.squareRoot() + 1e-12)
        var dd: Float = 0
        for i in 0..<features {
          let d = ap[o + i] - xp[o + i] + step * gp[o + i]
          dd += d * d
        }
        let shrink = min(1, eps / (dd.squareRoot() + 1e-12))
        for i in 0..<features {
          let d = (ap[o + i] - xp[o + i] + step * gp[o + i]) * shrink
          ap[o + i] = min(max(xp[o + i] + d, 0), 1)
        }
      }
    }
  }

  public func pgdProject(xAdv: Tensor, x: Tensor, delta: Tensor, eps: Float, norm: PerturbationNorm) throws {
    let (batch, features) = OpShapes.attack(xAdv: xAdv, x: x, other: delta, op: "pgdProject")
    let (ap, xp, dp) = (ptr(xAdv), ptr(x), ptr(delta))
    switch norm {
    case .linf:
      parallelRanges(x.count) { r in
        for i in r { ap[i] = min(max(xp[i] + min(max(dp[i], -eps), eps), 0), 1) }
      }
    case .l1:
      preconditionFailure("pgdProject: L1 balls are for minimum-norm attacks only")
    case .l2:
      for n in 0..<batch {
        let o = n * features
        var dd: Float = 0
        for i in 0..<features { dd += dp[o + i] * dp[o + i] }
        let shrink = min(1, eps / (dd.squareRoot() + 1e-12))
        for i in 0..<features { ap[o + i] = min(max(xp[o + i] + dp[o + i] * shrink, 0), 1) }
      }
    }
  }
}
