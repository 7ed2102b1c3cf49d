import Foundation

// Convolutions and GEMMs on our own kernels (kernels/igemm.cl): implicit GEMM over NCHW tensors,
// no column buffer, bias and ReLU in the output pass, the ReLU mask applied while dy is copied.
extension OpenCLBackend {
  /// Flags of `conv_igemm`.
  private enum ConvFlag {
    static let bias = 1
    static let relu = 2
    static let transposed = 4
    static let splitK = 8
  }

  /// What a conv kernel reads: `planes` planes of `height x width`, each the source's `sourceH`
  /// rows (dilated, for conv_tiled's strided input gradients) after `border` zero rows and
  /// columns (pad_planes), so no tap falls outside it.
  private struct BorderedCopy {
    let tensor: Tensor
    let height: Int
    let width: Int
    let border: Int
    let sourceH: Int
  }

  /// The bordered copy of `planes` planes of `h x w`, `height x width` in all, the ReLU mask
  /// applied when `gate` is given; the source itself when there is nothing to add (no border, no
  /// dilation, no mask: SmallCNN's unpadded convs).
  private func borderedCopy(
    of source: Tensor, gate: Tensor?, planes: Int, h: Int, w: Int, border: Int, dilation: Int = 1, height: Int, width: Int
  ) throws -> BorderedCopy {
    if border == 0 && dilation == 1 && gate == nil && (height, width) == (h, w) {
      return BorderedCopy(tensor: source, height: h, width: w, border: 0, sourceH: h)
    }
    let copy = try reserve(padded, planes * height * width)
    try launch(
      tunables.isTiled ? "pad_elements" : "pad_planes", items: planes * height * (tunables.isTiled ? width : 1),
      [
        .buffer(copy), .buffer(source), .buffer(gate ?? source), .int(gate == nil ? 0 : 1), .int(planes), .int(h), .int(w), .int(border),
        .int(border), .int(dilation), .int(height), .int(width),
      ])
    return BorderedCopy(tensor: copy, height: height, width: width, border: border, sourceH: h)
  }

  /// x bordered by the padding: what the forward and the weight gradient read.
  private func paddedInput(_ x: Tensor, _ g: ConvGeometry) throws -> BorderedCopy {
    try borderedCopy(
      of: x, gate: nil, planes: g.batch * g.inChannels, h: g.height, w: g.width, border: g.padding, height: g.height + 2 * g.padding,
      width: g.width + 2 * g.padding)
  }

  private func roundUp(_ n: Int, _ m: Int) -> Int { (n + m - 1) / m * m }

  /// The side of `transpose_tiles`' square tiles (its TT).
  static let transposeTile = 16

  /// out[m][j][i] = in[m][i][j] for `count` matrices of `rows x cols`: one item per value on a
  /// GPU, a square tile per item on a CPU device.
  private func transpose(_ out: Tensor, _ source: Tensor, rows: Int, cols: Int, count: Int) throws {
    let args: [Arg] = [.buffer(out), .buffer(source), .int(rows), .int(cols), .int(count)]
    if tunables.isTiled { return try launch("transpose", items: count * rows * cols, args) }
    let t = Self.transposeTile
    try launch("transpose_tiles", items: count * ((rows + t - 1) / t) * ((cols + t - 1) / t), args)
  }

  private func shapeLabel(_ g: ConvGeometry) -> String {
    "C\(g.inChannels) \(g.height)x\(g.width)->\(g.outChannels) k\(g.kernel)s\(g.stride)"
  }

