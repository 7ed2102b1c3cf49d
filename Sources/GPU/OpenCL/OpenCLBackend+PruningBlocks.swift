// The pruning building blocks on OpenCL (kernels/pruning_blocks.cl).
extension OpenCLBackend {
  /// Work-groups of the first reduction stage (the kernel file's REDUCE_GROUPS bound).
  static let reduceGroups = 256

  public func axpby(y: Tensor, x: Tensor, alpha: Float, beta: Float) throws {
    checkSameCount(y, x, op: "axpby")
    try launch("axpby", items: y.count, [.buffer(y), .buffer(x), .float(alpha), .float(beta), .int(y.count)])
  }

  public func reduce(_ x: Tensor, into result: Tensor, _ reduction: Reduction) throws {
    precondition(result.count >= 1, "reduce: the result needs one entry")
    guard x.count > 0 else { return try fill(result, value: 0) }
    let groups = min(Self.reduceGroups, (x.count + Self.groupSize - 1) / Self.groupSize)
    let partial = try reserve(partials, groups)
    try launch(
      "reduce_partial", items: groups * Self.groupSize, [.buffer(partial), .buffer(x), .int(reduction.rawValue), .int(groups), .int(x.count)])
    try launch("reduce_final", items: Self.groupSize, [.buffer(result), .buffer(partial), .int(reduction.rawValue), .int(groups)])
  }

  public func topKMask(mask: Tensor, scores: Tensor, keep: Int) throws {
    checkSameCount(mask, scores, op: "topKMask")
    precondition(keep >= 0 && keep <= scores.count, "topKMask: keep \(keep) outside 0...\(scores.count)")
    try launch("top_k_mask", items: Self.groupSize, [.buffer(mask), .buffer(scores), .int(keep), .int(scores.count)])
  }
}
