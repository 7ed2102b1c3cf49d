/// A pruned convolution (or linear) weight kept as its nonzeros only, in the two orders the sparse
/// kernels read: by output channel for the forward pass and by input channel for the input
/// gradient, so that both gather without atomics and sum in a fixed order.
///
/// A linear layer `[O, I]` is the 1x1 convolution of a 1x1 image (`kernel` 1). Indices travel in
/// float tensors as Int32 bit patterns (tensors are float32 on every backend); the kernels read
/// the same buffers as `int`.
public struct SparseConvWeights {
  public let outChannels: Int
  public let inChannels: Int
  public let kernel: Int
  /// Nonzero weights.
  public let nonzeros: Int
  /// `rowStart[o] ..< rowStart[o + 1]` are output channel o's entries; `rowIndex` holds
  /// `(c * K + i) * K + j`, `rowValue` the weight.
  public let rowStart: Tensor
  public let rowIndex: Tensor
  public let rowValue: Tensor
  /// The same entries by patch row `r = (c * K + i) * K + j` (the weight matrix's columns), so
  /// input channel c's are `colStart[c * K * K] ..< colStart[(c + 1) * K * K]`; `colIndex` holds
  /// `(o * K + i) * K + j`.
  public let colStart: Tensor
  public let colIndex: Tensor
  public let colValue: Tensor

  /// The nonzeros on the host, which the layouts below are worked out from.
  let layout: SparseLayout
  /// The backends' layouts of these nonzeros (`SparseGrid`), worked out once per stack layout:
  /// the CPU's on the host, OpenCL's uploaded.
  let hostPlans = SparsePlans<SparsePlan>()
  let devicePlans = SparsePlans<DeviceSparsePlan>()

  /// The forward pass's source offset of each nonzero on `grid`, worked out once per layout.
  func hostForwardOffsets(_ grid: SparseGrid) -> [Int64] {
    hostPlans.plan(grid.key(inputGradient: false)) { .init(offsets: grid.forwardOffsets(layout), starts: [], values: []) }.offsets
  }

  public var density: Double { Double(nonzeros) / Double(max(1, outChannels * inChannels * kernel * kernel)) }

  /// Compresses `dense` (`[O, C, K, K]` or `[O, I]`, row-major) on `backend`.
  public init(dense: [Float], shape: [Int], backend: Backend) throws {
    precondition(shape.count == 4 || shape.count == 2, "sparse weights are [O, C, K, K] or [O, I], got \(shape)")
    precondition(shape.count == 2 || shape[2] == shape[3], "square kernels only, got \(shape)")
    precondition(dense.count == shape.reduce(1, *), "\(dense.count) values for shape \(shape)")
    let layout = SparseLayout(dense: dense, outChannels: shape[0], inChannels: shape[1], kernel: shape.count == 4 ? shape[2] : 1)
    outChannels = layout.outChannels
    inChannels = layout.inChannels
    kernel = layout.kernel
    nonzeros = layout.rowValue.count
    func indices(_ v: [Int32]) throws -> Tensor { try floats(v.map { Float(bitPattern: UInt32(bitPattern: $0)) }) }
    // A fully pruned layer still gets one-element buffers (OpenCL has no empty buffers).
    func floats(_ v: [Float]) throws -> Tensor { try backend.upload(v.isEmpty ? [0] : v, shape: [max(1, v.count)]) }
    rowStart = try indices(layout.rowStart)
    rowIndex = try indices(layout.rowIndex)
    rowValue = try floats(layout.rowValue)
    colStart = try indices(layout.colStart)
    colIndex = try indices(layout.colIndex)
    colValue = try floats(layout.colValue)
    self.layout = layout
  }

  /// The dense geometry this weight convolves with, for shape checks.
  func check(_ g: ConvGeometry, _ op: String) {
    precondition(
      g.outChannels == outChannels && g.inChannels == inChannels && g.kernel == kernel,
      "\(op): sparse weight [\(outChannels), \(inChannels), \(kernel), \(kernel)] does not match \(g)")
  }
}

/// The host-side compression: both orders of the nonzeros, each sorted by its own key so the
/// kernels' sums run in a fixed order.
struct SparseLayout {
  let outChannels: Int
  let inChannels: Int
  let kernel: Int
  var rowStart: [Int32] = [0]
  var rowIndex: [Int32] = []
  var rowValue: [Float] = []
  var colStart: [Int32] = [0]
  var colIndex: [Int32] = []
  var colValue: [Float] = []

  init(dense: [Float], outChannels o: Int, inChannels c: Int, kernel k: Int) {
    precondition(dense.count < Int(Int32.max), "a weight of \(dense.count) values is too large to index with Int32")
    (outChannels, inChannels, kernel) = (o, c, k)
    let patch = c * k * k
    for oc in 0..<o {
      for r in 0..<patch where dense[oc * patch + r] != 0 {
        rowIndex.append(Int32(r))
        rowValue.append(dense[oc * patch + r])
      }
      rowStart.append(Int32(rowValue.count))
    }
    for r in 0..<patch {
      for oc in 0..<o where dense[oc * patch + r] != 0 {
        colIndex.append(Int32(oc * k * k + r % (k * k)))
        colValue.append(dense[oc * patch + r])
      }
      colStart.append(Int32(colValue.count))
    }
  }
}
