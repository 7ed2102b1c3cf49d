import Foundation

/// The kernel workbench behind `advprune bench-kernel`: each convolution and GEMM of the survey's
/// layer shapes, run by every OpenCL engine variant, checked against the CPU reference on the
/// same inputs, then timed (warm-up, median of N) with FLOP and byte rates and the share of the
/// device's measured FMA peak.
public enum KernelBench {
  public static let ops = ["conv-forward", "conv-backward-data", "conv-backward-weight", "gemm"]

  /// One layer shape of a model, at `batch` images.
  public struct Shape: Sendable {
    public let layer: String
    /// A convolution, or nil for a linear layer (`gemmShape`).
    public let conv: ConvGeometry?
    /// Linear layer as GEMM: rows (batch) x outputs x inputs.
    public let gemmShape: (m: Int, n: Int, k: Int)?

    var description: String {
      if let g = conv { return "\(layer) \(g)" }
      let s = gemmShape!
      return "\(layer) \(s.m)x\(s.n)x\(s.k)"
    }
  }

  /// The distinct conv and linear shapes of SmallCNN (Fashion-MNIST) and ResNet18 (CIFAR-10).
  public static func shapes(model: String, batch b: Int) -> [Shape]? {
    func conv(_ name: String, _ c: Int, _ h: Int, _ o: Int, _ k: Int, _ s: Int, _ p: Int) -> Shape {
      Shape(
        layer: name, conv: ConvGeometry(batch: b, inChannels: c, height: h, width: h, outChannels: o, kernel: k, stride: s, padding: p),
        gemmShape: nil)
    }
    func linear(_ name: String, _ inputs: Int, _ outputs: Int) -> Shape { Shape(layer: name, conv: nil, gemmShape: (b, outputs, inputs)) }
    switch model {
    case "smallcnn":
      return [
        conv("conv1", 1, 28, 32, 3, 1, 0), conv("conv2", 32, 26, 32, 3, 1, 0), conv("conv3", 32, 12, 64, 3, 1, 0),
        conv("conv4", 64, 10, 64, 3, 1, 0), linear("fc1", 1024, 200), linear("fc2", 200, 200),
      ]
    case "resnet18":
      return [
        conv("conv1", 3, 32, 64, 3, 1, 1), conv("layer1", 64, 32, 64, 3, 1, 1), conv("layer2.0.conv1", 64, 32, 128, 3, 2, 1),
        conv("layer2", 128, 16, 128, 3, 1, 1), conv("layer2.0.shortcut", 64, 32, 128, 1, 2, 0), conv("layer3.0.conv1", 128, 16, 256, 3, 2, 1),
        conv("layer3", 256, 8, 256, 3, 1, 1), conv("layer4.0.conv1", 256, 8, 512, 3, 2, 1), conv("layer4", 512, 4, 512, 3, 1, 1),
        linear("linear", 512, 10),
      ]
    default: return nil
    }
  }

  public struct Result: Codable, Sendable {
    public let op: String
    public let shape: String
    public let variant: String
    public let milliseconds: Double
    public let gflops: Double
    public let gigabytesPerSecond: Double
    /// Share of the device's measured FMA peak (0...1).
    public let peakShare: Double
    public let maxAbsError: Double
    public let passed: Bool
  }

  /// Whether `op` applies to `shape` (GEMM to linear layers, the conv ops to convolutions).
  public static func applies(_ op: String, to shape: Shape) -> Bool { (op == "gemm") == (shape.conv == nil) }

