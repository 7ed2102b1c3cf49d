import GPU

/// Square's proposals change one square of each point, so the outputs of a model's leading
/// convolutions, ReLUs and poolings change only in that square's cone. `WindowedForward` keeps the
/// best points' activations after each such layer and evaluates a proposal by recomputing each
/// layer on the window its change reaches only (cut from the best activations, the changed
/// window of the layer before written in), until the window would be the whole plane; from there
/// the model runs on the whole batch. On SmallCNN late in the schedule (squares of 1-4 pixels)
/// conv2 computes 8x8 of its 24x24 outputs and conv3 7x7 of 10x10.
final class WindowedForward {
  enum Stage {
    case conv(Conv2d, relu: Bool)
    case relu
    case pool
  }

  private let backend: Backend
  /// The leading local steps: how each is computed on a window, and the step itself.
  private let stages: [(stage: Stage, step: Layer)]
  private let rest: [Layer]
  private let bestSlots: [BufferSlot]
  private let cropSlots: [BufferSlot]
  private let windowSlots: [BufferSlot]
  private let savedSlot = BufferSlot()
  /// What the last proposal overwrote in the best activation it ran the rest of the model from.
  private var overwritten: Tensor?
  /// Activations of the best points after each stage.
  private var best: [Tensor] = []
  /// The last proposal's windows (output window of each stage computed on one, its corners and
  /// the plane it lies in) and the outputs of the stages run whole after them.
  private var windows: [(values: Tensor, corners: Tensor, plane: (height: Int, width: Int))] = []
  private var whole: [(stage: Int, output: Tensor)] = []

  /// Nil when the model does not start with a convolution, ReLU or pooling of stride 1.
  init?(model: Model) {
    var stages: [(Stage, Layer)] = []
    for step in model.steps {
      if let fused = step as? ConvReLU, fused.conv.stride == 1 {
        stages.append((.conv(fused.conv, relu: true), step))
      } else if let conv = step as? Conv2d, conv.stride == 1 {
        stages.append((.conv(conv, relu: false), step))
      } else if step is ReLU {
        stages.append((.relu, step))
      } else if step is MaxPool2x2 {
        stages.append((.pool, step))
      } else {
        break
      }
    }
    guard !stages.isEmpty else { return nil }
    backend = model.backend
    self.stages = stages
    rest = Array(model.steps[stages.count...])
    bestSlots = stages.map { _ in BufferSlot() }
    cropSlots = stages.map { _ in BufferSlot() }
    windowSlots = stages.map { _ in BufferSlot() }
  }

  /// Logits of the best points `x` [N, C, H, W], whose activations it keeps.
  func reset(_ x: Tensor) throws -> Tensor {
    var h = x
    best = []
    for (k, s) in stages.enumerated() {
      h = try s.step.forward(h)
      let kept = try bestSlots[k].get(h.shape, backend)
      try backend.copy(from: h, to: kept)
      best.append(kept)
    }
    for step in rest { h = try step.forward(h) }
    windows = []
    whole = []
    overwritten = nil
    return h
  }

