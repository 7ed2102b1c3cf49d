import GPU
import XCTest

@testable import Prune

/// Finite-difference check of a whole chain of layers (conv, ReLU, pool, flatten, linear) with a
/// mask, through `Model.backward`, on the CPU reference.
final class ModelGradientTests: XCTestCase {
  func makeModel(_ b: Backend) throws -> Model {
    var rng = SeededRNG(seed: 21)
    let layers: [Layer] = [
      try Conv2d(name: "conv1", inChannels: 1, outChannels: 3, kernel: 3, backend: b, rng: &rng), ReLU(backend: b),
      MaxPool2x2(backend: b), Flatten(),
      try Linear(name: "fc", inputs: 3 * 2 * 2, outputs: 4, backend: b, rng: &rng),
    ]
    return Model(architecture: .smallcnn, backend: b, layers: layers)
  }

  func testParameterAndInputGradientsMatchFiniteDifferences() throws {
    let cpu = CPUBackend()
    let model = try makeModel(cpu)
    var rng = SeededRNG(seed: 22)
    let conv = model.parameters[0]
    model.pruning.setMask(try cpu.upload((0..<conv.count).map { $0 % 4 == 0 ? 0 : 1 }, shape: conv.shape), for: conv.name)
    let xHost = rng.uniformArray(2 * 36, 0, 1)
    let labels = try cpu.upload([1, 3], shape: [2])
    func loss(_ xs: [Float]) throws -> Double {
      let logits = try model.forward(try cpu.upload(xs, shape: [2, 1, 6, 6]))
      let l = try cpu.zeros([2])
      try cpu.softmaxCrossEntropy(losses: l, dLogits: nil, logits: logits, labels: labels, scale: 1)
      return try cpu.download(l).reduce(0) { $0 + Double($1) }
    }
    let logits = try model.forward(try cpu.upload(xHost, shape: [2, 1, 6, 6]))
    let (l, d) = (try cpu.zeros([2]), try cpu.zeros([2, 4]))
    try cpu.softmaxCrossEntropy(losses: l, dLogits: d, logits: logits, labels: labels, scale: 1)
    let dx = try XCTUnwrap(try model.backward(d, parameterGradients: true, inputGradient: true))
    let h: Float = 1e-3
    func numeric(_ values: [Float], set: ([Float]) throws -> Void) throws -> [Float] {
      defer { try? set(values) }
      return try centralDifferences(values, h: h) { probe in
        try set(probe)
        return try loss(xHost)
      }
    }
    let numericDx = try centralDifferences(xHost, h: h, loss)
    assertClose(try cpu.download(dx), numericDx, atol: 2e-3, rtol: 2e-2, "dL/dx")
    for p in model.parameters {
      let analytic = try cpu.download(p.grad)
      let values = try cpu.download(p.value)
      let n = try numeric(values) { try cpu.write($0, to: p.value) }
      if let mask = model.mask(of: p) {
        // The gradient of the effective weight; the optimiser masks it. Compare where the mask is 1.
        let m = try cpu.download(mask)
        assertClose(zip(analytic, m).map { $0 * $1 }, zip(n, m).map { $0 * $1 }, atol: 2e-3, rtol: 2e-2, p.name)
      } else {
        assertClose(analytic, n, atol: 2e-3, rtol: 2e-2, p.name)
      }
    }
  }
}
