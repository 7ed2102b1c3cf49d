/// One op of a run that `Backend.runPerImage` takes whole: every tensor is a batch of the same
/// images (leading dimension N), and each image's outputs depend on that image's inputs alone, so
/// a backend may run the steps image by image, or a few images at a time, instead of op by op.
/// Each case means exactly the whole-batch op its doc names.
public enum ImageStep {
  /// `conv2dForward`.
  case convForward(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, geometry: ConvGeometry, relu: Bool)
  /// `conv2dBackwardData`.
  case convInputGradient(dx: Tensor, dy: Tensor, weight: Tensor, geometry: ConvGeometry, reluOutput: Tensor?)
  /// `addReLU`.
  case addReLU(out: Tensor, a: Tensor, b: Tensor)
  /// `add`.
  case add(out: Tensor, a: Tensor, b: Tensor)
  /// `reluBackward`.
  case reluGradient(dx: Tensor, dy: Tensor, y: Tensor)

  /// The convolution's weight; nil for the elementwise steps.
  public var weight: Tensor? {
    switch self {
    case .convForward(_, _, let weight, _, _, _), .convInputGradient(_, _, let weight, _, _): return weight
    case .addReLU, .add, .reluGradient: return nil
    }
  }

  /// What the step reads, then what it writes.
  public var tensors: (reads: [Tensor], writes: Tensor) {
    switch self {
    case .convForward(let y, let x, _, _, _, _): return ([x], y)
    case .convInputGradient(let dx, let dy, _, _, let reluOutput): return ([dy] + (reluOutput.map { [$0] } ?? []), dx)
    case .addReLU(let out, let a, let b), .add(let out, let a, let b): return ([a, b], out)
    case .reluGradient(let dx, let dy, let y): return ([dy, y], dx)
    }
  }
}

extension Backend {
  /// The steps one after the other, each over the whole batch: what `runPerImage` means, and
  /// how a backend without a faster schedule runs it.
  public func runStepByStep(_ steps: [ImageStep]) throws {
    for step in steps {
      switch step {
      case .convForward(let y, let x, let weight, let bias, let geometry, let relu):
        try conv2dForward(y: y, x: x, weight: weight, bias: bias, geometry: geometry, relu: relu)
      case .convInputGradient(let dx, let dy, let weight, let geometry, let reluOutput):
        try conv2dBackwardData(dx: dx, dy: dy, weight: weight, geometry: geometry, reluOutput: reluOutput)
      case .addReLU(let out, let a, let b): try addReLU(out: out, a: a, b: b)
      case .add(let out, let a, let b): try add(out: out, a: a, b: b)
      case .reluGradient(let dx, let dy, let y): try reluBackward(dx: dx, dy: dy, y: y)
      }
    }
  }

  public func runPerImage(_ steps: [ImageStep]) throws { try runStepByStep(steps) }
}
