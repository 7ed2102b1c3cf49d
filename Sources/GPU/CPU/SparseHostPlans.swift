import Synchronization

/// What the CPU's direct sparse kernels derive from a weight for one layout of the stacks (each
/// nonzero's source offset; for the input gradient the nonzeros regrouped by stride phase), kept
/// with the weight: an attack runs every layer's forward and input gradient at each step with the
/// same layout, and working them out at every call was 5 % of a 99 %-sparse ResNet18's PGD step.
final class SparseHostPlans: Sendable {
  struct Key: Hashable {
    let inputGradient: Bool
    let height: Int
    let width: Int
    let padding: Int
    let stride: Int
    let stack: Int
  }

  /// Offsets in the order the kernel reads the nonzeros; `starts` and `values` that order's rows
  /// and weights where it is not the stored one (empty otherwise).
  struct Plan: Sendable {
    let offsets: [Int64]
    let starts: [Int32]
    let values: [Float]
  }

  /// Layouts kept per weight: the stack depends on the batch, and an attack's batches shrink as
  /// points break (APGD, FAB), so the oldest go beyond a few.
  static let kept = 4
  private let plans = Mutex<[(key: Key, plan: Plan)]>([])

  init() {}

  func plan(_ key: Key, _ make: () -> Plan) -> Plan {
    if let plan = plans.withLock({ $0.first { $0.key == key }?.plan }) { return plan }
    let plan = make()
    plans.withLock {
      $0.append((key, plan))
      if $0.count > Self.kept { $0.removeFirst($0.count - Self.kept) }
    }
    return plan
  }

  /// Layouts kept now (for tests).
  var count: Int { plans.withLock { $0.count } }
}