  /// Logits of `x`, the best points with the square of side `side` at `corners` (top, left per
  /// point) changed.
  func proposal(_ x: Tensor, corners: [(top: Int, left: Int)], side: Int) throws -> Tensor {
    precondition(best.count == stages.count && best[0].shape[0] == x.shape[0], "WindowedForward: proposal before reset")
    let n = x.shape[0]
    var (tops, lefts, size) = (corners.map(\.top), corners.map(\.left), side)
    var plane = (height: x.shape[2], width: x.shape[3])
    windows = []
    var k = 0
    while k < stages.count {
      let source = k == 0 ? x : best[k - 1]
      let channels = source.shape[1]
      // The stage's changed output window (corner shift and size) and the input region it reads.
      let (shift, outSize, regionShift, regionSize, outPlane): (Int, Int, Int, Int, (height: Int, width: Int))
      var pools = false
      switch stages[k].stage {
      case .conv(let conv, _):
        let (kernel, p) = (conv.weight.shape[2], conv.padding)
        (shift, outSize) = (p - (kernel - 1), size + kernel - 1)
        (regionShift, regionSize) = (-p, outSize + kernel - 1)
        outPlane = (plane.height + 2 * p - kernel + 1, plane.width + 2 * p - kernel + 1)
      case .relu:
        (shift, outSize, regionShift, regionSize, outPlane) = (0, size, 0, size, plane)
      case .pool:
        (shift, outSize, regionShift, regionSize) = (0, size / 2 + 1, 0, 2 * (size / 2 + 1))
        outPlane = (plane.height / 2, plane.width / 2)
        pools = true
      }
      // A window as large as the plane saves nothing: the rest runs whole.
      if regionSize >= plane.height && regionSize >= plane.width { break }
      // A pooled window starts at the pooling window holding the first changed value (floor).
      func moved(_ v: Int) -> Int { pools ? (v >= 0 ? v / 2 : (v - 1) / 2) : v + shift }
      let (outTops, outLefts) = (tops.map(moved), lefts.map(moved))
      let scale = pools ? 2 : 1
      let regionCorners = try upload(outTops.map { $0 * scale + regionShift }, outLefts.map { $0 * scale + regionShift })
      let crop = try cropSlots[k].get([n, channels, regionSize, regionSize], backend)
      try backend.cropWindows(out: crop, x: source, corners: regionCorners)
      if let previous = windows.last {
        try backend.pasteWindows(
          into: crop, intoCorners: regionCorners, window: previous.values, windowCorners: previous.corners, plane: plane, rows: nil)
      }
      let values: Tensor
      switch stages[k].stage {
      case .conv(let conv, let relu):
        values = try conv.forwardUnpadded(crop, relu: relu, into: windowSlots[k])
      case .relu:
        values = try windowSlots[k].get(crop.shape, backend)
        try backend.reluForward(y: values, x: crop)
      case .pool:
        values = try windowSlots[k].get([n, channels, outSize, outSize], backend)
        try backend.maxPool2x2Forward(y: values, x: crop)
      }
      windows.append((values, try upload(outTops, outLefts), outPlane))
      (tops, lefts, size, plane) = (outTops, outLefts, outSize, outPlane)
      k += 1
    }
    // The input of the first stage run whole: the best activation with the last window written
    // in, in place (copying the whole activation cost more than the windows saved); `accept`
    // puts back what it overwrote where the proposal is not taken.
    var h = x
    overwritten = nil
    if let last = windows.last {
      let saved = try savedSlot.get(last.values.shape, backend)
      try backend.cropWindows(out: saved, x: best[k - 1], corners: last.corners)
      try backend.pasteWindows(
        into: best[k - 1], intoCorners: nil, window: last.values, windowCorners: last.corners, plane: last.plane, rows: nil)
      overwritten = saved
      h = best[k - 1]
    }
    whole = []
    for s in k..<stages.count {
      h = try stages[s].step.forward(h)
      whole.append((s, h))
    }
    for step in rest { h = try step.forward(h) }
    return h
  }

  /// Makes the last proposal the best point where `rows[n] != 0` (`squareAccept`'s flags).
  func accept(rows: Tensor) throws {
    if let overwritten, let last = windows.last {
      try backend.pasteWindows(
        into: best[windows.count - 1], intoCorners: nil, window: overwritten, windowCorners: last.corners, plane: last.plane, rows: nil)
    }
    for (k, w) in windows.enumerated() {
      try backend.pasteWindows(into: best[k], intoCorners: nil, window: w.values, windowCorners: w.corners, plane: w.plane, rows: rows)
    }
    for w in whole { try backend.selectRows(destination: best[w.stage], source: w.output, where: rows) }
  }

  private func upload(_ tops: [Int], _ lefts: [Int]) throws -> Tensor {
    try backend.upload(zip(tops, lefts).flatMap { [Float($0), Float($1)] }, shape: [tops.count, 2])
  }
}
