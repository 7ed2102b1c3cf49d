import Foundation

/// How the learning rate moves over training, as a factor of the base rate at progress
/// `t = (epoch + batch / batches) / epochs` in [0, 1).
public enum LRSchedule: String, CaseIterable, Sendable {
  /// The base rate throughout.
  case constant
  /// `0.5 * (1 + cos(pi t))`, per iteration (HYDRA's and HARP's schedule).
  case cosine
  /// x0.1 at 50 % and again at 75 % of training (Madry's and Rice et al.'s schedule).
  case multistep
  /// Piecewise linear: 0 -> base over the first 40 %, then back to 0 (fast adversarial training).
  case warmup

  public func factor(progress t: Double) -> Double {
    switch self {
    case .constant: return 1
    case .cosine: return 0.5 * (1 + cos(Double.pi * t))
    case .multistep: return t < 0.5 ? 1 : (t < 0.75 ? 0.1 : 0.01)
    case .warmup: return t < 0.4 ? t / 0.4 : max(0, (1 - t) / 0.6)
    }
  }
}