  /// `out[n, r, outH x outW]` from `copy` (`sourceChannels` planes per image), each output pixel
  /// reading it at `stride`: on `conv_tiled` where the tunables give tiles (GPUs), else `conv_igemm`.
  /// `phases`: an input gradient's stride, split into that many phases per axis, each with only the
  /// taps that meet a dy value; `conv_tiled` reads them from dy dilated by the stride, `conv_igemm`
  /// from the undilated copy (`strideGradientCopy`), given the forward's `padding`.
  private func convImplicitGemm(
    out: Tensor, copy: BorderedCopy, weight: Tensor, bias: Tensor?, flags: Int, g: ConvGeometry, sourceChannels: Int, rows: Int, outH: Int,
    outW: Int, stride: Int, phases: Int = 1, padding: Int = 0, label: String
  ) throws {
    for py in 0..<phases {
      for px in 0..<phases {
        if tunables.isTiled {
          try convTiled(
            out: out, copy: copy, weight: weight, bias: bias, flags: flags, g: g, sourceChannels: sourceChannels, rows: rows, outH: outH,
            outW: outW, stride: stride, phases: phases, phase: (py, px), label: label)
          continue
        }
        let perItem = tunables.rowsPerItem == 0 ? rows : tunables.rowsPerItem
        let pixels = phaseExtent(outH, py, phases) * phaseExtent(outW, px, phases)
        let items = g.batch * ((pixels + tunables.pix - 1) / tunables.pix)
        let group = tunables.groupSize
        try launch(
          "conv_igemm", global: [roundUp(items, group), (rows + perItem - 1) / perItem], local: [group, 1],
          [
            .buffer(out), .buffer(copy.tensor), .buffer(weight), .buffer(bias ?? weight), .int(flags), .int(g.batch), .int(sourceChannels),
            .int(copy.height), .int(copy.width), .int(rows), .int(outH), .int(outW), .int(g.kernel), .int(stride), .int(perItem),
            .int(copy.border), .int(copy.sourceH), .int(phases), .int(py), .int(px), .int(padding),
          ], label: "conv_igemm \(label)", flops: g.forwardFlops / Double(phases * phases))
      }
    }
  }

  /// How many of `size` pixels phase `phase` of stride `phases` holds (the kernels' phase_extent).
  private func phaseExtent(_ size: Int, _ phase: Int, _ phases: Int) -> Int { (size - phase + phases - 1) / phases }

  /// One phase of `convImplicitGemm` on `conv_tiled`, split over K when its tiles alone would
  /// leave the device mostly idle (fewer than `splitGroups` work-groups per compute unit).
  private func convTiled(
    out: Tensor, copy: BorderedCopy, weight: Tensor, bias: Tensor?, flags: Int, g: ConvGeometry, sourceChannels: Int, rows: Int, outH: Int,
    outW: Int, stride: Int, phases: Int, phase: (y: Int, x: Int), label: String
  ) throws {
    let (tm, tn, tk, side) = (tunables.tileRows, tunables.tileColumns, tunables.tileDepth, 16)
    let columns = g.batch * phaseExtent(outH, phase.y, phases) * phaseExtent(outW, phase.x, phases)
    guard columns > 0 else { return }
    // The taps of this phase that meet a value of the dilated copy (conv_tiled computes the same).
    func taps(_ p: Int) -> Int { (g.kernel - ((copy.border - p) % phases + phases) % phases + phases - 1) / phases }
    let k = sourceChannels * taps(phase.y) * taps(phase.x)
    let tiles = (columns + tn - 1) / tn * ((rows + tm - 1) / tm)
    // Splits enough for splitGroups work-groups per compute unit, each at least four slices of K long.
    let wanted = max(1, min((tunables.splitGroups * device.computeUnits + tiles - 1) / tiles, k / (4 * tk)))
    let perSplit = max(tk, roundUp((k + wanted - 1) / wanted, tk))
    let splits = max(1, (k + perSplit - 1) / perSplit)
    let target = splits > 1 ? try reserve(self.columns, splits * rows * columns) : out
    try launch(
      "conv_tiled", global: [(columns + tn - 1) / tn * side, (rows + tm - 1) / tm * side, splits], local: [side, side, 1],
      [
        .buffer(target), .buffer(copy.tensor), .buffer(weight), .buffer(bias ?? weight), .int(splits > 1 ? flags | ConvFlag.splitK : flags),
        .int(g.batch), .int(sourceChannels), .int(copy.height), .int(copy.width), .int(rows), .int(outH), .int(outW), .int(g.kernel),
        .int(stride), .int(phases), .int(phase.y), .int(phase.x), .int(copy.border), .int(perSplit),
      ], label: "conv_tiled \(label)", flops: g.forwardFlops / Double(phases * phases))
    guard splits > 1 else { return }
    try launch(
      "sum_tiled_splits", items: rows * columns,
      [
        .buffer(out), .buffer(target), .buffer(bias ?? weight), .int(flags), .int(splits), .int(rows), .int(g.batch), .int(outH), .int(outW),
        .int(phases), .int(phase.y), .int(phase.x),
      ])
  }

