import Foundation

// Convolutions and GEMMs on our own kernels (kernels/igemm.cl): implicit GEMM over NCHW tensors,
// no column buffer, bias and ReLU in the output pass, the ReLU mask read while dy is gathered.
extension OpenCLBackend {
  /// Flags of `conv_igemm`.
  private enum ConvFlag {
    static let bias = 1
    static let relu = 2
    static let gate = 4
    static let transposed = 8
    static let padded = 16
  }

  /// A zero-bordered copy of `source`'s planes for a stride-1 convolution (`PADDED`): `border`
  /// zeros around each plane, the ReLU mask applied when `gate` is given, and one vector of slack
  /// at the end for the last block's loads.
  private func paddedCopy(of source: Tensor, gate: Tensor?, planes: Int, h: Int, w: Int, border: Int) throws -> (Tensor, Int, Int) {
    let (ph, pw) = (h + 2 * border, w + 2 * border)
    let copy = try padded.reserve(planes * ph * pw + tunables.pix, context: context, device: device)
    try launch(
      "pad_planes", items: planes * ph + 1,
      [
        .buffer(copy), .buffer(source), .buffer(gate ?? source), .int(gate == nil ? 0 : 1), .int(planes), .int(h), .int(w), .int(border),
        .int(border), .int(ph), .int(pw), .int(tunables.pix),
      ])
    return (copy, ph, pw)
  }

  private func roundUp(_ n: Int, _ m: Int) -> Int { (n + m - 1) / m * m }

  /// `out[n, r, plane]` over an output plane of `outH x outW` from a source of `sourceChannels`
  /// planes of `sourceH x sourceW`: the forward pass, or with `.transposed` the input gradient.
  private func convImplicitGemm(
    out: Tensor, source: Tensor, weight: Tensor, bias: Tensor?, gate: Tensor?, flags: Int, g: ConvGeometry,
    sourceChannels: Int, sourceH: Int, sourceW: Int, rows: Int, outH: Int, outW: Int
  ) throws {
    var (source, gate, flags, sourceH, sourceW) = (source, gate, flags, sourceH, sourceW)
    if g.stride == 1 {
      let border = flags & ConvFlag.transposed != 0 ? g.kernel - 1 - g.padding : g.padding
      (source, sourceH, sourceW) = try paddedCopy(of: source, gate: gate, planes: g.batch * sourceChannels, h: sourceH, w: sourceW, border: border)
      gate = nil
      flags = (flags & ~ConvFlag.gate) | ConvFlag.padded
    }
    let perItem = tunables.rowsPerItem == 0 ? rows : tunables.rowsPerItem
    let items = g.batch * ((outH * outW + tunables.pix - 1) / tunables.pix)
    let group = tunables.groupSize
    try launch(
      "conv_igemm", global: [roundUp(items, group), (rows + perItem - 1) / perItem], local: [group, 1],
      [
        .buffer(out), .buffer(source), .buffer(weight), .buffer(bias ?? weight), .buffer(gate ?? source), .int(flags), .int(g.batch),
        .int(sourceChannels), .int(sourceH), .int(sourceW), .int(rows), .int(outH), .int(outW), .int(g.kernel), .int(g.stride),
        .int(g.padding), .int(perItem),
      ],
      label:
        "conv_igemm \(flags & ConvFlag.transposed == 0 ? "fwd" : "dx ") C\(g.inChannels) \(g.height)x\(g.width)->\(g.outChannels) k\(g.kernel)s\(g.stride)"
    )
  }

  func nativeConv2dForward(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry, relu: Bool) throws {
    let flags = (bias == nil ? 0 : ConvFlag.bias) | (relu ? ConvFlag.relu : 0)
    try convImplicitGemm(
      out: y, source: x, weight: weight, bias: bias, gate: nil, flags: flags, g: g, sourceChannels: g.inChannels, sourceH: g.height,
      sourceW: g.width, rows: g.outChannels, outH: g.outHeight, outW: g.outWidth)
  }

  func nativeConv2dBackwardData(dx: Tensor, dy: Tensor, weight: Tensor, geometry g: ConvGeometry, reluOutput: Tensor?) throws {
    let flags = ConvFlag.transposed | (reluOutput == nil ? 0 : ConvFlag.gate)
    try convImplicitGemm(
      out: dx, source: dy, weight: weight, bias: nil, gate: reluOutput, flags: flags, g: g, sourceChannels: g.outChannels,
      sourceH: g.outHeight, sourceW: g.outWidth, rows: g.inChannels, outH: g.height, outW: g.width)
  }

