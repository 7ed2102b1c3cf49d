import CKernels

// Strided convolutions on the direct kernels (`CKernels/direct_conv.c`): one image at a time per
// worker, read and written in NCHW, with no column matrix.
extension CPUBackend {
  func usesDirect(_ g: ConvGeometry) -> Bool { directStrided && g.stride > 1 && g.kernel <= 7 }

  /// The forward (`inputGradient` false: input x -> output y, plus bias, then ReLU when `relu`) or
  /// the input gradient (input dy, masked by `reluOutput > 0` when given -> output dx) of `g`,
  /// one image per call of the C kernels.
  func directPass(
    input: UnsafePointer<Float>, weight: Tensor, bias: UnsafePointer<Float>?, relu: Bool, reluOutput: UnsafePointer<Float>?,
    output: UnsafeMutablePointer<Float>, _ g: ConvGeometry, inputGradient: Bool
  ) -> ConvSlicePass {
    let (k, s, pad) = (Int64(g.kernel), Int64(g.stride), Int64(g.padding))
    let (c, o) = (g.inChannels, g.outChannels)
    let pass: Int32 = inputGradient ? 1 : 0
    let count = Int(advprune_direct_conv_weight_count(Int64(o), Int64(c), k, pass))
    let weights = derivedWeights(weight, inputGradient ? "direct input gradient" : "direct forward", count: count) {
      advprune_direct_conv_weights(ptr(weight), Int64(o), Int64(c), k, pass, $0)
    }
    let (inPlane, outPlane) = (c * g.height * g.width, o * g.outPixels)
    let scratchCount = advprune_direct_conv_scratch_count(Int64(c), Int64(g.height), Int64(g.width), Int64(o), k, s, pad, pass)
    return ConvSlicePass(slice: 1, columns: Int(scratchCount), other: 0, weights: count) { scratch, first, nb in
      let padded = scratch.0
      for n in first..<(first + nb) {
        if inputGradient {
          advprune_direct_conv_backward_data(
            input + n * outPlane, reluOutput.map { $0 + n * outPlane }, Int64(c), Int64(g.height), Int64(g.width), weights, Int64(o), k, s,
            pad, padded, output + n * inPlane)
        } else {
          advprune_direct_conv_forward(
            input + n * inPlane, Int64(c), Int64(g.height), Int64(g.width), weights, Int64(o), k, s, pad, bias, relu ? 1 : 0, padded,
            output + n * outPlane)
        }
      }
    }
  }
}
