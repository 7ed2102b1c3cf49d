import Foundation
import GPU

/// Robust Bird (Chen et al., ICLR 2022, "Sparsity Winning Twice"), cell B/U/G/lwm: adversarially
/// train the dense network and, after each epoch, draw the global magnitude mask at the target
/// sparsity; the early-bird ticket has emerged when the newest mask differs from each of the
/// previous `window - 1` masks in at most `threshold` of its entries. The network is pruned to that
/// mask there (weights kept, not rewound; the optimiser starts afresh) and the run's own epochs
/// train the ticket with the masks held. The search ends at `searchEpochs` even without an early
/// bird, pruning the last mask, as the reference does at the end of its first stage.
///
/// The search runs at the recipe's base learning rate (the reference's first stage never reaches its
/// first decay before the bird emerges) and ranks the layers the ticket prunes (convolutions and
/// linear layers); the reference watches its convolutions only, which hold nearly all of a
/// ResNet's weights but not of SmallCNN's.
public struct RobustBird: TrainingMethod {
  public var sparsity: Double
  /// Longest search; nil searches for as many epochs as the run trains the ticket.
  public var searchEpochs: Int?
  public var window: Int
  public var threshold: Double

  public init(sparsity: Double, searchEpochs: Int? = nil, window: Int = 5, threshold: Double = 0.08) {
    self.sparsity = sparsity
    self.searchEpochs = searchEpochs
    self.window = window
    self.threshold = threshold
  }

  public var name: String { "robustbird" }
  public var cell: TaxonomyCell {
    TaxonomyCell(pipeline: .before, schedule: .iterative, structures: [.unstructured], localities: [.global], criterion: .lwm)
  }
  public var settings: String {
    "robustbird s=\(sparsity) search=\(searchEpochs.map(String.init) ?? "run") window=\(window) threshold=\(threshold)"
  }

  public func check(epochs: Int, batchesPerEpoch: Int) throws {
    let search = searchEpochs ?? epochs
    guard search >= window else {
      throw MethodOptions.refuse(
        "--search-epochs", "\(search)",
        "an early bird compares the masks of \(window) epochs (--eb-window), so the search needs at least \(window) epochs")
    }
  }

  public var preparesBeforeTraining: Bool { true }

  public func prepare(model: Model, data: LabeledImages, config: TrainConfig, progress: ProgressSink, phase: PreparePhase) throws {
    var search = config
    search.epochs = searchEpochs ?? config.epochs
    search.schedule = .constant
    var bird = try EarlyBirdWindow(size: window, threshold: threshold, restoring: phase.state)
    var emerged = phase.state["emerged"].flatMap(Int.init)
    if emerged == nil && phase.epoch < search.epochs {
      let window = { bird.encoded }
      do {
        try phase.train(Trainer(model: model, config: search), data: data, progress: progress, state: window) { summary in
          if bird.push(try globalMagnitudeMasks(model)) { emerged = summary.epoch }
          // Saved before the search ends, so a run stopped after it prunes at the same epoch.
          try phase.checkpoint(summary.epoch, 0, bird.encoded.merging(emerged.map { ["emerged": "\($0)"] } ?? [:]) { $1 })
          if emerged != nil { throw SearchEnded() }
        }
      } catch is SearchEnded {}
    }
    let distances = bird.distances.map { String(format: "%.3f", $0) }.joined(separator: ", ")
    progress.finish(
      emerged.map { "robustbird: early bird at epoch \($0) of at most \(search.epochs) (mask distances \(distances))" }
        ?? "robustbird: no early bird within \(search.epochs) epochs (last mask distances \(distances)); pruned at the end of the search")
    for p in model.parameters { try model.backend.fill(p.velocity, value: 0) }
    try Pruner.apply(try globalMagnitudeMasks(model), to: model)
  }

  public func hooks(model: Model, epochs: Int, batchesPerEpoch: Int, seed: UInt64, resuming: Bool) throws -> TrainingHooks { Li20Hooks() }

  private func globalMagnitudeMasks(_ model: Model) throws -> [[Float]] {
    let scores = try model.prunableParameters.map { try model.backend.download($0.value).map(abs) }
    return MaskAllocation.masks(scores: scores, sparsity: sparsity, locality: .global)
  }

  /// Ends the search from inside the trainer's epoch callback.
  private struct SearchEnded: Error {}
}

/// The last `size` masks of an early-bird search and the test for emergence: the newest mask's
/// Hamming distance (as a share of all entries) to each older one in the window is at most
/// `threshold`.
public struct EarlyBirdWindow {
  public let size: Int
  public let threshold: Double
  private var masks: [[Bool]] = []
  /// The newest mask's distances to the older ones, oldest first (empty until the window is full).
  public private(set) var distances: [Double] = []

  public init(size: Int, threshold: Double) {
    self.size = size
    self.threshold = threshold
  }

  /// A window saved with `encoded` (empty: a fresh one).
  init(size: Int, threshold: Double, restoring saved: [String: String]) throws {
    self.init(size: size, threshold: threshold)
    guard let count = saved["masks"].flatMap(Int.init) else { return }
    for k in 0..<count {
      guard let text = saved["mask\(k)"], let bytes = Data(base64Encoded: text), let n = saved["entries"].flatMap(Int.init),
        bytes.count == (n + 7) / 8
      else { throw UserError.badValue(name: "checkpoint", value: "robustbird mask \(k)", problem: "missing or damaged") }
      masks.append((0..<n).map { bytes[bytes.startIndex + $0 / 8] & (1 << ($0 % 8)) != 0 })
    }
    distances = saved["distances"].map { $0.split(separator: ",").compactMap { Double($0) } } ?? []
  }

  /// The window as checkpoint metadata: each mask a base64 bitset.
  var encoded: [String: String] {
    var saved = ["masks": "\(masks.count)", "entries": "\(masks.first?.count ?? 0)", "distances": distances.map { "\($0)" }.joined(separator: ",")]
    for (k, mask) in masks.enumerated() {
      var bytes = [UInt8](repeating: 0, count: (mask.count + 7) / 8)
      for (i, bit) in mask.enumerated() where bit { bytes[i / 8] |= 1 << (i % 8) }
      saved["mask\(k)"] = Data(bytes).base64EncodedString()
    }
    return saved
  }

  /// Adds an epoch's mask (per layer); true when the early bird has emerged.
  public mutating func push(_ layers: [[Float]]) -> Bool {
    let mask = layers.flatMap { $0.map { $0 != 0 } }
    masks.append(mask)
    if masks.count > size { masks.removeFirst() }
    guard masks.count == size else { return false }
    distances = masks.dropLast().map { older in
      Double(zip(older, mask).filter { $0 != $1 }.count) / Double(max(1, mask.count))
    }
    return distances.allSatisfy { $0 <= threshold }
  }
}
