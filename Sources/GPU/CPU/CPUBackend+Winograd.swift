import CKernels
import Foundation

// 3x3 stride-1 convolutions as Winograd F(2x2, 3x3): 16 GEMMs over channels per slice of tiles
// instead of one over 9x the columns, 2.25x fewer multiplies, and no col2im for the input
// gradient, which is again a 3x3 stride-1 convolution, of dy with the kernel turned
// (`CKernels/winograd.c`).
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
  /// masked by `reluOutput > 0` when given) of the convolution `g`.
  func winogradConvolution(
    input: UnsafePointer<Float>, weight: Tensor, bias: UnsafePointer<Float>?, relu: Bool, reluOutput: UnsafePointer<Float>?,
    output: UnsafeMutablePointer<Float>, _ g: ConvGeometry, inputGradient: Bool
  ) {
    let (from, to) = inputGradient ? (g.outChannels, g.inChannels) : (g.inChannels, g.outChannels)
    let (inH, inW, outH, outW) =
      inputGradient ? (g.outHeight, g.outWidth, g.height, g.width) : (g.height, g.width, g.outHeight, g.outWidth)
    let padding = inputGradient ? 2 - g.padding : g.padding
    let (th, tw) = ((outH + 1) / 2, (outW + 1) / 2)
    let tilesPerImage = th * tw
    func transform(_ u: UnsafeMutablePointer<Float>) {
      advprune_winograd_weights(ptr(weight), Int64(g.outChannels), Int64(g.inChannels), inputGradient ? 1 : 0, u)
    }
    // Frozen weights (folded for an evaluation or a training batch's attack) are transformed once
    // per freeze, not at every call: for ResNet18 at small batches the transform was a fifth of
    // an attack step.
    let u: UnsafePointer<Float>
    if let frozen = weight.storage as? CPUStorage, frozen.isFrozen {
      u = frozen.derived(inputGradient ? "winograd input gradient" : "winograd forward", count: 16 * from * to, compute: transform)
    } else {
      let scratch = transformedWeights.reserve(16 * from * to)
      transform(scratch)
      u = UnsafePointer(scratch)
    }
    // Slices sized like the im2col path's: both transformed buffers of a slice stay in L2.
    let slice = max(1, min(g.batch, maxColumnFloats / (16 * max(from, to) * tilesPerImage)))
    let scratch = workerScratch(columns: 16 * from * slice * tilesPerImage, other: 16 * to * slice * tilesPerImage)
    forEachSlice(g, size: slice) { t, first, nb in
      let (v, m) = scratch[t]
      let tiles = nb * tilesPerImage
      let offset = first * from * inH * inW
      advprune_winograd_input(
        input + offset, reluOutput.map { $0 + offset }, Int64(nb), Int64(from), Int64(inH), Int64(inW), Int64(padding), Int64(th), Int64(tw), v)
      for xi in 0..<16 { product(m: to, n: tiles, k: from, a: u + xi * to * from, b: v + xi * from * tiles, c: m + xi * to * tiles) }
      advprune_winograd_output(m, Int64(nb), Int64(to), Int64(outH), Int64(outW), bias, relu ? 1 : 0, output + first * to * outH * outW)
    }
  }
}