  /// Runs `op` on `shape` with every variant: validated against `reference`, then timed.
  public static func run(
    op: String, shape: Shape, variants: [(name: String, backend: OpenCLBackend)], reference: Backend, repeats: Int, peakGflops: Double,
    seed: UInt64 = 1
  ) throws -> [Result] {
    let work = Work(op: op, shape: shape, seed: seed)
    let want = try work.outputs(on: reference)
    var results: [Result] = []
    for (name, backend) in variants {
      let got = try work.outputs(on: backend)
      let error = zip(want, got).map { Double(abs($0 - $1)) }.max() ?? 0
      let scale = Double(want.map { abs($0) }.max() ?? 1)
      let passed = error <= 1e-4 * max(1, scale) && got.allSatisfy(\.isFinite)
      let prepared = try work.prepare(on: backend)
      try prepared()
      try backend.synchronize()
      var times: [Double] = []
      for _ in 0..<max(1, repeats) {
        let start = DispatchTime.now().uptimeNanoseconds
        try prepared()
        try backend.synchronize()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
      }
      let seconds = times.sorted()[times.count / 2]
      let gflops = work.flops / seconds / 1e9
      results.append(
        Result(
          op: op, shape: shape.description, variant: name, milliseconds: seconds * 1e3, gflops: gflops,
          gigabytesPerSecond: work.bytes / seconds / 1e9, peakShare: peakGflops > 0 ? gflops / peakGflops : 0, maxAbsError: error,
          passed: passed))
    }
    return results
  }

  /// The inputs and the op of one (op, shape) pair.
  struct Work {
    let op: String
    let shape: Shape
    let inputs: [[Float]]
    let flops: Double
    /// Bytes the op must read and write at least (operands and result once).
    let bytes: Double

    init(op: String, shape: Shape, seed: UInt64) {
      var rng = SeededRNG(seed: seed)
      self.op = op
      self.shape = shape
      if let g = shape.conv {
        let (xc, wc, yc) = (g.inputShape.reduce(1, *), g.weightShape.reduce(1, *), g.outputShape.reduce(1, *))
        inputs = [rng.uniformArray(xc), rng.uniformArray(wc).map { $0 * 0.1 }, rng.uniformArray(g.outChannels), rng.uniformArray(yc)]
        flops = g.forwardFlops
        bytes = 4 * Double(xc + wc + yc)
      } else {
        let s = shape.gemmShape!
        inputs = [rng.uniformArray(s.m * s.k), rng.uniformArray(s.n * s.k).map { $0 * 0.1 }]
        flops = 2 * Double(s.m * s.n * s.k)
        bytes = 4 * Double(s.m * s.k + s.n * s.k + s.m * s.n)
      }
    }

    /// Uploads the inputs and returns the op as a closure (so timing leaves the uploads out) and
    /// the tensor it writes.
    func prepareWithOutput(on b: Backend) throws -> (run: () throws -> Void, output: Tensor) {
      if let g = shape.conv {
        let x = try b.upload(inputs[0], shape: g.inputShape)
        let w = try b.upload(inputs[1], shape: g.weightShape)
        let bias = try b.upload(inputs[2], shape: [g.outChannels])
        let dy = try b.upload(inputs[3], shape: g.outputShape)
        switch op {
        case "conv-forward":
          let y = try b.zeros(g.outputShape)
          return ({ try b.conv2dForward(y: y, x: x, weight: w, bias: bias, geometry: g, relu: false) }, y)
        case "conv-backward-data":
          let dx = try b.zeros(g.inputShape)
          return ({ try b.conv2dBackwardData(dx: dx, dy: dy, weight: w, geometry: g, reluOutput: nil) }, dx)
        default:
          let dw = try b.zeros(g.weightShape)
          let db = try b.zeros([g.outChannels])
          return ({ try b.conv2dBackwardWeight(dWeight: dw, dBias: db, dy: dy, x: x, geometry: g) }, dw)
        }
      }
      let s = shape.gemmShape!
      let x = try b.upload(inputs[0], shape: [s.m, s.k])
      let w = try b.upload(inputs[1], shape: [s.n, s.k])
      let y = try b.zeros([s.m, s.n])
      return ({ try b.linearForward(y: y, x: x, weight: w, bias: nil) }, y)
    }

    func prepare(on b: Backend) throws -> () throws -> Void { try prepareWithOutput(on: b).run }

    func outputs(on b: Backend) throws -> [Float] {
      let (run, output) = try prepareWithOutput(on: b)
      try run()
      return try b.download(output)
    }
  }
}
