import ArgumentParser
import Foundation
import GPU
import Prune

/// Options of the adversarial-training recipe, shared by train, prune (fine-tuning) and demo.
struct RecipeOptions: ParsableArguments {
  @Option(help: "Batch size (default: the recipe's, 128).") var batchSize: Int?
  @Option(
    help:
      "SGD learning rate (default: the data set's recipe — training 0.05 Fashion-MNIST, 0.1 CIFAR-10, 0.01 SVHN; fine-tuning 0.01, 0.001 for SVHN).")
  var lr: Float?
  @Option(help: "SGD momentum (default 0.9).") var momentum: Float?
  @Option(help: "Weight decay (default 5e-4).") var weightDecay: Float?
  @Option(help: "Adversarial training: pgd (Madry), trades (Zhang et al.) or none.") var adv: String = "pgd"
  @Option(help: "TRADES' beta (weight of the KL term).") var beta: Float = 6
  @Option(help: "Attack radius in input space (default: 0.1 for (Fashion-)MNIST, 8/255 for CIFAR-10 and SVHN).") var eps: Float?
  @Option(help: "PGD step size (default eps/4).") var alpha: Float?
  @Option(help: "PGD steps per training batch (default 10).") var steps: Int?
  @Option(help: "Perturbation norm: linf or l2.") var norm: PerturbationNorm = .linf
  @Option(help: "Learning-rate schedule: constant, cosine, multistep or warmup.") var lrSchedule: LRSchedule = .constant
  @Flag(help: "Nesterov momentum.") var nesterov = false

  func config(_ recipe: Recipe, epochs: Int, learningRate: Float, seed: UInt64) throws -> TrainConfig {
    var attack = recipe.attack
    attack.norm = norm
    if let eps {
      attack.eps = eps
      attack.alpha = eps / 4
    }
    if let alpha { attack.alpha = alpha }
    if let steps { attack.steps = steps }
    let adversarial: PGDConfig?
    var tradesBeta: Float?
    switch adv.lowercased() {
    case "pgd": adversarial = attack
    case "trades":
      adversarial = attack
      tradesBeta = beta
    case "none": adversarial = nil
    default: throw UserError.badValue(name: "--adv", value: adv, problem: "expected pgd, trades or none")
    }
    return TrainConfig(
      epochs: epochs, batchSize: batchSize ?? recipe.batchSize,
      sgd: SGDHyper(
        learningRate: lr ?? learningRate, momentum: momentum ?? recipe.sgd.momentum, weightDecay: weightDecay ?? recipe.sgd.weightDecay,
        nesterov: nesterov),
      attack: adversarial, seed: seed, schedule: lrSchedule, tradesBeta: tradesBeta)
  }
}