  func nativeConv2dForward(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry, relu: Bool) throws {
    let flags = (bias == nil ? 0 : ConvFlag.bias) | (relu ? ConvFlag.relu : 0)
    if winogradPays(g, rows: g.outChannels, depth: g.inChannels, outH: g.outHeight, outW: g.outWidth) {
      return try winogradConv(
        out: y, source: x, gate: nil, sourceH: g.height, sourceW: g.width, border: g.padding, weight: weight, bias: bias, flags: flags, g: g,
        rows: g.outChannels, depth: g.inChannels, outH: g.outHeight, outW: g.outWidth, label: "fwd \(shapeLabel(g))")
    }
    try convImplicitGemm(
      out: y, copy: try paddedInput(x, g), weight: weight, bias: bias, flags: flags,
      g: g, sourceChannels: g.inChannels, rows: g.outChannels, outH: g.outHeight, outW: g.outWidth, stride: g.stride,
      label: "fwd \(shapeLabel(g))")
  }

  /// The input gradient is a stride-1 convolution, with the kernel turned by 180 degrees, of dy
  /// dilated by the stride and bordered by `kernel - 1 - padding` zeros; `conv_igemm` computes a
  /// strided one's phases from dy itself (`strideGradientCopy`), with no multiply on a dilation zero.
  func nativeConv2dBackwardData(dx: Tensor, dy: Tensor, weight: Tensor, geometry g: ConvGeometry, reluOutput: Tensor?) throws {
    if winogradPays(g, rows: g.inChannels, depth: g.outChannels, outH: g.height, outW: g.width) {
      return try winogradConv(
        out: dx, source: dy, gate: reluOutput, sourceH: g.outHeight, sourceW: g.outWidth, border: 2 - g.padding, weight: weight, bias: nil,
        flags: ConvFlag.transposed, g: g, rows: g.inChannels, depth: g.outChannels, outH: g.height, outW: g.width,
        label: "dx  \(shapeLabel(g))")
    }
    let copy =
      g.stride > 1 && !tunables.isTiled
      ? try strideGradientCopy(of: dy, gate: reluOutput, g)
      : try borderedCopy(
        of: dy, gate: reluOutput, planes: g.batch * g.outChannels, h: g.outHeight, w: g.outWidth, border: g.kernel - 1 - g.padding,
        dilation: g.stride, height: g.height + g.kernel - 1, width: g.width + g.kernel - 1)
    let rowBlock = tunables.fewRowBlock
    if rowBlock > 0 && g.kernel == 3 && g.stride == 1 && g.inChannels <= Self.fewRowsChannels {
      let blocks = g.batch * ((g.height + rowBlock - 1) / rowBlock) * ((g.width + tunables.pix - 1) / tunables.pix)
      return try launch(
        "conv_few_rows_dx", global: [roundUp(blocks, tunables.groupSize)], local: [tunables.groupSize],
        [
          .buffer(dx), .buffer(copy.tensor), .buffer(weight), .int(g.batch), .int(g.outChannels), .int(copy.height), .int(copy.width),
          .int(g.batch * g.outChannels * copy.height * copy.width), .int(g.inChannels), .int(g.height), .int(g.width),
        ], label: "conv_few_rows dx  \(shapeLabel(g))", flops: g.forwardFlops)
    }
    try convImplicitGemm(
      out: dx, copy: copy, weight: weight, bias: nil, flags: ConvFlag.transposed, g: g, sourceChannels: g.outChannels, rows: g.inChannels,
      outH: g.height, outW: g.width, stride: 1, phases: g.stride, padding: g.padding, label: "dx  \(shapeLabel(g))")
  }

  /// Whether a pass of a convolution runs as Winograd F(4x4, 3x3): 3x3, stride 1, padding at most
  /// 2 (the input gradient's border is 2 - padding), `rows` output and `depth` source planes per
  /// image both at least `winogradMinChannels` (fewer leave the GEMM too short to pay for the
  /// transforms), and at least `winogradMinTiles` 4x4 tiles of `outH x outW` over the batch: with
  /// fewer, streaming the transformed weights (4x the weights) costs more than the products save
  /// (measured on PoCL: ResNet18's 4x4 stage at 8 images 2x slower than the implicit GEMM, even at
  /// 16, 1.3-1.6x faster at 32).
  func winogradPays(_ g: ConvGeometry, rows: Int, depth: Int, outH: Int, outW: Int) -> Bool {
    winogradFits(g, rows: rows, depth: depth) && g.batch >= Self.winogradMinBatch(outH: outH, outW: outW)
  }

  /// The 4x4 output tiles of an `outH x outW` plane: tile rows and tiles per row.
  public static func winogradTiles(outH: Int, outW: Int) -> (rows: Int, columns: Int) { ((outH + 3) / 4, (outW + 3) / 4) }