  /// Split over the batch so the work-items fill the device, then the splits summed in order
  /// (deterministic, no atomics).
  func nativeConv2dBackwardWeight(dWeight: Tensor, dBias: Tensor?, dy: Tensor, x: Tensor, geometry g: ConvGeometry) throws {
    let t = tunables
    let (tapBlocks, rowBlocks) = ((g.patchSize + t.weightTaps - 1) / t.weightTaps, (g.outChannels + t.weightRows - 1) / t.weightRows)
    let splits = max(1, min(g.batch, t.weightItems / max(1, tapBlocks * rowBlocks)))
    let perSplit = (g.batch + splits - 1) / splits
    let usedSplits = (g.batch + perSplit - 1) / perSplit
    let weightCount = g.outChannels * g.patchSize
    let partial = try columns.reserve(usedSplits * (weightCount + g.outChannels), context: context, device: device)
    let biasPartial = try transposed.reserve(usedSplits * g.outChannels, context: context, device: device)
    var (source, sourceH, sourceW, flags) = (x, g.height, g.width, 0)
    if g.stride == 1 {
      (source, sourceH, sourceW) = try paddedCopy(of: x, gate: nil, planes: g.batch * g.inChannels, h: g.height, w: g.width, border: g.padding)
      flags = ConvFlag.padded
    }
    let group = t.groupSize
    try launch(
      "conv_igemm_dweight", global: [roundUp(tapBlocks, group), rowBlocks, usedSplits], local: [group, 1, 1],
      [
        .buffer(partial), .buffer(biasPartial), .buffer(dy), .buffer(source), .int(flags), .int(g.batch), .int(g.inChannels), .int(sourceH),
        .int(sourceW), .int(g.outChannels), .int(g.outHeight), .int(g.outWidth), .int(g.kernel), .int(g.stride), .int(g.padding),
        .int(perSplit),
      ], label: "conv_igemm dw  C\(g.inChannels) \(g.height)x\(g.width)->\(g.outChannels) k\(g.kernel)s\(g.stride)")
    try launch("sum_splits", items: weightCount, [.buffer(dWeight), .buffer(partial), .int(weightCount), .int(usedSplits), .int(0)])
    if let dBias {
      try launch("sum_splits", items: g.outChannels, [.buffer(dBias), .buffer(biasPartial), .int(g.outChannels), .int(usedSplits), .int(0)])
    }
  }

  /// `C = alpha * op(A) * op(B) + beta * C`, row-major. `gemm_rows` reads B by rows, so a
  /// transposed B is first copied transposed into scratch (it is the smaller operand in every
  /// layer that asks for it: a weight).
  func nativeGemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor
  ) throws {
    guard m > 0, n > 0 else { return }
    var rowB = b
    if transposeB {
      rowB = try transposed.reserve(k * n, context: context, device: device)
      try launch("transpose", items: k * n, [.buffer(rowB), .buffer(b), .int(n), .int(k)])
    }
    let (aRow, aCol) = transposeA ? (1, m) : (k, 1)
    let group = tunables.groupSize
    try launch(
      "gemm_rows", global: [roundUp((n + tunables.pix - 1) / tunables.pix, group), (m + tunables.rows - 1) / tunables.rows],
      local: [group, 1],
      [.buffer(c), .buffer(a), .buffer(rowB), .int(m), .int(n), .int(k), .int(aRow), .int(aCol), .float(alpha), .float(beta)])
  }
}

extension OpenCLBackend {
  /// The device's FMA throughput (GFLOP/s) at the kernels' vector width, measured by `peak_fma`.
  public func measurePeakGflops() throws -> Double {
    let items = max(256, device.computeUnits * 256)
    let iterations = 2048
    let out = try zeros([items])
    let group = tunables.groupSize
    let global = (items + group - 1) / group * group
    let args: [Arg] = [.buffer(out), .int(iterations), .float(0.5)]
    try launch("peak_fma", global: [global], local: [group], args)
    try synchronize()
    var best = Double.infinity
    for _ in 0..<3 {
      let start = DispatchTime.now().uptimeNanoseconds
      try launch("peak_fma", global: [global], local: [group], args)
      try synchronize()
      best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    return 2 * 8 * Double(tunables.pix * iterations * global) / best / 1e9
  }
}
