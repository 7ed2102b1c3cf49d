import GPU

/// The default training recipe of an architecture on a data set (what `advprune train` uses
/// unless told otherwise).
public struct Recipe: Sendable {
  public var batchSize: Int
  public var sgd: SGDHyper
  public var attack: PGDConfig
  /// Fine-tuning learning rate after pruning.
  public var finetuneLearningRate: Float
  /// The evaluation attack: PGD-40 with step eps/10.
  public var evaluation: PGDConfig

  /// SmallCNN on Fashion-MNIST / MNIST: SGD lr 0.05, momentum 0.9, wd 5e-4, batch 128;
  /// PGD-AT eps 0.1, 10 steps of 0.025; fine-tune at lr 0.01; evaluate with PGD-40 step 0.01.
  /// CIFAR-10: SGD lr 0.1, momentum 0.9, wd 5e-4, batch 128; PGD-AT eps 8/255, 10 steps of 2/255
  /// (Madry / HYDRA); fine-tune at lr 0.01; evaluate with PGD-40 step eps/10.
  /// SVHN: as CIFAR-10 but lr 0.01 (PGD-AT on SVHN commonly diverges at 0.1) and fine-tune at 0.001.
  public static func defaults(for architecture: Architecture, on dataset: DatasetName) -> Recipe {
    let eps = dataset.defaultEps
    if dataset == .cifar10 || dataset == .svhn {
      let svhn = dataset == .svhn
      return Recipe(
        batchSize: 128, sgd: SGDHyper(learningRate: svhn ? 0.01 : 0.1, momentum: 0.9, weightDecay: 5e-4),
        attack: PGDConfig(eps: eps, alpha: eps / 4, steps: 10), finetuneLearningRate: svhn ? 0.001 : 0.01,
        evaluation: PGDConfig(eps: eps, alpha: eps / 10, steps: 40))
    }
    return Recipe(
      batchSize: 128, sgd: SGDHyper(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4),
      attack: PGDConfig(eps: eps, alpha: eps / 4, steps: 10), finetuneLearningRate: 0.01,
      evaluation: PGDConfig(eps: eps, alpha: eps / 10, steps: 40))
  }
}