  /// The batch from which passes over `outH x outW` planes have `winogradMinTiles` tiles.
  public static func winogradMinBatch(outH: Int, outW: Int) -> Int {
    let (th, tw) = winogradTiles(outH: outH, outW: outW)
    return (winogradMinTiles + th * tw - 1) / (th * tw)
  }

  /// `winogradPays` but for the batch: whether the pass can run as Winograd at all.
  public func winogradFits(_ g: ConvGeometry, rows: Int, depth: Int) -> Bool {
    tunables.winograd != 0 && g.kernel == 3 && g.stride == 1 && g.padding <= 2 && min(rows, depth) >= Self.winogradMinChannels
  }

  static let winogradMinChannels = 8
  /// Input gradients of 3x3 stride-1 convolutions with at most this many input channels run on
  /// `conv_few_rows_dx` when `CLTunables.fewRowBlock` is nonzero (the CPU sets; a GPU's is 0
  /// until the bundle's sweep has measured it there).
  static let fewRowsChannels = 4
  static let winogradMinTiles = 32

  /// `out` (`rows` planes of `outH x outW` per image) from its `depth` source planes of
  /// `sourceH x sourceW` per image (kernels/winograd.cl), read through a copy bordered by `border`
  /// zeros and grown to hold every 6x6 tile window, the ReLU's mask `gate` applied. The transformed
  /// weights, tiles and products live in the scratch buffers the implicit GEMM's weight gradient
  /// uses (never in use at the same time).
  private func winogradConv(
    out: Tensor, source: Tensor, gate: Tensor?, sourceH: Int, sourceW: Int, border: Int, weight: Tensor, bias: Tensor?, flags: Int,
    g: ConvGeometry, rows: Int, depth: Int, outH: Int, outW: Int, label: String
  ) throws {
    let (th, tw) = Self.winogradTiles(outH: outH, outW: outW)
    let tiles = g.batch * th * tw
    let copy = try borderedCopy(
      of: source, gate: gate, planes: g.batch * depth, h: sourceH, w: sourceW, border: border, height: 4 * th + 2, width: 4 * tw + 2)
    let pitch = roundUp(tiles, tunables.pix)
    let (blocks, group) = (pitch / tunables.pix, tunables.groupSize)
    let transposedWeights = flags & ConvFlag.transposed != 0
    func transform(into u: Tensor) throws {
      try launch("winograd_weights", items: rows * depth, [.buffer(u), .buffer(weight), .int(rows), .int(depth), .int(transposedWeights ? 1 : 0)])
    }
    // A frozen weight (an attack's folded one) keeps its transform until it is frozen again.
    let u =
      try derived(from: weight, transposedWeights ? "winograd dx" : "winograd fwd", count: 36 * rows * depth, compute: transform)
      ?? {
        let u = try reserve(channelsLast, 36 * rows * depth)
        try transform(into: u)
        return u
      }()
    let v = try reserve(columns, 36 * depth * pitch)
    let m = try reserve(transposed, 36 * rows * pitch)
    try launch(
      "winograd_input", global: [roundUp(blocks, group), depth], local: [group, 1],
      [
        .buffer(v), .buffer(copy.tensor), .int(depth), .int(copy.height), .int(copy.width), .int(th), .int(tw), .int(tiles),
        .int(pitch),
      ], label: "winograd_input \(label)")
    try launch(
      "winograd_gemm", global: [roundUp(blocks, group), (rows + tunables.gemmRows - 1) / tunables.gemmRows, 36], local: [group, 1, 1],
      [.buffer(m), .buffer(u), .buffer(v), .int(rows), .int(depth), .int(pitch)], label: "winograd_gemm \(label)",
      flops: 2.0 * 36 * Double(rows * depth * tiles))
    try launch(
      "winograd_output", global: [roundUp(blocks, group), rows], local: [group, 1],
      [
        .buffer(out), .buffer(m), .buffer(bias ?? weight), .int(flags), .int(rows), .int(outH), .int(outW), .int(th), .int(tw),
        .int(tiles), .int(pitch),
      ], label: "winograd_output \(label)")
  }

