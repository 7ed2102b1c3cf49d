import GPU

extension Architecture {
  /// The SmallCNN of the TRADES / MNIST robustness literature, in PyTorch's names:
  /// conv1 Conv2d(1,32,3) ReLU, conv2 Conv2d(32,32,3) ReLU, MaxPool2d(2), conv3 Conv2d(32,64,3) ReLU,
  /// conv4 Conv2d(64,64,3) ReLU, MaxPool2d(2), flatten, fc1 Linear(1024,200) ReLU,
  /// fc2 Linear(200,200) ReLU, fc3 Linear(200,10). 28x28 inputs: 26, 24, 12, 10, 8, 4 -> 64*4*4 = 1024.
  /// Initialised as the TRADES reference does: convs kaiming-normal with zero bias, fc1/fc2
  /// PyTorch's default, fc3 zero. (PyTorch's default everywhere shrinks the signal through seven
  /// ReLU layers and training stalls near chance for the first epochs.)
  func smallCNN(backend b: Backend, rng: inout SeededRNG) throws -> Model {
    let he = WeightInit.kaimingNormal
    let layers: [Layer] = [
      try Conv2d(name: "conv1", inChannels: 1, outChannels: 32, kernel: 3, initialization: he, backend: b, rng: &rng), ReLU(backend: b),
      try Conv2d(name: "conv2", inChannels: 32, outChannels: 32, kernel: 3, initialization: he, backend: b, rng: &rng), ReLU(backend: b),
      MaxPool2x2(backend: b),
      try Conv2d(name: "conv3", inChannels: 32, outChannels: 64, kernel: 3, initialization: he, backend: b, rng: &rng), ReLU(backend: b),
      try Conv2d(name: "conv4", inChannels: 64, outChannels: 64, kernel: 3, initialization: he, backend: b, rng: &rng), ReLU(backend: b),
      MaxPool2x2(backend: b),
      Flatten(),
      try Linear(name: "fc1", inputs: 1024, outputs: 200, backend: b, rng: &rng), ReLU(backend: b),
      try Linear(name: "fc2", inputs: 200, outputs: 200, backend: b, rng: &rng), ReLU(backend: b),
      try Linear(name: "fc3", inputs: 200, outputs: 10, initialization: .zeros, backend: b, rng: &rng),
    ]
    return Model(architecture: .smallcnn, backend: b, layers: layers)
  }
}
