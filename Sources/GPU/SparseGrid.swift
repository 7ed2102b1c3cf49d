/// The direct sparse layout both backends run a sparse convolution on, with no im2col: a stack of
/// `stack` images is laid out per input channel as zero-padded planes one under the other (row
/// pitch `pitch`, `rows` rows each), and the output is computed "wide" on the same grid: output
/// pixel (n, y, x) sits at (n*rows + y)*pitch + x and reads input pixel (y+i, x+j) of image n at
/// (n*rows + y+i)*pitch + x+j, so nonzero w[o, c, i, j] is one contiguous shifted run of channel
/// c's stack, offset i*pitch + j. The grid points that are not outputs (the columns past each
/// row, the K-1 rows between images) are computed and dropped when copying out; stacking keeps
/// the runs long on small planes. The input gradient is the transpose: dy on the same grid
/// (zeros off the outputs, `front` zeros before each channel) gathered onto the padded input
/// stack at shift -(i*pitch + j); the zero rows between images keep each image's gradient its own.
///
/// A conv of stride s runs on the padded input's stride phases: phase (a, b) holds padded pixels
/// (s*u + a, s*v + b) on a grid of ceil(Hp/s) rows of pitch ceil(Wp/s), so output (y, x) reads
/// tap (i, j) at (y + i/s, x + j/s) of phase (i%s, j%s) and the stride-1 scheme holds phase by
/// phase (only phases some tap reads are laid out: one for a 1x1 stride-2 shortcut). Its input
/// gradient gathers each phase from the taps of that phase.
struct SparseGrid {
  let g: ConvGeometry
  /// Phases laid out per axis, min(stride, K) (taps i reach phases i % stride), and in all.
  let phasesPerAxis: Int
  let phases: Int
  /// Rows and row pitch of one image's phase plane, which is also the grid of the wide output
  /// and of the wide dy: ceil(Hp / s) and ceil(Wp / s).
  let rows: Int
  let pitch: Int
  let paddedPlane: Int
  /// Images per stack.
  let stack: Int
  /// Zeros before each channel of dy on the grid: the largest shift.
  let front: Int
  /// One phase (or output channel) for a full stack; one input channel, all its phases; one
  /// output channel of dy after `front` zeros.
  let gridStride: Int
  let channelStride: Int
  let segment: Int

  /// The layout for stacks of at most `images` images, as many as keep both the input stack and
  /// the wide outputs near `floats`.
  init(_ g: ConvGeometry, images: Int, floats: Int) {
    self.g = g
    let s = g.stride
    phasesPerAxis = min(s, g.kernel)
    phases = phasesPerAxis * phasesPerAxis
    (rows, pitch) = g.phaseGrid
    paddedPlane = rows * pitch
    stack = max(1, min(images, floats / max(1, max(g.inChannels * phases, g.outChannels) * paddedPlane)))
    let reach = (g.kernel - 1) / s
    front = reach * pitch + reach
    gridStride = stack * paddedPlane
    channelStride = phases * gridStride
    segment = front + gridStride
  }

  /// The layout of the whole batch as one stack (a resident grid's, `ResidentGrid`).
  init(wholeBatch g: ConvGeometry) { self.init(g, images: g.batch, floats: .max) }

  /// What the offsets of a weight's nonzeros depend on.
  func key(inputGradient: Bool) -> SparsePlanKey {
    .init(inputGradient: inputGradient, height: g.height, width: g.width, padding: g.padding, stride: g.stride, stack: stack)
  }

  /// Where tap (i, j) reads within an input channel: its phase's grid, shifted.
  func tap(_ i: Int, _ j: Int) -> Int {
    let s = g.stride
    return ((i % s) * phasesPerAxis + j % s) * gridStride + shift(i, j)
  }

  /// Tap (i, j)'s shift within its phase.
  func shift(_ i: Int, _ j: Int) -> Int { (i / g.stride) * pitch + j / g.stride }

  /// Grid points from the first output to the last: ((nb-1)*rows + OH-1)*pitch + OW.
  func outputRun(_ nb: Int) -> Int { ((nb - 1) * rows + g.outHeight - 1) * pitch + g.outWidth }

  /// Whether an output plane lies on the grid as in NCHW (a 1x1 stride-1 conv, a linear layer).
  var outputsAreWholePlanes: Bool { g.outWidth == pitch && g.outHeight == rows }

  /// The forward pass's source offset of each nonzero, in the stored (output channel) order.
  func forwardOffsets(_ w: SparseLayout) -> [Int64] {
    let (k, kk) = (g.kernel, g.kernel * g.kernel)
    return w.rowIndex.map { r in
      let r = Int(r)
      return Int64((r / kk) * channelStride + tap((r / k) % k, r % k))
    }
  }

  /// The input gradient's order: one output row per (input channel, phase), holding the column
  /// order's runs of each (channel, tap) regrouped by the phase the tap falls in; each nonzero's
  /// offset on dy's grid, each row's first, and the weights in that order.
  func inputGradientOrder(_ w: SparseLayout) -> SparsePlan {
    let (k, kk, s, n) = (g.kernel, g.kernel * g.kernel, g.stride, phasesPerAxis)
    var (offsets, starts, values) = ([Int64](), [Int32(0)], [Float]())
    offsets.reserveCapacity(w.colIndex.count)
    values.reserveCapacity(w.colIndex.count)
    starts.reserveCapacity(g.inChannels * phases + 1)
    for c in 0..<g.inChannels {
      for phase in 0..<phases {
        let (a, b) = (phase / n, phase % n)
        for i in stride(from: a, to: k, by: s) {
          for j in stride(from: b, to: k, by: s) {
            let tap = (c * k + i) * k + j
            for e in Int(w.colStart[tap])..<Int(w.colStart[tap + 1]) {
              let r = Int(w.colIndex[e])
              offsets.append(Int64((r / kk) * segment + front - shift((r / k) % k, r % k)))
              values.append(w.colValue[e])
            }
          }
        }
        starts.append(Int32(values.count))
      }
    }
    return .init(offsets: offsets, starts: starts, values: values)
  }
}

/// What a layout of a weight's nonzeros depends on.
struct SparsePlanKey: Hashable {
  let inputGradient: Bool
  let height: Int
  let width: Int
  let padding: Int
  let stride: Int
  let stack: Int
}

/// Offsets in the order the kernel reads the nonzeros; `starts` and `values` that order's rows
/// and weights where it is not the stored one (empty otherwise).
struct SparsePlan: Sendable {
  let offsets: [Int64]
  let starts: [Int32]
  let values: [Float]
}
