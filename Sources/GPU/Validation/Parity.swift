/// How far a candidate result is from the reference: `|got - ref| <= atol + rtol * |ref|` per element.
public struct ParityReport: CustomStringConvertible {
  public let maxAbsoluteError: Float
  public let maxRelativeError: Float
  /// The first few failing elements: (index, reference, got).
  public let mismatches: [(index: Int, reference: Float, got: Float)]
  public let mismatchCount: Int
  public var passed: Bool { mismatchCount == 0 }

  public init(reference: [Float], got: [Float], atol: Float, rtol: Float) {
    precondition(reference.count == got.count, "parity: \(reference.count) reference values vs \(got.count)")
    var maxAbs: Float = 0
    var maxRel: Float = 0
    var firsts: [(Int, Float, Float)] = []
    var count = 0
    for i in 0..<reference.count {
      let (r, g) = (reference[i], got[i])
      // Equal infinities agree (a distance no attack found is +inf on both backends).
      let diff = r == g ? 0 : abs(r - g)
      let bad = !(diff <= atol + rtol * abs(r)) || g.isNaN != r.isNaN
      maxAbs = max(maxAbs, diff.isNaN ? .infinity : diff)
      if abs(r) > 1e-6 { maxRel = max(maxRel, diff / abs(r)) }
      if bad {
        count += 1
        if firsts.count < 5 { firsts.append((i, r, g)) }
      }
    }
    maxAbsoluteError = maxAbs
    maxRelativeError = maxRel
    mismatches = firsts
    mismatchCount = count
  }

  public var description: String {
    var text = "max abs \(maxAbsoluteError), max rel \(maxRelativeError)"
    if !passed {
      text += ", \(mismatchCount) mismatches; first: "
      text += mismatches.map { "[\($0.index)] ref \($0.reference) got \($0.got)" }.joined(separator: ", ")
    }
    return text
  }
}
