import GPU

extension Architecture {
  /// The SmallCNN of the TRADES / MNIST robustness literature, in PyTorch's names:
  /// conv1 Conv2d(1,32,3) ReLU, conv2 Conv2d(32,32,3) ReLU, MaxPool2d(2), conv3 Conv2d(32,64,3) ReLU,
  /// conv4 Conv2d(64,64,3) ReLU, MaxPool2d(2), flatten, fc1 Linear(1024,200) ReLU,
  /// fc2 Linear(200,200) ReLU, fc3 Linear(200,10). 28x28 inputs: 26, 24, 12, 10, 8, 4 -> 64*4*4 = 1024.
  /// Initialised as the TRADES reference does: convs kaiming-normal with zero bias, fc1/fc2
  /// PyTorch's default, fc3 zero. (PyTorch's default everywhere shrinks the signal through seven
  /// ReLU layers and training stalls near chance for the first epochs.)
  func smallCNNLayers(backend b: Backend, rng: inout SeededRNG, channels c: (String, Int) -> Int, inits: Initializers) throws -> [Layer] {
    let he = inits.kaiming
    return [
      try Conv2d(name: "conv1", inChannels: 1, outChannels: c("conv1", 32), kernel: 3, initialization: he, backend: b, rng: &rng), ReLU(backend: b),
      try Conv2d(name: "conv2", inChannels: c("conv1", 32), outChannels: c("conv2", 32), kernel: 3, initialization: he, backend: b, rng: &rng),
      ReLU(backend: b),
      MaxPool2x2(backend: b),
      try Conv2d(name: "conv3", inChannels: c("conv2", 32), outChannels: c("conv3", 64), kernel: 3, initialization: he, backend: b, rng: &rng),
      ReLU(backend: b),
      try Conv2d(name: "conv4", inChannels: c("conv3", 64), outChannels: c("conv4", 64), kernel: 3, initialization: he, backend: b, rng: &rng),
      ReLU(backend: b),
      MaxPool2x2(backend: b),
      Flatten(),
      try Linear(name: "fc1", inputs: c("conv4", 64) * 16, outputs: c("fc1", 200), initialization: inits.pytorch, backend: b, rng: &rng),
      ReLU(backend: b),
      try Linear(name: "fc2", inputs: c("fc1", 200), outputs: c("fc2", 200), initialization: inits.pytorch, backend: b, rng: &rng), ReLU(backend: b),
      try Linear(name: "fc3", inputs: c("fc2", 200), outputs: 10, initialization: .zeros, backend: b, rng: &rng),
    ]
  }
}
