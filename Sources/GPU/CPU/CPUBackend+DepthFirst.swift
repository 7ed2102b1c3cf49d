import CKernels
import Foundation

// Runs of per-image steps (a residual block's forward or input gradient) depth first: each worker
// takes its share of the batch a few images at a time through every step, so what one step
// writes is still in the core's L2 when the next reads it. Op by op, each step streams its
// whole-batch tensors through L3 or memory: one worker's share of a compact ResNet18 block
// (16 channels, 32x32, 32 images) took 2.85-2.99 ms op by op and 2.30-2.56 ms depth first, a
// 64-channel 8x8 one 1.9 ms and 1.3 ms (a one-thread C model of the two schedules, inputs evicted
// first). Where the images' weights are large against their activations (128 channels at 4x4),
// re-reading the weights for every slice costs more than it saves, and the run goes op by op.
extension CPUBackend {
  public func runPerImage(_ steps: [ImageStep]) throws { try runPerImage(steps, slice: nil) }

  /// `runPerImage` with `slice` images at a time where given (tests), whatever the cache holds.
  func runPerImage(_ steps: [ImageStep], slice: Int?) throws {
    guard let plan = depthFirstPlan(steps, slice: slice) else { return try runStepByStep(steps) }
    depthFirstRuns += 1
    let scratch = workerScratch(columns: plan.columns, other: plan.other)
    forEachSlice(batch: plan.batch, size: plan.slice) { t, first, count in
      for body in plan.bodies { body(scratch[t], first, count) }
    }
  }

  /// How a depth-first run goes: `slice` images at a time through `bodies`, with per-worker
  /// scratch as large as the largest step's (each of the two buffers on its own).
  struct DepthFirstPlan {
    let batch: Int
    let slice: Int
    let columns: Int
    let other: Int
    let bodies: [(ConvSlicePass.Scratch, Int, Int) -> Void]
  }

  /// The plan for `steps`, or nil where they go op by op: depth-first runs off, a step whose
  /// weight is not frozen (its rearranged copy would share one buffer with the other steps'), a
  /// slice's working set larger than twice `depthFirstFloats`, or weights above
  /// `weightsPerSlice` times a slice's working set.
  func depthFirstPlan(_ steps: [ImageStep], slice forced: Int? = nil) -> DepthFirstPlan? {
    guard depthFirstFloats > 0 || forced != nil, let batch = steps.first?.tensors.writes.shape.first, batch > 1 else { return nil }
    var floats: [ObjectIdentifier: Int] = [:]
    for step in steps {
      let (reads, writes) = step.tensors
      for t in reads + [writes] {
        precondition(t.shape.first == batch, "runPerImage: \(t.shape) is not a batch of \(batch) images")
        floats[ObjectIdentifier(t.storage)] = t.count / batch
      }
      check(step)
      if let weight = step.weight, !isFrozen(weight) { return nil }
    }
    // One image's working set: every tensor's share, the largest step's scratch; and the weights
    // every slice reads (the rearranged copies, or the weight tensor itself).
    var (scratchPerImage, weights, minimumSlice) = (0, 0, 1)
    let onePerCall = steps.map { pass(for: $0, slice: 1) }
    for (step, pass) in zip(steps, onePerCall) {
      guard let pass, let weight = step.weight else { continue }
      scratchPerImage = max(scratchPerImage, pass.columns + pass.other)
      weights += max(pass.weights, weight.count)
      minimumSlice = max(minimumSlice, pass.minimumSlice)
    }
    let perImage = floats.values.reduce(0, +) + scratchPerImage
    let workers = min(workerCount, batch)
    let slice = min((batch + workers - 1) / workers, forced ?? max(minimumSlice, depthFirstFloats / perImage))
    let pays = slice * perImage <= 2 * depthFirstFloats && weights <= Self.weightsPerSlice * slice * perImage
    guard pays || forced != nil else { return nil }
    var (columns, other) = (0, 0)
    let bodies = zip(steps, onePerCall).map { step, one -> (ConvSlicePass.Scratch, Int, Int) -> Void in
      if let pass = slice == 1 ? one : pass(for: step, slice: slice) {
        (columns, other) = (max(columns, pass.columns), max(other, pass.other))
        return pass.body
      }
      return elementwiseBody(step, batch: batch)
    }
    return DepthFirstPlan(batch: batch, slice: slice, columns: columns, other: other, bodies: bodies)
  }

