import Foundation
import GPU

/// `advprune export`: a checkpoint as a plain state dict (masks applied, no extra keys, so
/// PyTorch's strict `load_state_dict` takes it), and with `compact` the filters and channels that
/// filter pruning zeroed physically removed.
///
/// The written model is checked before it is kept: rebuilt from its tensors, it must give the
/// source model's logits (eval mode) on random inputs.
public struct ExportJob {
  public var input: String
  public var architecture: Architecture?
  public var width: Double?
  public var compact: Bool
  public var output: String
  public var seed: UInt64 = 0

  public init(input: String, compact: Bool, output: String) {
    self.input = input
    self.compact = compact
    self.output = output
  }

  public struct Result: Codable, Sendable {
    public let checkpoint: String
    public let architecture: String
    public let compact: Bool
    public let parametersBefore: Int
    public let parametersAfter: Int
    public let macsBefore: Int
    public let macsAfter: Int
    /// Per channel group: channels before and after (compact only).
    public let groups: [GroupSparsity]
    /// Largest |logit difference| between source and written model on random inputs.
    public let maxLogitDifference: Float
  }

  public func run(backend: Backend) throws -> Result {
    try checkWritable(output)
    let (model, meta) = try Checkpoint.load(path: input, backend: backend, architecture: architecture, width: width)
    let source = try logits(model, backend: backend)
    // A TwinRep checkpoint written mid-training computes with w * twin: export that product.
    try model.pruning.foldTwins(model)
    var tensors = try Checkpoint.stateDict(of: model, pruning: false)
    var channels = model.channels
    var groups: [GroupSparsity] = []
    if compact {
      let outcome = try Compaction.compact(model)
      (tensors, channels, groups) = (outcome.tensors, outcome.channels, outcome.groups)
    }
    let exported = try model.architecture.build(backend: backend, seed: 0, width: model.width, channels: channels, initialize: false)
    try Checkpoint.assign(tensors, to: exported, path: output)

    let written = try logits(exported, backend: backend)
    let difference = zip(source, written).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
    let scale = 1 + source.reduce(Float(0)) { max($0, abs($1)) }
    guard difference <= 1e-4 * scale else {
      throw UserError.badCheckpoint(path: input, problem: "the exported model's logits differ from the source's by \(difference); nothing written")
    }
    var metadata = meta.filter { !$0.key.hasPrefix("epochs") }
    metadata["exported_from"] = (input as NSString).lastPathComponent
    metadata["compact"] = "\(compact)"
    try Checkpoint.save(exported, metadata: metadata, to: output)
    return Result(
      checkpoint: output, architecture: model.architecture.rawValue, compact: compact,
      parametersBefore: try model.nonzeroParameterCount(), parametersAfter: exported.parameterCount,
      macsBefore: model.macsPerImage, macsAfter: exported.macsPerImage, groups: groups, maxLogitDifference: difference)
  }

  /// Random inputs in [0, 1], drawn from `seed`, for comparing two models' functions.
  func probe(_ model: Model, backend: Backend) throws -> Tensor {
    var rng = SeededRNG.derive(seed, 0xE4)
    let shape = [8] + model.architecture.inputShape
    return try backend.upload(rng.uniformArray(shape.reduce(1, *), 0, 1), shape: shape)
  }

  func logits(_ model: Model, backend: Backend) throws -> [Float] {
    model.setTraining(false)
    return try backend.download(try model.forward(try probe(model, backend: backend)))
  }
}

extension Model {
  /// Trainable values that are not pruned away (mask 1), for comparing a masked model with its
  /// compacted form.
  public func nonzeroParameterCount() throws -> Int {
    try trainableParameters.reduce(0) { $0 + (try keptCount($1)) }
  }
}
