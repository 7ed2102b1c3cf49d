/// One pass of a convolution (forward or input gradient) on the CPU, cut so that any worker can
/// run it on any run of images: what scratch a worker needs for `slice` images at a time, and the
/// body for images `first..<first + count` (`count <= slice`). `CPUBackend.run` takes one pass
/// over the whole batch; a depth-first run (`runPerImage`) takes several over the same slice in
/// turn while its images stay in cache.
struct ConvSlicePass {
  typealias Scratch = (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)

  /// Images per call the scratch is sized for.
  let slice: Int
  /// Floats of each worker's two scratch buffers.
  let columns: Int
  let other: Int
  /// Floats of rearranged weights the body reads at every call (0 for the im2col path, which
  /// reads the weight tensor itself): re-read once per slice in a depth-first run.
  let weights: Int
  /// The fewest images a call should take: a Winograd product over fewer tiles than
  /// `CPUBackend.minimumDepthFirstColumns` is slow whatever the cache holds.
  let minimumSlice: Int
  let body: (Scratch, _ first: Int, _ count: Int) -> Void

  init(
    slice: Int, columns: Int, other: Int, weights: Int = 0, minimumSlice: Int = 1, body: @escaping (Scratch, Int, Int) -> Void
  ) {
    (self.slice, self.columns, self.other, self.weights, self.minimumSlice, self.body) = (slice, columns, other, weights, minimumSlice, body)
  }
}
