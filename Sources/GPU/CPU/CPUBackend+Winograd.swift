import CKernels
import Foundation

// 3x3 stride-1 convolutions as Winograd F(2x2, 3x3) or F(4x4, 3x3): (m + 2)^2 GEMMs over
// channels per slice of m x m output tiles instead of one over 9x the columns (2.25x or 4x fewer
// multiplies), and no col2im for the input gradient, which is again a 3x3 stride-1 convolution,
// of dy with the kernel turned (`CKernels/winograd.c`, `winograd4.c`).
extension CPUBackend {
  /// Padding up to 2 keeps the input gradient's padding (2 - padding) non-negative. A conv with
  /// one input channel (SmallCNN's conv1 on grey images) keeps im2col: its 16 GEMMs would run
  /// over one channel, and PGD-10 AT went 176-204 -> 202-223 img/s with im2col there
  /// (alternating runs).
  func usesWinograd(_ g: ConvGeometry) -> Bool {
    winograd && g.kernel == 3 && g.stride == 1 && g.padding <= 2 && min(g.inChannels, g.outChannels) > 1
  }

  /// The forward (`inputGradient` false: x -> y, channels in -> out, padding p; ReLU on the
  /// output when `relu`) or the input gradient (dy -> dx, channels out -> in, padding 2 - p; dy
  /// masked by `reluOutput > 0` when given) of the convolution `g`, over runs of `slice` images
  /// (nil: as many as keep the transformed buffers in L2, see below).
  func winogradPass(
    input: UnsafePointer<Float>, weight: Tensor, bias: UnsafePointer<Float>?, relu: Bool, reluOutput: UnsafePointer<Float>?,
    output: UnsafeMutablePointer<Float>, _ g: ConvGeometry, inputGradient: Bool, slice: Int? = nil
  ) -> ConvSlicePass {
    let (from, to) = inputGradient ? (g.outChannels, g.inChannels) : (g.inChannels, g.outChannels)
    let (inH, inW, outH, outW) =
      inputGradient ? (g.outHeight, g.outWidth, g.height, g.width) : (g.height, g.width, g.outHeight, g.outWidth)
    let padding = inputGradient ? 2 - g.padding : g.padding
    let tile = winogradTile(outHeight: outH, outWidth: outW)
    let (th, tw, xis) = ((outH + tile - 1) / tile, (outW + tile - 1) / tile, (tile + 2) * (tile + 2))
    let tilesPerImage = th * tw
    func transform(_ u: UnsafeMutablePointer<Float>) {
      advprune_winograd_weights(Int64(tile), ptr(weight), Int64(g.outChannels), Int64(g.inChannels), inputGradient ? 1 : 0, u)
    }
    let pass = inputGradient ? "input gradient" : "forward"
    let u = derivedWeights(weight, "winograd \(tile) \(pass)", count: xis * from * to, transform)
    // Slices sized like the im2col path's, so both transformed buffers of a slice stay in L2;
    // but each product reads its weight matrix once per slice, so a slice spans at least
    // `minimumProductColumns` tiles.
    let cached = maxColumnFloats / (xis * max(from, to) * tilesPerImage)
    let images = slice ?? max(1, min(g.batch, max(cached, (Self.minimumProductColumns + tilesPerImage - 1) / tilesPerImage)))
    func stride(_ channels: Int, _ tiles: Int) -> Int { Self.winogradStride(channels: channels, tiles: tiles) }
    return ConvSlicePass(
      slice: images, columns: xis * stride(from, images * tilesPerImage), other: xis * stride(to, images * tilesPerImage),
      weights: xis * from * to, minimumSlice: (Self.minimumDepthFirstColumns + tilesPerImage - 1) / tilesPerImage
    ) { scratch, first, nb in
      let (v, m) = scratch
      let tiles = nb * tilesPerImage
      let (vs, ms) = (stride(from, tiles), stride(to, tiles))
      let offset = first * from * inH * inW
      advprune_winograd_input(
        Int64(tile), input + offset, reluOutput.map { $0 + offset }, Int64(nb), Int64(from), Int64(inH), Int64(inW), Int64(padding),
        Int64(th), Int64(tw), v)
      for xi in 0..<xis { self.product(m: to, n: tiles, k: from, a: u + xi * to * from, b: v + xi * vs, c: m + xi * ms) }
      advprune_winograd_output(
        Int64(tile), m, Int64(nb), Int64(to), Int64(outH), Int64(outW), bias, relu ? 1 : 0, output + first * to * outH * outW)
    }
  }