  /// dy of a strided convolution bordered for `conv_igemm`'s phases: phase pixel (yy, xx) of phase
  /// (py, px) reads row yy + (py + padding - i) / stride + border for its taps i, so `border` rows
  /// above keep the first row's smallest tap inside, and the rows below reach the last phase row's largest.
  private func strideGradientCopy(of dy: Tensor, gate: Tensor?, _ g: ConvGeometry) throws -> BorderedCopy {
    let s = g.stride
    let border = max(0, (g.kernel - 1 - g.padding + s - 1) / s)
    func extent(_ size: Int, _ out: Int) -> Int {
      (0..<s).map { p in border + phaseExtent(size, p, s) + (p + g.padding) / s }.reduce(border + out, max)
    }
    return try borderedCopy(
      of: dy, gate: gate, planes: g.batch * g.outChannels, h: g.outHeight, w: g.outWidth, border: border,
      height: extent(g.height, g.outHeight), width: extent(g.width, g.outWidth))
  }

  /// From dy channels-last and the bordered copy of x, split over the batch so the work-items
  /// fill the device, then the splits summed in order (deterministic, no atomics).
  func nativeConv2dBackwardWeight(dWeight: Tensor, dBias: Tensor?, dy: Tensor, x: Tensor, geometry g: ConvGeometry) throws {
    let t = tunables
    let (channelBlocks, tapBlocks) = ((g.outChannels + t.pix - 1) / t.pix, (g.patchSize + t.weightTaps - 1) / t.weightTaps)
    let splits = max(1, min(g.batch, t.weightItems / max(1, channelBlocks * tapBlocks)))
    let perSplit = (g.batch + splits - 1) / splits
    let usedSplits = (g.batch + perSplit - 1) / perSplit
    let weightCount = g.outChannels * g.patchSize
    let partial = try reserve(columns, usedSplits * weightCount)
    let biasPartial = try reserve(transposed, usedSplits * g.outChannels)
    let dyt = try reserve(channelsLast, dy.count)
    try transpose(dyt, dy, rows: g.outChannels, cols: g.outPixels, count: g.batch)
    let copy = try paddedInput(x, g)
    let group = t.groupSize
    try launch(
      "conv_igemm_dweight", global: [roundUp(channelBlocks, group), tapBlocks, usedSplits], local: [group, 1, 1],
      [
        .buffer(partial), .buffer(biasPartial), .buffer(dyt), .buffer(copy.tensor), .int(g.batch), .int(g.inChannels), .int(copy.height),
        .int(copy.width),
        .int(g.outChannels), .int(g.outHeight), .int(g.outWidth), .int(g.kernel), .int(g.stride), .int(perSplit),
      ], label: "conv_igemm dw  \(shapeLabel(g))", flops: g.forwardFlops)
    try launch("sum_splits", items: weightCount, [.buffer(dWeight), .buffer(partial), .int(weightCount), .int(usedSplits)])
    if let dBias {
      try launch("sum_splits", items: g.outChannels, [.buffer(dBias), .buffer(biasPartial), .int(g.outChannels), .int(usedSplits)])
    }
  }

  /// `C = alpha * op(A) * op(B) + beta * C`, row-major. A times B transposed (a linear layer's
  /// forward) runs as dot products (`gemm_nt`); the rest on `gemm_rows`, which reads B by rows, a
  /// transposed B (with A transposed too: only the op suite asks) first copied transposed.
  func nativeGemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor
  ) throws {
    guard m > 0, n > 0 else { return }
    let group = tunables.groupSize
    if transposeB && !transposeA {
      try launch(
        "gemm_nt", global: [roundUp((n + 3) / 4, group), (m + 3) / 4], local: [group, 1],
        [.buffer(c), .buffer(a), .buffer(b), .int(m), .int(n), .int(k), .float(alpha), .float(beta)], flops: 2 * Double(m * n * k))
      return
    }
    var rowB = b
    if transposeB {
      rowB = try reserve(transposed, k * n)
      try transpose(rowB, b, rows: n, cols: k, count: 1)
    }
    let (aRow, aCol) = transposeA ? (1, m) : (k, 1)
    try launch(
      "gemm_rows", global: [roundUp((n + tunables.pix - 1) / tunables.pix, group), (m + tunables.gemmRows - 1) / tunables.gemmRows],
      local: [group, 1],
      [.buffer(c), .buffer(a), .buffer(rowB), .int(m), .int(n), .int(k), .int(aRow), .int(aCol), .float(alpha), .float(beta)],
      flops: 2 * Double(m * n * k))
  }

  /// The device's FMA throughput (GFLOP/s) at the kernels' vector width, measured by `peak_fma`.
  public func measurePeakGflops() throws -> Double {
    let items = max(256, device.computeUnits * 256)
    let iterations = 2048
    let out = try zeros([items])
    let group = tunables.groupSize
    let global = roundUp(items, group)
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
