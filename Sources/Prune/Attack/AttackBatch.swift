import Foundation
import GPU

/// The points an attack works on: correctly classified test points with their eval-mode clean
/// logits, on the host (the ensemble gathers the still-robust ones between attacks).
public struct AttackBatch {
  /// Index of each point in the evaluation set: random draws depend on it, not on batching.
  public let ids: [Int]
  /// [N, C, H, W] values in [0, 1].
  public let x: [Float]
  public let labels: [Int]
  /// [N, classes] logits of `x` in eval mode.
  public let cleanLogits: [Float]
  /// [C, H, W] of one point.
  public let pointShape: [Int]
  public let classes: Int

  public init(ids: [Int], x: [Float], labels: [Int], cleanLogits: [Float], pointShape: [Int], classes: Int) {
    precondition(x.count == ids.count * pointShape.reduce(1, *) && labels.count == ids.count && cleanLogits.count == ids.count * classes)
    self.ids = ids
    self.x = x
    self.labels = labels
    self.cleanLogits = cleanLogits
    self.pointShape = pointShape
    self.classes = classes
  }

  public var count: Int { ids.count }
  public var features: Int { pointShape.reduce(1, *) }
  public var shape: [Int] { [count] + pointShape }

  /// The rows at `rows`, in that order.
  public func subset(_ rows: [Int]) -> AttackBatch {
    let (f, k) = (features, classes)
    return AttackBatch(
      ids: rows.map { ids[$0] }, x: x.rows(rows, width: f), labels: rows.map { labels[$0] }, cleanLogits: cleanLogits.rows(rows, width: k),
      pointShape: pointShape, classes: classes)
  }

  /// This batch `times` times over, one copy after the other (targeted attacks run several
  /// target ranks in one batch).
  func repeated(_ times: Int) -> AttackBatch {
    AttackBatch(
      ids: Array([[Int]](repeating: ids, count: times).joined()), x: Array([[Float]](repeating: x, count: times).joined()),
      labels: Array([[Int]](repeating: labels, count: times).joined()),
      cleanLogits: Array([[Float]](repeating: cleanLogits, count: times).joined()), pointShape: pointShape, classes: classes)
  }

  /// The class of the `rank`-th largest clean logit of each point (rank 2: the runner-up), the
  /// targets of APGD-T and FAB-T; ties go to the lower class index.
  public func targets(rank: Int) -> [Int] {
    precondition(rank >= 1 && rank <= classes, "target rank \(rank) outside 1...\(classes)")
    return (0..<count).map { n in
      let z = cleanLogits.row(n, width: classes)
      let order = z.indices.sorted { z[$0] > z[$1] || (z[$0] == z[$1] && $0 < $1) }
      return order[rank - 1] - n * classes
    }
  }

  /// Uploads x, labels (and `ids`) to the backend.
  func upload(_ backend: Backend) throws -> (x: Tensor, labels: Tensor, ids: Tensor) {
    (
      try backend.upload(x, shape: shape), try backend.upload(labels.map(Float.init), shape: [count]),
      try backend.upload(ids.map(Float.init), shape: [count])
    )
  }
}

/// What an attack found on a batch: which points it fooled, and for those the perturbed input
/// (other rows hold the clean input).
public struct AttackOutcome {
  public var fooled: [Bool]
  public var adversarial: [Float]

  /// Nothing fooled yet.
  public init(unbroken batch: AttackBatch) {
    fooled = [Bool](repeating: false, count: batch.count)
    adversarial = batch.x
  }

  public init(fooled: [Bool], adversarial: [Float]) {
    self.fooled = fooled
    self.adversarial = adversarial
  }

  /// Takes the points `other` fooled on the rows `rows` of this batch.
  mutating func merge(_ other: AttackOutcome, rows: [Int], features: Int) {
    for (k, row) in rows.enumerated() where other.fooled[k] && !fooled[row] {
      fooled[row] = true
      adversarial.setRow(row, width: features, to: other.adversarial.row(k, width: features))
    }
  }
}

