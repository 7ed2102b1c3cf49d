import Foundation
import GPU

/// Wall time of one step of a model (`Model.steps`: a residual block, a convolution with its
/// ReLU, a pooling, a linear layer), summed over the passes since `Model.timeSteps(true)`: where a
/// pruned model's time goes, which its total does not say.
public struct StepTime: Codable, Sendable, Equatable {
  /// The step's parameters' common name ("layer2.0", "conv3 + ReLU"), or its kind ("MaxPool2x2").
  public let step: String
  /// Output of one image, [C, H, W] or [features].
  public let outputShape: [Int]
  /// Forward multiply-adds of one image (convolutions and linear layers).
  public let macsPerImage: Int
  /// Forward passes (training, attack steps, clean predictions): seconds and images.
  public internal(set) var forwardSeconds: Double = 0
  public internal(set) var forwardImages = 0
  /// Backward passes (an attack's input gradient; in training also the parameter gradients).
  public internal(set) var backwardSeconds: Double = 0
  public internal(set) var backwardImages = 0

  public var seconds: Double { forwardSeconds + backwardSeconds }

  /// Multiply-adds per second over both passes, counting a backward as its forward's
  /// multiply-adds (the input gradient of a convolution or linear layer has as many).
  public var macsPerSecond: Double {
    seconds > 0 ? Double(macsPerImage) * Double(forwardImages + backwardImages) / seconds : 0
  }
}

extension Model {
  /// Starts timing every step (the backend synchronised before and after each, so a step's time
  /// is its own work), from zero; off: passes run untimed again and `stepTimes` is nil. On the
  /// CPU the synchronisation is free; on OpenCL it drains the queue at every step, so a timed
  /// pass is slower than an untimed one.
  public func timeSteps(_ on: Bool) {
    stepTimes = on ? emptyStepTimes() : nil
  }

  func emptyStepTimes() -> [StepTime] {
    var shape = [1] + architecture.inputShape
    return steps.map { step in
      let macs = step.forwardMACs(input: shape)
      shape = step.outputShape(for: shape)
      return StepTime(step: Self.label(of: step), outputShape: Array(shape.dropFirst()), macsPerImage: macs)
    }
  }

  /// The parameters' names without their last part, cut to the parts they share: a residual
  /// block's "layer1.0.conv1.weight" and "layer1.0.shortcut.0.weight" give "layer1.0".
  static func label(of step: Layer) -> String {
    let owners = step.parameters.map { $0.name.split(separator: ".").dropLast() }
    guard var common = owners.first else { return String(describing: type(of: step)) }
    for owner in owners.dropFirst() {
      common = common.prefix(zip(common, owner).prefix { $0 == $1 }.count)
    }
    let name = common.joined(separator: ".")
    return step is ConvReLU || step is NormReLU ? name + " + ReLU" : name
  }

  /// `body`, the step at `index`'s pass on `images` images, timed when `timeSteps` is on.
  func timed<T>(_ index: Int, backward: Bool, images: Int, _ body: () throws -> T) throws -> T {
    guard stepTimes != nil else { return try body() }
    try backend.synchronize()
    let start = DispatchTime.now().uptimeNanoseconds
    let result = try body()
    try backend.synchronize()
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    if backward {
      stepTimes?[index].backwardSeconds += seconds
      stepTimes?[index].backwardImages += images
    } else {
      stepTimes?[index].forwardSeconds += seconds
      stepTimes?[index].forwardImages += images
    }
    return result
  }
}
