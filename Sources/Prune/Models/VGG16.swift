import GPU

extension Architecture {
  /// VGG16 with batch norm for 32x32 inputs. `features.<i>` numbers the modules of PyTorch's
  /// `nn.Sequential` (conv, bn, relu per conv; one index per max-pool), so state_dict names match
  /// the HYDRA/HARP code (`features.0.weight`, `features.1.running_mean`, ..., `classifier.0.weight`).
  /// HYDRA/HARP layout: 13 bias-free 3x3 convs, 4 max-pools, adaptive average pool to 2x2 (the
  /// identity on the 2x2 maps 32x32 inputs give), classifier 2048->256->256->10.
  /// Classic layout: 5 max-pools and one `classifier` linear 512->10.
  func vggLayers(backend b: Backend, rng: inout SeededRNG, channels c: (String, Int) -> Int, classic: Bool, inits: Initializers) throws -> [Layer] {
    let config = Self.vggPlan(classic: classic)
    var layers: [Layer] = []
    var index = 0
    var inChannels = 3
    for entry in config {
      if let published = entry {
        let width = c("features.\(index)", published)
        layers += [
          try Conv2d(
            name: "features.\(index)", inChannels: inChannels, outChannels: width, kernel: 3, padding: 1, bias: false, initialization: inits.kaiming,
            backend: b, rng: &rng),
          try BatchNorm2d(name: "features.\(index + 1)", channels: width, backend: b), ReLU(backend: b),
        ]
        index += 3
        inChannels = width
      } else {
        layers.append(MaxPool2x2(backend: b))
        index += 1
      }
    }
    if classic {
      return layers + [
        Flatten(), try Linear(name: "classifier", inputs: inChannels, outputs: 10, initialization: inits.pytorch, backend: b, rng: &rng),
      ]
    }
    return layers + [
      AvgPool(kernel: 1, backend: b), Flatten(),
      try Linear(name: "classifier.0", inputs: inChannels * 4, outputs: c("classifier.0", 256), initialization: inits.pytorch, backend: b, rng: &rng),
      ReLU(backend: b),
      try Linear(
        name: "classifier.2", inputs: c("classifier.0", 256), outputs: c("classifier.2", 256), initialization: inits.pytorch, backend: b, rng: &rng),
      ReLU(backend: b),
      try Linear(name: "classifier.4", inputs: c("classifier.2", 256), outputs: 10, initialization: inits.pytorch, backend: b, rng: &rng),
    ]
  }

  /// Conv widths in order, nil for a max-pool (PyTorch's `cfg` list).
  static func vggPlan(classic: Bool) -> [Int?] {
    [64, 64, nil, 128, 128, nil, 256, 256, 256, nil, 512, 512, 512, nil, 512, 512, 512] + (classic ? [nil] : [])
  }
}