  /// `weight` rearranged by `transform` for a fast path. Frozen weights (folded for an evaluation
  /// or a training batch's attack) are transformed once per freeze, not at every call: for
  /// ResNet18 at small batches the Winograd transform was a fifth of an attack step.
  func derivedWeights(
    _ weight: Tensor, _ key: String, count: Int, _ transform: (UnsafeMutablePointer<Float>) -> Void
  ) -> UnsafePointer<Float> {
    if let frozen = weight.storage as? CPUStorage, frozen.isFrozen { return frozen.derived(key, count: count, compute: transform) }
    let scratch = transformedWeights.reserve(count)
    transform(scratch)
    return UnsafePointer(scratch)
  }

  /// Floats from one transformed element's channels to the next's: `channels * tiles` rounded up
  /// to an odd number of 64-byte lines (`advprune_winograd_stride`).
  static func winogradStride(channels: Int, tiles: Int) -> Int {
    Int(advprune_winograd_stride(Int64(channels), Int64(tiles)))
  }

  /// ResNet18's deepest layers (4x4 planes, 512 channels) have 1 to 4 tiles per image, so slices
  /// sized by the cache alone ran products 14 to 56 columns wide that mostly re-read 1 MiB of
  /// weights: PGD-10 AT 8.0 -> 8.8-9.0 img/s with at least 128 columns (256-512 alike, 1024
  /// slower: the buffers leave the cache).
  static let minimumProductColumns = 128

  /// Depth-first runs keep slices small for the cache, but not below this many tiles per product:
  /// the compact ResNet18's 8x8 stage (4 tiles per image) ran its blocks in 302-309 ms per PGD-40
  /// at one image per slice, 208-211 at two, 152-160 at four, against 166-202 op by op.
  static let minimumDepthFirstColumns = 16

  /// F(4x4, 3x3) where output rows are at least 4 wide and its 36 products per 4x4 tile are fewer
  /// than F(2x2, 3x3)'s 16 per 2x2 tile over the plane (partial tiles counted whole). On
  /// narrow planes its output transform had cost up to 1.7x F(2x2)'s per output (packed tile rows
  /// leave lanes empty and shuffle every load), so SmallCNN had kept F(2x2); with those planes in
  /// stream order (`winograd4.c`) SmallCNN's PGD-10 AT went 285-298 -> 313-328 img/s with F(4x4) on
  /// all three 3x3 convs (8 to 26 wide, alternating runs; level at width 0.25 and 0.5), and
  /// ResNet18's with its 8x8 stage added 8.2-9.3 -> 8.2-9.8 img/s; with its 4x4 stage too (one
  /// tile per image, 16 per vector in stream order; image order since, `winograd4.c`) 7.5-8.1 ->
  /// 8.1-9.3 img/s, and PGD-40 of the compact ResNet18 at 75 % filters 10 % faster (alternating
  /// runs).
  func winogradTile(outHeight: Int, outWidth: Int) -> Int {
    if let winogradTile { return winogradTile }
    func products(_ m: Int) -> Int { (m + 2) * (m + 2) * ((outHeight + m - 1) / m) * ((outWidth + m - 1) / m) }
    return outWidth >= 4 && products(4) < products(2) ? 4 : 2
  }

}