  /// Five eighths of a core's L2 in floats, 160 Ki on this AMD EPYC's 1 MiB: a slice's tensors
  /// and scratch, with room for the weights streaming past. An L2 the system does not report is
  /// taken as 1 MiB, and a reported one as at least 256 KiB and at most 4 MiB (a slice of less
  /// than a few images is not worth a schedule; a larger budget than that was not measured).
  public static let defaultDepthFirstFloats: Int = {
    #if os(Linux)
      let reported = sysconf(Int32(_SC_LEVEL2_CACHE_SIZE))
    #else
      let reported = 0
    #endif
    let l2 = reported > 0 ? min(max(reported, 256 << 10), 4 << 20) : 1 << 20
    return l2 * 5 / 8 / MemoryLayout<Float>.size
  }()

  /// A depth-first run's weights may be this many times a slice's working set: it re-reads them
  /// for every slice. The compact ResNet18's 4x4 stage (128 channels, 1.2 Mi floats of weights
  /// against 0.15-0.3 Mi per slice) ran no faster depth first at 8 images per slice (159-179 ms
  /// per PGD-40 against 139-173 op by op) and slower at fewer.
  static let weightsPerSlice = 3

  private func isFrozen(_ t: Tensor) -> Bool { (t.storage as? CPUStorage)?.isFrozen ?? false }

  /// The shape checks of the step's whole-batch op.
  private func check(_ step: ImageStep) {
    switch step {
    case .convForward(let y, let x, let weight, let bias, let g, _):
      OpShapes.conv(x: x, weight: weight, y: y, bias: bias, geometry: g, op: "conv2dForward")
    case .convInputGradient(let dx, let dy, let weight, let g, let reluOutput):
      OpShapes.conv(x: dx, weight: weight, y: dy, bias: nil, geometry: g, op: "conv2dBackwardData")
      if let reluOutput { checkSameCount(reluOutput, dy, op: "conv2dBackwardData") }
    case .addReLU(let out, let a, let b):
      checkSameCount(out, a, op: "addReLU")
      checkSameCount(a, b, op: "addReLU")
    case .add(let out, let a, let b):
      checkSameCount(out, a, op: "add")
      checkSameCount(a, b, op: "add")
    case .reluGradient(let dx, let dy, let y):
      checkSameCount(dx, dy, op: "reluBackward")
      checkSameCount(dx, y, op: "reluBackward")
    }
  }

  private func pass(for step: ImageStep, slice: Int) -> ConvSlicePass? {
    switch step {
    case .convForward(let y, let x, let weight, let bias, let g, let relu):
      return forwardPass(y: y, x: x, weight: weight, bias: bias, geometry: g, relu: relu, slice: slice)
    case .convInputGradient(let dx, let dy, let weight, let g, let reluOutput):
      return inputGradientPass(dx: dx, dy: dy, weight: weight, geometry: g, reluOutput: reluOutput, slice: slice)
    default:
      return nil
    }
  }

  /// The elementwise step on images `first..<first + count`.
  private func elementwiseBody(_ step: ImageStep, batch: Int) -> (ConvSlicePass.Scratch, Int, Int) -> Void {
    let per = step.tensors.writes.count / batch
    // The whole-batch op's loop over elements, on the slice's images.
    func onImages(_ body: @escaping (Range<Int>) -> Void) -> (ConvSlicePass.Scratch, Int, Int) -> Void {
      { _, first, count in body((first * per)..<((first + count) * per)) }
    }
    switch step {
    case .addReLU(let out, let a, let b): return onImages(addition(out: out, a: a, b: b, relu: true))
    case .add(let out, let a, let b): return onImages(addition(out: out, a: a, b: b, relu: false))
    case .reluGradient(let dx, let dy, let y): return onImages(reluMask(dx: dx, dy: dy, y: y))
    case .convForward, .convInputGradient:
      preconditionFailure("runPerImage: a convolution is a pass, not an elementwise step")
    }
  }
}
