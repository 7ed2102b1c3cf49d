// Parity cases of the sparse convolution: the conv geometries of `convCases` (both strides, with
// and without padding, a 1x1 kernel) and a linear layer as a 1x1 image, at two densities, with
// one output channel and one input channel fully pruned so empty rows and columns are covered;
// the sparser one with the ReLU fused into the forward and its mask into the input gradient.
extension OpSuite {
  static func sparseCases() -> [OpCase] {
    // The last: enough nonzeros per row (both orders) that OpenCL's grid rows run tile by tile.
    let geometries =
      convGeometries + [
        ConvGeometry(batch: 5, inChannels: 33, height: 1, width: 1, outChannels: 7, kernel: 1),
        ConvGeometry(batch: 2, inChannels: 24, height: 10, width: 10, outChannels: 8, kernel: 3, padding: 1),
      ]
    return geometries.flatMap { g in
      [0.3, 0.05].map { density in
        OpCase(
          op: "sparse_conv2d", shape: "\(g) density \(density)\(density < 0.1 ? " relu" : "")", atol: 1e-4, rtol: 1e-4,
          inputs: { rng in
            [
              rng.uniformArray(g.inputShape.reduce(1, *)), sparseWeight(g, density: density, &rng),
              rng.uniformArray(g.outChannels), rng.uniformArray(g.outputShape.reduce(1, *)),
            ]
          },
          run: { b, v in
            let weights = try SparseConvWeights(dense: v[1], shape: g.weightShape, backend: b)
            let (y, dx) = (try b.zeros(g.outputShape), try b.zeros(g.inputShape))
            try b.sparseConv2dForward(
              y: y, x: try b.upload(v[0], shape: g.inputShape), weights: weights, bias: try b.upload(v[2], shape: [g.outChannels]), geometry: g,
              relu: density < 0.1)
            // The sparser case's gradient goes through the ReLU's mask (the forward's zeros).
            try b.sparseConv2dBackwardData(
              dx: dx, dy: try b.upload(v[3], shape: g.outputShape), weights: weights, geometry: g, reluOutput: density < 0.1 ? y : nil)
            return try [y, dx].map(b.download)
          })
      }
    }
  }

  /// Layouts of the resident grid's cases: a residual and a bias, neither, a batch long enough
  /// that the CPU splits its points between two workers, and enough nonzeros per row that
  /// OpenCL's grid rows run tile by tile.
  static let residentGridLayouts: [(ResidentGrid, inChannels: Int, outChannels: Int, density: Double, residual: Bool)] = [
    (ResidentGrid(batch: 3, height: 5, width: 7), 4, 6, 0.3, true),
    (ResidentGrid(batch: 2, height: 9, width: 9), 3, 5, 0.05, false),
    (ResidentGrid(batch: 10, height: 30, width: 30), 2, 3, 0.5, true),
    (ResidentGrid(batch: 2, height: 6, width: 6), 16, 8, 0.4, true),
  ]

  /// Activations kept on the grid: `x` (and the residual) copied on, the conv from grid to grid,
  /// the result copied off; the raw grid is compared too, so the border is zero on both.
  static func residentGridCases() -> [OpCase] {
    residentGridLayouts.map { (r, c, o, density, withResidual) in
      let g = r.geometry(inChannels: c, outChannels: o)
      return OpCase(
        op: "resident_conv", shape: "\(g) density \(density)\(withResidual ? " residual" : "")", atol: 1e-4, rtol: 1e-4,
        inputs: { rng in
          [
            rng.uniformArray(g.inputShape.reduce(1, *), -1, 1), sparseWeight(g, density: density, &rng), rng.uniformArray(o, -1, 1),
            rng.uniformArray(g.outputShape.reduce(1, *), -1, 1),
          ]
        },
        run: { b, v in
          let weights = try SparseConvWeights(dense: v[1], shape: g.weightShape, backend: b)
          let (source, out) = (try b.zeros([r.floats(channels: c)]), try b.zeros([r.floats(channels: o)]))
          try b.sparseGridEnter(grid: source, x: try b.upload(v[0], shape: g.inputShape), layout: r)
          let residual = withResidual ? try b.zeros([r.floats(channels: o)]) : nil
          if let residual { try b.sparseGridEnter(grid: residual, x: try b.upload(v[3], shape: g.outputShape), layout: r) }
          try b.sparseGridConv(
            out: out, source: source, weights: weights, bias: withResidual ? try b.upload(v[2], shape: [o]) : nil, residual: residual, layout: r)
          let y = try b.zeros(g.outputShape)
          try b.sparseGridLeave(y: y, grid: out, layout: r)
          return [try b.download(y), Array(try b.download(out).prefix(o * r.channelFloats))]
        })
    }
  }

