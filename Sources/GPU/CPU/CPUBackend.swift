import Foundation

/// The reference backend: plain Swift loops (over both cores when large) and CBLAS GEMM.
///
/// It defines what every op means; the OpenCL backend is tested against it. It is also the fast
/// path on machines without a GPU, where it beats OpenCL-on-CPU.
public final class CPUBackend: Backend {
  public let name = "cpu"
  /// Largest im2col matrix (floats) one worker builds at once; larger batches go in slices.
  /// The default, 256 Ki floats (1 MiB), keeps a slice's columns in a core's L2 while GEMM and
  /// col2im stream over them: PGD-10 AT of SmallCNN went from 115-131 to 173-182 img/s against
  /// 8 Mi floats (64 Ki was no faster, 1 Mi was 167).
  let maxColumnFloats: Int
  /// Workers the batch is split over (one per core).
  let workerCount: Int
  /// Whether 3x3 stride-1 convolutions run as Winograd (forward and input gradient); off, they
  /// take the im2col path like every other shape, which tests compare with.
  let winograd: Bool
  /// The Winograd output tile, 2 (F(2x2, 3x3)) or 4 (F(4x4, 3x3)); nil: chosen per pass
  /// (`winogradTile(outHeight:outWidth:)`).
  let winogradTile: Int?
  /// Whether strided convolutions run on the direct kernels (`CKernels/direct_conv.c`); off, they
  /// take the im2col path, which tests compare with.
  let directStrided: Bool
  /// Whether 2x2 max pooling runs as whole-row vector loops (`CKernels/maxpool.c`) instead of the
  /// reference's loop over windows.
  let vectorPooling: Bool
  /// Whether forward-only passes keep sparse activations on the grid (`prefersResidentGrid`).
  /// Off by default: the stacked path's stacks of a few images stay in L2 between the copy, the
  /// products and the copy back, where a whole batch's grid streams from memory at every layer;
  /// a 99 %-sparse ResNet18's clean pass at 64 images took 0.056-0.066 s kept on the grid
  /// against 0.039-0.047 s stacked (AVX-512 host, alternating runs).
  let residentGrid: Bool
  /// Floats a depth-first run (`runPerImage`) keeps per worker for a slice of images: their
  /// tensors and the largest step's scratch (default: five eighths of a core's L2,
  /// `defaultDepthFirstFloats`); 0 runs every step over the whole batch in turn.
  let depthFirstFloats: Int
  /// Runs `runPerImage` took depth first (tests: which schedule ran).
  var depthFirstRuns = 0
  private let columns: [CPUScratch]
  private let others: [CPUScratch]
  /// Rearranged weights of the current Winograd or direct convolution, shared by the workers.
  let transformedWeights = CPUScratch()

  /// The plain reference every fast path is checked against: no Winograd, no direct strided
  /// kernels, no vector pooling, no depth-first runs (the parity suite, the cross-backend tests,
  /// `advprune validate`).
  public static func reference() -> CPUBackend {
    CPUBackend(winograd: false, directStrided: false, vectorPooling: false, depthFirstFloats: 0)
  }

  public init(
    maxColumnFloats: Int = 256 << 10, workers: Int = ProcessInfo.processInfo.activeProcessorCount, winograd: Bool = true,
    winogradTile: Int? = nil, directStrided: Bool = true, vectorPooling: Bool = true, residentGrid: Bool = false,
    depthFirstFloats: Int = CPUBackend.defaultDepthFirstFloats
  ) {
    precondition(winogradTile.map { [2, 4].contains($0) } ?? true, "Winograd tiles are 2 or 4")
    self.maxColumnFloats = maxColumnFloats
    workerCount = max(1, workers)
    self.winograd = winograd
    self.winogradTile = winogradTile
    self.directStrided = directStrided
    self.vectorPooling = vectorPooling
    self.residentGrid = residentGrid
    self.depthFirstFloats = depthFirstFloats
    columns = (0..<workerCount).map { _ in CPUScratch() }
    others = (0..<workerCount).map { _ in CPUScratch() }
  }

  /// Per-worker scratch: a column buffer and a second buffer (GEMM output or transposed dy).
  func workerScratch(columns count: Int, other otherCount: Int) -> [(UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)] {
    (0..<workerCount).map { (columns[$0].reserve(count), others[$0].reserve(otherCount)) }
  }

  func ptr(_ t: Tensor) -> UnsafeMutablePointer<Float> {
    guard let s = t.storage as? CPUStorage else {
      preconditionFailure("tensor of another backend given to the CPU backend")
    }
    return s.pointer
  }

  public func zeros(_ shape: [Int]) throws -> Tensor {
    Tensor(storage: CPUStorage(count: shape.reduce(1, *)), shape: shape)
  }

  public func upload(_ values: [Float], shape: [Int]) throws -> Tensor {
    let t = try zeros(shape)
    try write(values, to: t)
    return t
  }

  public func write(_ values: [Float], to tensor: Tensor) throws {
    precondition(values.count == tensor.count, "write: \(values.count) values into a tensor of \(tensor.count)")
    values.withUnsafeBufferPointer { ptr(tensor).update(from: $0.baseAddress!, count: values.count) }
  }

  public func download(_ tensor: Tensor) throws -> [Float] {
    Array(UnsafeBufferPointer(start: ptr(tensor), count: tensor.count))
  }

  public func copy(from source: Tensor, to destination: Tensor) throws {
    checkSameCount(source, destination, op: "copy")
    ptr(destination).update(from: ptr(source), count: source.count)
  }

  public func fill(_ tensor: Tensor, value: Float) throws {
    ptr(tensor).update(repeating: value, count: tensor.count)
  }

  public func synchronize() throws {}

  /// Winograd convolutions keep the transforms of a frozen weight with it (`CPUStorage.derived`).
  public func freeze(_ tensor: Tensor) { (tensor.storage as? CPUStorage)?.freeze() }

  public func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: Tensor, b: Tensor, beta: Float, c: Tensor
  ) throws {
    precondition(a.count >= m * k && b.count >= k * n && c.count >= m * n, "gemm: operands too small")
    blasGemm(
      transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
      a: ptr(a), b: ptr(b), beta: beta, c: ptr(c))
  }
}
