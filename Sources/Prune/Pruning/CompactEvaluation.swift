import Foundation
import GPU

/// Whether an evaluation runs a filter-pruned model as its compact form (the removed channels
/// physically gone, the same function), so structured pruning is faster without `export --compact`.
public enum CompactMode: String, Codable, Sendable, CaseIterable {
  /// Compact whenever filter pruning removed at least one whole channel.
  case auto
  /// The masked model as stored (for comparing the two).
  case off
}

/// The model an evaluation runs, and what it is.
public struct EvaluationModel {
  public let model: Model
  /// "masked", "compact", "sparse" or "compact+sparse".
  public let path: String
  /// Layers computing with their nonzeros only (`SparseMode`).
  public let sparseLayers: [String]
  /// Parameters left (mask 1) in the stored model, and in the one that runs.
  public let parametersStored: Int
  public let parametersRun: Int
  /// The stored model's sparsity over prunable weights.
  public let sparsity: Double
  /// Batch norms folded into the convolution before them (`Model.foldBatchNorm`).
  public let foldedBatchNorms: Int

  public var summary: String {
    var parts: [String] = []
    if path.hasPrefix("compact") {
      parts.append(
        String(
          format: "compact model: %.3f M of %.3f M parameters computed (removed channels gone; --compact off runs the masked one)",
          Double(parametersRun) / 1e6, Double(parametersStored) / 1e6))
    } else {
      parts.append("masked model: \(String(format: "%.3f", Double(parametersStored) / 1e6)) M parameters kept")
    }
    if !sparseLayers.isEmpty {
      parts.append("sparse kernels in \(sparseLayers.joined(separator: ", ")) (--sparse off runs them dense)")
    }
    if foldedBatchNorms > 0 { parts.append("batch norm folded into \(foldedBatchNorms) convolutions") }
    return parts.joined(separator: "; ")
  }

  /// `model` as it should run under `compact` and `sparse`, in eval mode: compaction first, then
  /// batch norm folded into the convolutions (unless `foldBatchNorm` is false), then the layers
  /// left sparse enough compute with their nonzeros only.
  public init(_ model: Model, mode: CompactMode, sparse: SparseMode = .off, foldBatchNorm: Bool = true) throws {
    let stored = try model.nonzeroParameterCount()
    let sparsity = try model.sparsity()
    let compact = mode == .auto ? try Self.compacted(model) : nil
    let run = compact ?? model
    run.setTraining(false)
    if foldBatchNorm { try run.foldBatchNorm() }
    self.foldedBatchNorms = run.isBatchNormFolded ? run.convBatchNormPairs.count : 0
    let sparseLayers = try SparseEvaluation.apply(run, mode: sparse)
    self.model = run
    let parts = [compact == nil ? nil : "compact", sparseLayers.isEmpty ? nil : "sparse"].compactMap { $0 }
    self.path = parts.isEmpty ? "masked" : parts.joined(separator: "+")
    self.sparseLayers = sparseLayers
    self.parametersRun = compact == nil ? stored : try run.nonzeroParameterCount()
    self.parametersStored = stored
    self.sparsity = sparsity
  }

  /// `model` with every channel filter pruning zeroed removed; nil when none can go.
  static func compacted(_ model: Model) throws -> Model? {
    // Mid-phase checkpoints (live scores, TwinRep's twins) compute with more than w * mask.
    guard model.pruning.liveScores.isEmpty && model.pruning.twins.isEmpty else { return nil }
    let outcome = try Compaction.compact(model)
    guard outcome.groups.contains(where: { $0.kept < $0.channels }) else { return nil }
    let compact = try model.architecture.build(backend: model.backend, seed: 0, width: model.width, channels: outcome.channels, initialize: false)
    try Checkpoint.assign(outcome.tensors, to: compact, path: "compact")
    return compact
  }
}