  /// Convs between two resident grids: ResNet's strided 3x3 and 1x1 shortcut, odd planes (the
  /// last phase row past the grid), a 1x1 channel change, and a 3x3 stride-1 conv this way too.
  static let residentBetweenGrids: [(ConvGeometry, density: Double, relu: Bool)] = [
    (ConvGeometry(batch: 2, inChannels: 3, height: 8, width: 8, outChannels: 5, kernel: 3, stride: 2, padding: 1), 0.4, true),
    (ConvGeometry(batch: 2, inChannels: 3, height: 7, width: 9, outChannels: 4, kernel: 3, stride: 2, padding: 1), 0.3, false),
    (ConvGeometry(batch: 2, inChannels: 4, height: 6, width: 6, outChannels: 3, kernel: 1, stride: 2), 0.5, false),
    (ConvGeometry(batch: 3, inChannels: 4, height: 5, width: 5, outChannels: 6, kernel: 1), 0.5, true),
    (ConvGeometry(batch: 2, inChannels: 3, height: 6, width: 5, outChannels: 4, kernel: 3, padding: 1), 0.3, true),
  ]

  /// `residentBetweenGrids` on a backend: `x` copied onto its grid, the conv onto the output's,
  /// the result copied off; the raw output grid too.
  static func betweenGrids(_ b: Backend, _ g: ConvGeometry, relu: Bool, x: [Float], w: [Float], bias: [Float]) throws -> [[Float]] {
    let (from, to) = (
      ResidentGrid(batch: g.batch, height: g.height, width: g.width), ResidentGrid(batch: g.batch, height: g.outHeight, width: g.outWidth)
    )
    let (source, out) = (try b.zeros([from.floats(channels: g.inChannels)]), try b.zeros([to.floats(channels: g.outChannels)]))
    try b.sparseGridEnter(grid: source, x: try b.upload(x, shape: g.inputShape), layout: from)
    try b.sparseGridConv(
      out: out, source: source, weights: try SparseConvWeights(dense: w, shape: g.weightShape, backend: b),
      bias: try b.upload(bias, shape: [g.outChannels]), relu: relu, geometry: g, from: from, to: to)
    let y = try b.zeros(g.outputShape)
    try b.sparseGridLeave(y: y, grid: out, layout: to)
    return [try b.download(y), Array(try b.download(out).prefix(g.outChannels * to.channelFloats))]
  }

  static func residentBetweenGridsCases() -> [OpCase] {
    residentBetweenGrids.map { (g, density, relu) in
      OpCase(
        op: "resident_conv", shape: "\(g) density \(density)\(relu ? " relu" : "") between grids", atol: 1e-4, rtol: 1e-4,
        inputs: { rng in
          [rng.uniformArray(g.inputShape.reduce(1, *)), sparseWeight(g, density: density, &rng), rng.uniformArray(g.outChannels)]
        },
        run: { b, v in try betweenGrids(b, g, relu: relu, x: v[0], w: v[1], bias: v[2]) })
    }
  }

  /// A random weight keeping about `density` of its entries, with output channel 0 and input
  /// channel 1 (when there is one) entirely zero.
  public static func sparseWeight(_ g: ConvGeometry, density: Double, _ rng: inout SeededRNG) -> [Float] {
    let kk = g.kernel * g.kernel
    var w = rng.uniformArray(g.weightShape.reduce(1, *))
    for r in w.indices {
      let (o, c) = (r / (g.inChannels * kk), (r / kk) % g.inChannels)
      if o == 0 || (c == 1 && g.inChannels > 2) || Double(rng.uniform(0, 1)) >= density { w[r] = 0 }
    }
    return w
  }
}
