import GPU

/// The attacks `advprune attack --attack NAME` can run.
public enum AttackKind: String, CaseIterable, Sendable {
  case fgsm
  case pgd
  case apgdCE = "apgd-ce"
  case apgdDLR = "apgd-dlr"
  case apgdT = "apgd-t"
  case fabT = "fab-t"
  case square
  case autoattack
  case fmn
}

/// AutoAttack's versions: standard (APGD-CE, APGD-T, FAB-T, Square) and fast (APGD-CE, APGD-T),
/// for grids.
public enum AutoAttackVersion: String, CaseIterable, Sendable {
  case standard
  case fast
}

/// One evaluation's attack settings as the user gave them; `nil` means the attack's own default
/// (the reference implementations': PGD 40 steps of eps/10, APGD 100 iterations, FAB 100, Square
/// 5000 queries, FMN 200 steps).
public struct AttackPlan: Sendable {
  public var kind: AttackKind
  public var norm: PerturbationNorm
  public var eps: Float
  public var steps: Int?
  public var alpha: Float?
  public var restarts: Int = 1
  public var loss: AttackLoss?
  public var version: AutoAttackVersion = .standard
  public var targets: Int = 9
  public var queries: Int?

  public init(kind: AttackKind, norm: PerturbationNorm, eps: Float) {
    self.kind = kind
    self.norm = norm
    self.eps = eps
  }

  /// The plan of one PGD run (the recipes' evaluation).
  public init(pgd config: PGDConfig) {
    self.init(kind: .pgd, norm: config.norm, eps: config.eps)
    steps = config.steps
    alpha = config.alpha
    restarts = config.restarts
    loss = config.loss
  }

  /// Refuses what no attack can run with, naming the option.
  public func validate(classes: Int, pointChannels: Int = 1) throws {
    if !(eps >= 0 && eps.isFinite) { throw UserError.badValue(name: "--eps", value: "\(eps)", problem: "must be a finite number >= 0") }
    if norm == .linf && eps > 1 {
      throw UserError.badValue(name: "--eps", value: "\(eps)", problem: "an L-inf radius above 1 covers the whole [0, 1] box")
    }
    if let steps, steps < 0 { throw UserError.badValue(name: "--steps", value: "\(steps)", problem: "must be >= 0") }
    if restarts < 1 { throw UserError.badValue(name: "--restarts", value: "\(restarts)", problem: "must be >= 1") }
    if targets < 1 || targets > classes - 1 {
      throw UserError.badValue(name: "--targets", value: "\(targets)", problem: "must be in 1...\(classes - 1) for \(classes) classes")
    }
    if let queries, queries < 0 { throw UserError.badValue(name: "--queries", value: "\(queries)", problem: "must be >= 0") }
    if let alpha, !(alpha >= 0 && alpha.isFinite) { throw UserError.badValue(name: "--alpha", value: "\(alpha)", problem: "must be >= 0") }
    if norm == .l1 && kind != .fmn {
      throw UserError.badValue(name: "--norm", value: "l1", problem: "only --attack fmn measures L1 distances")
    }
    if (kind == .square || kind == .autoattack && version == .standard) && norm == .l2 && pointChannels > 4 {
      throw UserError.badValue(name: "--norm", value: norm.rawValue, problem: "Square L2 takes images of at most 4 channels")
    }
    if let loss {
      let allowed: [AttackLoss] =
        switch kind {
        case .fgsm, .pgd: [.crossEntropy, .dlr, .margin]
        case .fmn: [.margin, .crossEntropy, .dlr]
        default: []
        }
      if !allowed.contains(loss) {
        throw UserError.badValue(
          name: "--loss", value: loss.rawValue,
          problem: allowed.isEmpty ? "\(kind.rawValue) has a fixed loss" : "\(kind.rawValue) takes \(allowed.map(\.rawValue).joined(separator: ", "))"
        )
      }
    }
  }

  /// The bounded attacks to run in order (FMN is not one: see `MinimumNormEvaluation`).
  public func attacks(backend: Backend) -> [BoundedAttack] {
    let iterations = steps ?? 100
    switch kind {
    case .fgsm: return [PGDAttack(config: .fgsm(eps: eps, norm: norm, loss: loss ?? .crossEntropy), backend: backend)]
    case .pgd:
      let config = PGDConfig(
        eps: eps, alpha: alpha ?? eps / 10, steps: steps ?? 40, norm: norm, randomStart: true, restarts: restarts, loss: loss ?? .crossEntropy)
      return [PGDAttack(config: config, backend: backend)]
    case .apgdCE: return [APGDAttack(eps: eps, norm: norm, loss: .crossEntropy, iterations: iterations, restarts: restarts)]
    case .apgdDLR: return [APGDAttack(eps: eps, norm: norm, loss: .dlr, iterations: iterations, restarts: restarts)]
    case .apgdT: return [APGDAttack(eps: eps, norm: norm, loss: .targetedDLR, iterations: iterations, restarts: restarts, targets: targets)]
    case .fabT: return [FABAttack(eps: eps, norm: norm, iterations: iterations, targets: targets)]
    case .square: return [SquareAttack(eps: eps, norm: norm, queries: queries ?? 5000)]
    case .autoattack:
      var ensemble: [BoundedAttack] = [
        APGDAttack(eps: eps, norm: norm, loss: .crossEntropy, iterations: iterations),
        APGDAttack(eps: eps, norm: norm, loss: .targetedDLR, iterations: iterations, targets: targets),
      ]
      if version == .standard {
        ensemble.append(FABAttack(eps: eps, norm: norm, iterations: iterations, targets: targets))
        ensemble.append(SquareAttack(eps: eps, norm: norm, queries: queries ?? 5000))
      }
      return ensemble
    case .fmn: return []
    }
  }

  /// How the attacks are described in results ("autoattack standard linf eps 0.1: apgd-ce, ...").
  public func description(of attacks: [BoundedAttack]) -> String {
    let names = attacks.map(\.name).joined(separator: ", ")
    let head = kind == .autoattack ? "autoattack \(version.rawValue)" : kind.rawValue
    return "\(head) \(norm.rawValue) eps \(eps): \(names)"
  }
}