/// A bounded attack: fools points within an eps-ball of its norm.
public protocol BoundedAttack: AnyObject {
  /// Short name: "apgd-ce", "fab-t", ...
  var name: String { get }
  var eps: Float { get }
  var norm: PerturbationNorm { get }
  /// Runs on a batch of correctly classified points (model in eval mode).
  func run(model: Model, batch: AttackBatch, seed: UInt64) throws -> AttackOutcome
  /// Called now and then during `run` with the share of the batch's work done (0...1).
  var onProgress: ((Double) -> Void)? { get set }
}

/// A targeted attack that can run several target ranks in one batch.
public protocol TargetBatching: AnyObject {
  /// Most rows of one batch (the evaluation's batch size); when fewer points are left, several
  /// target ranks fill it. 0: one rank at a time.
  var rowBudget: Int { get set }
}

extension BoundedAttack {
  /// Runs a targeted attack once per target rank 2...(targets + 1) on the points the earlier
  /// targets left unbroken, as AutoAttack's APGD-T and FAB-T do, `rowBudget / points` ranks at a
  /// time in one batch (rank after rank), a point taking the first rank that broke it. Every row
  /// is attacked on its own, so the points broken are those of one rank at a time (the input
  /// reported may be a later iterate: APGD keeps iterating while other rows of its batch are
  /// unbroken); a point broken by an earlier rank of the same batch is attacked by the later ones
  /// too (wasted work, but few points break late), and larger batches run faster.
  func overTargets(
    _ targets: Int, batch: AttackBatch, rowBudget: Int = 0,
    _ once: (_ batch: AttackBatch, _ targets: [Int], _ ranks: [Int]) throws -> AttackOutcome
  ) throws -> AttackOutcome {
    var outcome = AttackOutcome(unbroken: batch)
    let all = Array(2..<(2 + min(targets, batch.classes - 1)))
    var done = 0
    while done < all.count {
      onProgress?(Double(done) / Double(all.count))
      let left = outcome.fooled.indices.filter { !outcome.fooled[$0] }
      if left.isEmpty { break }
      let sub = batch.subset(left)
      // The ranks left, in as few batches as the budget allows, shared evenly (9 ranks of 114
      // points in 500 rows: 3 + 3 + 3, not 4 + 4 + 1, whose last batch runs small and slow).
      let (pending, most) = (all.count - done, max(1, rowBudget / sub.count))
      let batches = (pending + most - 1) / most
      let ranks = Array(all[done..<(done + (pending + batches - 1) / batches)])
      let found = try once(sub.repeated(ranks.count), ranks.flatMap { sub.targets(rank: $0) }, ranks)
      let (n, f) = (sub.count, batch.features)
      for g in ranks.indices {
        let part = AttackOutcome(
          fooled: Array(found.fooled[(g * n)..<((g + 1) * n)]), adversarial: Array(found.adversarial[(g * n * f)..<((g + 1) * n * f)]))
        outcome.merge(part, rows: left, features: f)
      }
      done += ranks.count
    }
    return outcome
  }
}

/// A seed for sub-stream `stream` of `seed` (restarts, targets, iterations).
func deriveSeed(_ seed: UInt64, _ stream: UInt64) -> UInt64 {
  var rng = SeededRNG.derive(seed, stream)
  return rng.next()
}

/// A 0/1 flag tensor as booleans.
func downloadFlags(_ t: Tensor, _ backend: Backend) throws -> [Bool] { try backend.download(t).map { $0 != 0 } }

extension Array {
  /// Row `i` of a row-major matrix with rows of `width` values.
  func row(_ i: Int, width: Int) -> ArraySlice<Element> { self[(i * width)..<((i + 1) * width)] }

  /// The rows at `indices`, in that order, as one row-major matrix.
  func rows(_ indices: [Int], width: Int) -> [Element] { indices.flatMap { row($0, width: width) } }

  /// Overwrites row `i` with `values` (one row's worth).
  mutating func setRow(_ i: Int, width: Int, to values: ArraySlice<Element>) {
    replaceSubrange((i * width)..<((i + 1) * width), with: values)
  }
}