struct Train: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train a model with PGD adversarial training (Madry) and save a safetensors checkpoint.",
    discussion: """
      The checkpoint (with SGD momentum) is rewritten atomically after every epoch (and every
      --checkpoint-every N steps); a run killed at any point loses at most the steps since, and
      --resume continues it bit for bit. SIGINT / SIGTERM finish the step in progress, checkpoint
      it and exit 130 / 143; a second one stops at once.
      """)

  @Option(help: "Data set: fashion-mnist, mnist, cifar10 or svhn.") var dataset: String = "fashion-mnist"
  @Option(help: "Directory of the data set's files (default: Debian's /usr/share/datasets/<name>).") var dataDir: String?
  @Option(help: "Architecture: smallcnn, resnet18, vgg16 or vgg16-classic.") var arch: String = "smallcnn"
  @Option(help: "Channel multiplier (1 = the published model; smaller for quick CPU runs).") var width: Double = 1
  @Option(help: "Epochs.") var epochs: Int = 2
  @Option(help: "Use only the first N training images.") var trainLimit: Int?
  @Option(help: "Output checkpoint (.safetensors).") var out: String
  @Flag(help: "Continue the run stored in --out (same recipe) from its last checkpoint.") var resume = false
  @Option(help: "Also checkpoint every N steps inside an epoch (SIGINT/SIGTERM always checkpoints the step they interrupt).")
  var checkpointEvery: Int?
  @Option(name: .customLong("init"), help: "Start from this checkpoint's weights (ours, or a PyTorch state_dict for --arch).") var initialWeights:
    String?
  @Option(help: "Append one JSON line per epoch (loss, lr, gradient norm, held-out clean/robust accuracy) to this file.") var logJson: String?
  @Option(help: "Test images (the first N) of the --log-json held-out evaluation.") var testLimit: Int = 500
  @Option(
    help:
      "Prune while training: gmp (gradual magnitude), flyingbird (dynamic sparse), twinrep, rst (scratch ticket), li20 (boosting ticket) or robustbird (early-bird ticket); needs --sparsity."
  )
  var method: String?
  @Option(help: "With --method: the target share of conv and linear weights removed (gmp filters: of the channels).") var sparsity: Double?
  @Option(help: "With --method gmp: local (default) or global.") var locality: Locality?
  @Option(help: "With --method gmp or twinrep: unstructured (default) or filters.") var structure: Structure = .unstructured
  @Option(help: "TwinRep: the epoch after which it prunes (default: a tenth of the run, at least 1).") var pruneEpoch: String?
  @Option(help: "Li20: epochs of FGSM training that find the ticket before the run (default 1).") var ticketEpochs: String?
  @Option(help: "RobustBird: most epochs of dense training that search for the early bird (default: --epochs).") var searchEpochs: String?
  @Option(help: "RobustBird: masks compared, one per epoch (default 5).") var ebWindow: String?
  @Option(help: "RobustBird: largest share of mask entries that may differ (default 0.08).") var ebThreshold: String?
  @Option(help: "GMP: epoch the schedule starts (default 0).") var pruneStart: String?
  @Option(help: "GMP: epoch the schedule reaches the target (default: 3/4 of the epochs).") var pruneEnd: String?
  @Option(help: "GMP: steps between pruning events (default: a quarter epoch).") var pruneEvery: String?
  @Option(help: "FlyingBird: per-layer densities, erk (default) or uniform.") var densities: String?
  @Option(help: "FlyingBird: steps between mask updates (default: one epoch).") var updateEvery: String?
  @Option(help: "FlyingBird: initial share of active weights replaced per update, cosine-decayed (default 0.5).") var deathRate: String?
  @Option(help: "FlyingBird: regrowth, random (default) or gradient.") var regrowth: String?
  @Option(
    help:
      "FlyingBird, RST, Li20: dense (default, the references') keeps the dense initialisation's scale on a sparse start; scaled multiplies each unit's kept weights by 1/sqrt(its density)."
  )
  var sparseInit: String?
  @OptionGroup var recipe: RecipeOptions
  @OptionGroup var common: CommonOptions

  func run() throws {
    try reportingErrors(resume: "the same command with --resume") {
      GracefulStop.install()
      let architecture = try Architecture(parsing: arch)
      let data = try DatasetName(parsing: dataset)
      let defaults = Recipe.defaults(for: architecture, on: data)
      let config = try recipe.config(defaults, epochs: epochs, learningRate: defaults.sgd.learningRate, seed: common.seed)
      var job = TrainJob(architecture: architecture, dataset: data, dataDirectory: dataDir, trainLimit: trainLimit, config: config, output: out)
      job.width = width
      job.resume = resume
      job.initialWeights = initialWeights
      job.logJSON = logJson
      job.checkpointEvery = checkpointEvery
      job.holdoutPoints = testLimit
      let options = [
        "prune-start": pruneStart, "prune-end": pruneEnd, "prune-every": pruneEvery, "densities": densities, "update-every": updateEvery,
        "death-rate": deathRate, "regrowth": regrowth, "prune-epoch": pruneEpoch, "ticket-epochs": ticketEpochs,
        "search-epochs": searchEpochs, "eb-window": ebWindow, "eb-threshold": ebThreshold, "sparse-init": sparseInit,
      ].compactMapValues { $0 }
      if let method {
        guard let sparsity else { throw UserError.badValue(name: "--method", value: method, problem: "needs --sparsity") }
        job.method = try TrainingMethods.make(method: method, sparsity: sparsity, locality: locality, structure: structure, options: options)
      } else if let given = options.keys.sorted().first ?? (sparsity != nil ? "sparsity" : nil) {
        throw UserError.badValue(name: "--\(given)", value: options[given] ?? "\(sparsity!)", problem: "needs --method")
      }
      let result = try job.run(backend: try common.backend(), progress: common.progress())
      if common.json { return try printJSON(result) }
      if let layers = result.layers, let sparsity = result.sparsity {
        printLayerTable(layers)
        print(String(format: "%@ (%@): %.2f%% of the weights are zero", result.method ?? "", result.cell ?? "", 100 * sparsity))
      }
      let last = result.epochs.last
      print(
        "saved \(result.checkpoint): \(result.epochs.count) epochs on \(result.trainImages) images, \(String(format: "%.0f", result.seconds)) s"
          + (last.map { String(format: ", last epoch loss %.4f, train acc %.2f%%, %.0f img/s", $0.loss, 100 * $0.accuracy, $0.imagesPerSecond) } ?? "")
      )
    }
  }
}
