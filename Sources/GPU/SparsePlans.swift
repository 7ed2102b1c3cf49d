import Synchronization

/// What a backend derives from a sparse weight for one layout of the stacks (each nonzero's source
/// offset; for the input gradient the nonzeros regrouped by stride phase), kept with the weight:
/// an attack runs every layer's forward and input gradient at each step with the same layout, and
/// working them out at every call was 5 % of a 99 %-sparse ResNet18's PGD step on the CPU.
final class SparsePlans<Plan: Sendable>: Sendable {
  /// Layouts kept per weight: the stack depends on the batch, and an attack's batches shrink as
  /// points break (APGD, FAB), so the oldest go beyond a few.
  static var kept: Int { 4 }
  private let plans = Mutex<[(key: SparsePlanKey, plan: Plan)]>([])

  init() {}

  func plan(_ key: SparsePlanKey, _ make: () throws -> Plan) rethrows -> Plan {
    if let plan = plans.withLock({ $0.first { $0.key == key }?.plan }) { return plan }
    let plan = try make()
    plans.withLock {
      $0.append((key, plan))
      if $0.count > Self.kept { $0.removeFirst($0.count - Self.kept) }
    }
    return plan
  }

  /// Layouts kept now (for tests).
  var count: Int { plans.withLock { $0.count } }
}
