import GPU

extension Architecture {
  /// CIFAR ResNet18 (the survey's): conv1 3x3 stride 1 + bn1 + ReLU, layer1..layer4 of two
  /// BasicBlocks each (64, 128, 256, 512 channels; stride 2 at the start of layers 2-4), 4x4
  /// average pool, `linear` 512->10. Convs are bias-free and kaiming-normal initialised.
  /// `c(group, published)` gives each channel group's count (see `channelGroups`).
  func resNet18Layers(backend b: Backend, rng: inout SeededRNG, channels c: (String, Int) -> Int, inits: Initializers) throws -> [Layer] {
    var layers: [Layer] = [
      try Conv2d(
        name: "conv1", inChannels: 3, outChannels: c("stream1", 64), kernel: 3, padding: 1, bias: false, initialization: inits.kaiming, backend: b,
        rng: &rng),
      try BatchNorm2d(name: "bn1", channels: c("stream1", 64), backend: b), ReLU(backend: b),
    ]
    var inChannels = c("stream1", 64)
    for (stage, width) in [64, 128, 256, 512].enumerated() {
      for block in 0..<2 {
        let stride = stage > 0 && block == 0 ? 2 : 1
        let name = "layer\(stage + 1).\(block)"
        let stream = c("stream\(stage + 1)", width)
        layers.append(
          try BasicBlock(
            name: name, inChannels: inChannels, midChannels: c(name + ".conv1", width), outChannels: stream, stride: stride,
            initialization: inits.kaiming, backend: b,
            rng: &rng))
        inChannels = stream
      }
    }
    layers += [
      AvgPool(kernel: 4, backend: b), Flatten(),
      try Linear(name: "linear", inputs: inChannels, outputs: 10, initialization: inits.pytorch, backend: b, rng: &rng),
    ]
    return layers
  }
}
