import Foundation
import GPU

/// How a sparse start scales the weights it keeps. A dense initialisation sets each unit's weight
/// variance from its full fan-in; a mask that keeps a share d of it shrinks the unit's output by
/// sqrt(d), layer after layer. Networks with batch norm (the references' ResNets) undo that; a
/// plain stack such as SmallCNN does not, and at 90 % its logits start ~1e-4 of the dense ones and
/// the loss never moves. `scaled` multiplies the kept weights of each output unit by
/// 1/sqrt(kept/fan_in), the unit's own density (Evci et al., "Gradient flow in sparse neural
/// networks", 2022; edge-popup's `scale_fan` does the same per layer).
public enum SparseInit: String, Sendable, CaseIterable {
  /// The reference implementations': kept weights keep the dense initialisation's scale.
  case dense
  /// Kept weights rescaled to the dense fan-in variance, per output unit.
  case scaled

  static func parse(_ options: MethodOptions) throws -> SparseInit {
    guard let text = options["sparse-init"] else { return .dense }
    guard let value = SparseInit(rawValue: text) else {
      throw MethodOptions.refuse("--sparse-init", text, "expected \(allCases.map(\.rawValue).joined(separator: " or "))")
    }
    return value
  }

  /// The factor a unit keeping `kept` of `fanIn` inputs is multiplied by.
  static func factor(kept: Int, fanIn: Int) -> Float {
    kept == 0 ? 1 : (Float(fanIn) / Float(kept)).squareRoot()
  }

  /// Rescales the kept weights of every masked prunable layer of `model` (no-op for `dense`).
  func apply(to model: Model) throws {
    guard self == .scaled else { return }
    let backend = model.backend
    for p in model.prunableParameters {
      guard let maskTensor = model.mask(of: p) else { continue }
      let mask = try backend.download(maskTensor)
      var w = try backend.download(p.value)
      let units = max(1, p.shape[0])
      let fanIn = p.count / units
      for u in 0..<units {
        let row = u * fanIn..<(u + 1) * fanIn
        let f = Self.factor(kept: mask[row].reduce(0) { $0 + ($1 != 0 ? 1 : 0) }, fanIn: fanIn)
        for i in row { w[i] *= f }
      }
      try backend.write(w, to: p.value)
    }
  }
}
