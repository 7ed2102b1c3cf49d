/// Locality of a pruning method (DESIGN.md, the survey's taxonomy): the same rate in every layer,
/// or one ranking across layers so each layer gets its own rate.
public enum Locality: String, CaseIterable, Sendable {
  case local
  case global
}

/// What pruning removes: single weights, or whole conv filters (channels) that
/// `advprune export --compact` can then take out of the model.
public enum Structure: String, CaseIterable, Sendable {
  case unstructured
  case filter
}

/// What ranks the weights. `magnitude` is the survey's LWM (lowest weight magnitude);
/// `random` is the control every table needs.
public enum Criterion: String, CaseIterable, Sendable {
  case magnitude
  case random

  public init(parsing name: String) throws {
    let aliases = ["lwm": Criterion.magnitude]
    guard let c = Criterion(rawValue: name.lowercased()) ?? aliases[name.lowercased()] else {
      throw UserError.badValue(
        name: "--criterion", value: name, problem: "unknown; known: \(Criterion.allCases.map(\.rawValue).joined(separator: ", ")) (lwm = magnitude)")
    }
    self = c
  }
}
