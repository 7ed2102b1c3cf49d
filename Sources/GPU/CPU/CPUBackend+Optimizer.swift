// SGD with momentum, weight decay and a mask on the CPU reference backend.
extension CPUBackend {
  public func sgdStep(weight: Tensor, grad: Tensor, velocity: Tensor, mask: Tensor?, hyper: SGDHyper) throws {
    checkSameCount(weight, grad, op: "sgdStep")
    checkSameCount(weight, velocity, op: "sgdStep")
    if let mask { checkSameCount(weight, mask, op: "sgdStep") }
    let (wp, gp, vp, mp) = (ptr(weight), ptr(grad), ptr(velocity), mask.map(ptr))
    let (lr, mu, wd, nesterov) = (hyper.learningRate, hyper.momentum, hyper.weightDecay, hyper.nesterov)
    parallelRanges(weight.count) { r in
      for i in r {
        let m: Float = mp?[i] ?? 1
        let g = (gp[i] + wd * wp[i]) * m
        let v = (mu * vp[i] + g) * m
        vp[i] = v
        wp[i] = (wp[i] - lr * (nesterov ? g + mu * v : v)) * m
      }
    }
  }
}
