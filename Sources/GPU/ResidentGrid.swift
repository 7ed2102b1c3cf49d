/// Activations kept on the sparse grid between layers (forward-only passes of a pruned model).
///
/// The wide output of a 3x3, stride-1, padding-1 conv on `SparseGrid`'s layout, written
/// `pitch + 1` grid points further on, is the next such conv's zero-padded input but for its
/// border: output (n, y, x) sits at (n*rows + y)*pitch + x, and padded pixel (y + 1, x + 1) of
/// image n at (n*rows + y + 1)*pitch + x + 1. The points that are not outputs (two columns past
/// each row, two rows between images) land exactly on the padding, so zeroing the border again
/// makes the next layer's input without copying a plane. A chain of such layers (ResNet's stem
/// and identity blocks, the residual sum on the grid too) then copies onto the grid once and
/// back once, where each layer copied on and off before: at 99 % sparsity those copies were
/// two thirds of a ResNet18 clean pass on PoCL.
///
/// One layout per batch and plane size; a buffer holds `channels` planes of the whole batch, one
/// stack (`SparseGrid` with `stack == batch`).
public struct ResidentGrid: Equatable, Sendable {
  public let batch: Int
  public let height: Int
  public let width: Int

  public init(batch: Int, height: Int, width: Int) {
    precondition(batch > 0 && height > 0 && width > 0, "ResidentGrid: empty batch or plane")
    (self.batch, self.height, self.width) = (batch, height, width)
  }

  /// The conv from `inChannels` to `outChannels` channels that keeps activations on this grid.
  public func geometry(inChannels: Int, outChannels: Int) -> ConvGeometry {
    ConvGeometry(
      batch: batch, inChannels: inChannels, height: height, width: width, outChannels: outChannels, kernel: 3, stride: 1, padding: 1)
  }

  /// The stacked layout of that conv, the whole batch in one stack.
  func layout(inChannels: Int, outChannels: Int) -> SparseGrid {
    SparseGrid(wholeBatch: geometry(inChannels: inChannels, outChannels: outChannels))
  }

  var pitch: Int { width + 2 }
  var rows: Int { height + 2 }
  /// Grid points of one channel: every image's padded plane.
  var channelFloats: Int { batch * rows * pitch }
  /// How far the outputs are written past the wide grid's own positions: onto the padded interior.
  var outputShift: Int { pitch + 1 }

  /// Points of one image's plane: the period of which wide-grid points are outputs.
  var plane: Int { rows * pitch }

  /// 1 where wide-grid point t (t % plane = y * pitch + x) is an output (y < height, x < width),
  /// 0 where it is a dropped point, which the shifted write puts on the padding: a conv's sums
  /// are multiplied through it, so the border is zero without a pass of its own. Repeated to
  /// `plane + extra` values, so a block of `extra` points starting anywhere in a period reads on.
  func keepPattern(extra: Int) -> [Float] {
    (0..<(plane + extra)).map { t in
      let m = t % plane
      return m % pitch < width && m / pitch < height ? 1 : 0
    }
  }

  /// Points at each end of a channel the shifted write does not reach (the top row and the first
  /// padding point of the first image; the last padding point of the last row and the bottom
  /// row of the last image), which stay zero: `pitch + 1` each.
  var unwrittenEnds: Int { pitch + 1 }

  /// Floats of a buffer holding `channels` channels, with room for the sparse kernels to read a
  /// block of `slack` points past the last run.
  public func floats(channels: Int, slack: Int = 64) -> Int { channels * channelFloats + slack }
}
