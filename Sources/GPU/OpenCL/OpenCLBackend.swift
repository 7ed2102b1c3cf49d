import COpenCL
import Foundation

/// The fast backend: kernels from `kernels/*.cl` compiled at run time; convolutions and GEMMs on
/// our own implicit-GEMM kernels (or, as the baseline, im2col around CLBlast: `engine`).
///
/// One context and one in-order queue with profiling on; every op is queued without waiting,
/// and only `download`/`synchronize` block. With `profiling` set, each kernel's and transfer's
/// device time is read from its event when the queue is next drained (`synchronize`).
public final class OpenCLBackend: Backend {
  public let device: CLDeviceInfo
  public var name: String { "opencl:\(device.index) (\(device.name))" }
  let context: cl_context
  var queue: cl_command_queue
  private var kernels: [String: cl_kernel] = [:]
  private var programs: [cl_program] = []
  let columns = CLScratch()
  let transposed = CLScratch()
  /// Zero-bordered copies of a convolution's source, and dy channels-last (native engine).
  let padded = CLScratch()
  let channelsLast = CLScratch()
  /// Batch norm's per-channel sums when the caller wants no parameter gradients.
  let bnSums = CLScratch()
  let bnSums2 = CLScratch()
  /// First-stage partial results of `reduce`.
  let partials = CLScratch()
  /// Floats of padded input (and of wide output) a sparse convolution's grid holds at most on a
  /// CPU device; larger batches go in stacks of images that fit (settable for tests).
  var sparseGridFloats = 16 << 20
  /// Resident grids' keep patterns by plane size (`ResidentGrid.keepPattern`).
  var keepPatterns: [[Int]: Tensor] = [:]
  /// Largest im2col matrix (floats) built at once (CLBlast engine).
  let maxColumnFloats: Int
  /// The engine of convolutions, linear layers and `gemm`.
  public var engine: OpenCLEngine
  /// The sizes `kernels/igemm.cl` was compiled with.
  public let tunables: CLTunables
  /// Fault injection for tests: kernel launches after this many fail as a lost device would
  /// (CL_OUT_OF_RESOURCES), to prove a run keeps its finished work when the device goes away.
  public var failLaunchesAfter: Int?
  public private(set) var launches = 0
  /// Every device buffer this backend allocates, counted.
  public let memory = DeviceMemory()
  public var deviceMemory: DeviceMemory? { memory }
  /// When true, `timings` collects per-kernel device time.
  public var profiling = false
  public private(set) var timings: [String: KernelTiming] = [:]
  private var pendingEvents: [(name: String, event: cl_event, flops: Double)] = []

  /// The kernel files, one per op family.
  public static let kernelFileNames = programs.flatMap { $0 }
  /// The programs, each compiled from its files in order: winograd.cl builds on igemm.cl's vector
  /// types and GEMM block, and both take the tunables.
  static let programs = [
    ["elementwise.cl"], ["conv.cl"], ["linear.cl"], ["pool.cl"], ["loss.cl"], ["optimizer.cl"], ["attack.cl"], ["attack_blocks.cl"],
    ["pruning_blocks.cl"], ["norm.cl"], ["sparse.cl"], ["igemm.cl", "winograd.cl"],
  ]

  public init(
    device: CLDeviceInfo, kernelsDirectory: String? = nil, maxColumnFloats: Int = 64 << 20, engine: OpenCLEngine = .native,
    tunables: CLTunables? = nil
  ) throws {
    self.device = device
    self.maxColumnFloats = maxColumnFloats
    self.engine = engine
    let tunables = tunables ?? CLTunables.defaults(for: device)
    self.tunables = tunables
    var status: cl_int = 0
    var dev: cl_device_id? = device.device
    guard let context = clCreateContext(nil, 1, &dev, nil, nil, &status) else {
      try GPU.check(status, "clCreateContext")
      throw CLError.noDevice("clCreateContext returned nothing")
    }
    self.context = context
    guard let queue = clCreateCommandQueue(context, device.device, cl_command_queue_properties(CL_QUEUE_PROFILING_ENABLE), &status) else {
      clReleaseContext(context)
      try GPU.check(status, "clCreateCommandQueue")
      throw CLError.noDevice("clCreateCommandQueue returned nothing")
    }
    self.queue = queue
    let cache = CLProgramCache(context: context, device: device)
    for files in Self.programs {
      let text = try files.map { try KernelLocator.source($0, explicit: kernelsDirectory).1 }.joined(separator: "\n")
      let options = files.contains("igemm.cl") ? "-cl-std=CL1.2 \(tunables.defines)" : "-cl-std=CL1.2"
      let program = try cache.build(file: files.joined(separator: " + "), source: text, options: options)
      programs.append(program)
      try registerKernels(of: program)
    }
  }

  deinit {
    for e in pendingEvents { clReleaseEvent(e.event) }
    for kernel in kernels.values { clReleaseKernel(kernel) }
    for program in programs { clReleaseProgram(program) }
    clReleaseCommandQueue(queue)
    clReleaseContext(context)
  }

  private func registerKernels(of program: cl_program) throws {
    var count: cl_uint = 0
    try check(clCreateKernelsInProgram(program, 0, nil, &count), "clCreateKernelsInProgram")
    var list = [cl_kernel?](repeating: nil, count: Int(count))
    try check(clCreateKernelsInProgram(program, count, &list, nil), "clCreateKernelsInProgram")
    for case let kernel? in list {
      var size = 0
      try check(clGetKernelInfo(kernel, cl_kernel_info(CL_KERNEL_FUNCTION_NAME), 0, nil, &size), "clGetKernelInfo")
      var bytes = [CChar](repeating: 0, count: size + 1)
      try check(clGetKernelInfo(kernel, cl_kernel_info(CL_KERNEL_FUNCTION_NAME), size, &bytes, nil), "clGetKernelInfo")
      kernels[String(cString: bytes)] = kernel
    }
  }

  /// Every failing call on this backend names its device (shadows the free `check` in here).
  func check(_ status: cl_int, _ call: @autoclosure () -> String) throws {
    if status != CL_SUCCESS { throw CLError.device(name: device.name, call: call(), code: status, codeName: clErrorName(status)) }
  }

  func mem(_ t: Tensor) -> cl_mem {
    guard let s = t.storage as? CLStorage else {
      preconditionFailure("tensor of another backend given to the OpenCL backend")
    }
    return s.mem
  }

  // MARK: Launching

  enum Arg {
    case buffer(Tensor)
    case int(Int)
    case float(Float)
    case uint(UInt32)
  }

  /// Work-group size of every 1-D launch; the global size is rounded up to it and kernels
  /// bound-check against their element count.
  static let groupSize = 64

  /// Queues kernel `name` over `items` work-items (1-D).
  func launch(_ name: String, items: Int, _ args: [Arg]) throws {
    guard items > 0 else { return }
    try launch(name, global: [(items + Self.groupSize - 1) / Self.groupSize * Self.groupSize], local: [Self.groupSize], args)
  }

  /// Queues kernel `name` over a 1-, 2- or 3-D range; each global size must be a multiple of its
  /// local size (kernels bound-check their own indices). `label` names the launch in `timings`
  /// (default: the kernel), so one kernel's calls can be told apart by layer shape; `flops` gives
  /// the profile its GFLOP/s.
  func launch(_ name: String, global: [Int], local: [Int], _ args: [Arg], label: String? = nil, flops: Double = 0) throws {
    precondition(global.count == local.count && (1...3).contains(global.count), "\(name): bad launch dimensions")
    guard global.allSatisfy({ $0 > 0 }) else { return }
    guard let kernel = kernels[name] else { throw CLError.kernelNotFound(name) }
    launches += 1
    if let limit = failLaunchesAfter, launches > limit {
      throw CLError.device(name: device.name, call: "clEnqueueNDRangeKernel(\(name)) [injected fault]", code: -5, codeName: clErrorName(-5))
    }
    for (i, arg) in args.enumerated() {
      let index = cl_uint(i)
      switch arg {
      case .buffer(let t):
        var m: cl_mem? = mem(t)
        try check(clSetKernelArg(kernel, index, MemoryLayout<cl_mem?>.size, &m), "clSetKernelArg(\(name), \(i))")
      case .int(let v):
        precondition(v >= Int(Int32.min) && v <= Int(Int32.max), "\(name): argument \(i) overflows int32")
        var x = Int32(v)
        try check(clSetKernelArg(kernel, index, 4, &x), "clSetKernelArg(\(name), \(i))")
      case .float(let v):
        var x = v
        try check(clSetKernelArg(kernel, index, 4, &x), "clSetKernelArg(\(name), \(i))")
      case .uint(let v):
        var x = v
        try check(clSetKernelArg(kernel, index, 4, &x), "clSetKernelArg(\(name), \(i))")
      }
    }
    var g = global
    var l = local
    let dims = cl_uint(global.count)
    if profiling {
      var event: cl_event?
      try check(clEnqueueNDRangeKernel(queue, kernel, dims, nil, &g, &l, 0, nil, &event), "clEnqueueNDRangeKernel(\(name))")
      record(label ?? name, event, flops: flops)
    } else {
      try check(clEnqueueNDRangeKernel(queue, kernel, dims, nil, &g, &l, 0, nil, nil), "clEnqueueNDRangeKernel(\(name))")
    }
  }

  /// Keeps a profiled command's event to be read after the queue drains (`synchronize`), so
  /// profiling does not stall the host on every launch.
  func record(_ name: String, _ event: cl_event?, flops: Double = 0) {
    guard let event else { return }
    pendingEvents.append((name, event, flops))
  }

  /// Runs `enqueue` with an event to fill when profiling (nil otherwise) and records that event.
  private func profiled(_ name: String, _ enqueue: (UnsafeMutablePointer<cl_event?>?) throws -> Void) throws {
    guard profiling else { return try enqueue(nil) }
    var event: cl_event?
    try withUnsafeMutablePointer(to: &event) { try enqueue($0) }
    record(name, event)
  }

  /// Reads the device times of every recorded event into `timings`; the queue must be drained.
  private func collectTimings() throws {
    let events = pendingEvents
    pendingEvents = []
    defer { for e in events { clReleaseEvent(e.event) } }
    for (name, event, flops) in events {
      var start: cl_ulong = 0
      var end: cl_ulong = 0
      try check(clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_START), 8, &start, nil), "clGetEventProfilingInfo")
      try check(clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_END), 8, &end, nil), "clGetEventProfilingInfo")
      timings[name, default: KernelTiming(name: name)].add(nanoseconds: Double(end &- start), flops: flops)
    }
  }

  /// Adds host wall time to `timings` (CLBlast: its calls may run several kernels and return the
  /// event of the last only, so they are timed around a drained queue).
  func recordWallTime(_ name: String, nanoseconds: Double, flops: Double) {
    timings[name, default: KernelTiming(name: name)].add(nanoseconds: nanoseconds, flops: flops)
  }

  public func resetTimings() {
    for e in pendingEvents { clReleaseEvent(e.event) }
    pendingEvents = []
    timings = [:]
  }

  // MARK: Memory

  public func freeze(_ tensor: Tensor) { (tensor.storage as? CLStorage)?.freeze() }

  /// The `count` floats `key` derived from a frozen tensor, computed by `compute` the first time
  /// after each freeze; nil when `tensor` is not frozen (its values may change).
  func derived(from tensor: Tensor, _ key: String, count: Int, compute: (Tensor) throws -> Void) throws -> Tensor? {
    guard let source = tensor.storage as? CLStorage, source.isFrozen else { return nil }
    if let (storage, fresh) = source.kept[key], storage.count >= count {
      let kept = Tensor(storage: storage, shape: [count])
      if !fresh {
        try compute(kept)
        source.kept[key]!.fresh = true
      }
      return kept
    }
    let storage = try CLStorage(context: context, count: count, device: device, memory: memory)
    let kept = Tensor(storage: storage, shape: [count])
    try compute(kept)
    source.kept[key] = (storage, true)
    return kept
  }

  /// `scratch` grown to at least `count` floats (counted in `memory`).
  func reserve(_ scratch: CLScratch, _ count: Int) throws -> Tensor {
    try scratch.reserve(count, context: context, device: device, memory: memory)
  }

  public func zeros(_ shape: [Int]) throws -> Tensor {
    let t = Tensor(storage: try CLStorage(context: context, count: shape.reduce(1, *), device: device, memory: memory), shape: shape)
    try fill(t, value: 0)
    return t
  }

  public func upload(_ values: [Float], shape: [Int]) throws -> Tensor {
    let t = Tensor(storage: try CLStorage(context: context, count: shape.reduce(1, *), device: device, memory: memory), shape: shape)
    try write(values, to: t)
    return t
  }

  public func write(_ values: [Float], to tensor: Tensor) throws {
    precondition(values.count == tensor.count, "write: \(values.count) values into a tensor of \(tensor.count)")
    guard !values.isEmpty else { return }
    try values.withUnsafeBytes { raw in
      try profiled("transfer: host -> device") { event in
        try check(clEnqueueWriteBuffer(queue, mem(tensor), cl_bool(CL_TRUE), 0, raw.count, raw.baseAddress, 0, nil, event), "clEnqueueWriteBuffer")
      }
    }
  }

  public func download(_ tensor: Tensor) throws -> [Float] {
    var values = [Float](repeating: 0, count: tensor.count)
    guard !values.isEmpty else { return values }
    try values.withUnsafeMutableBytes { raw in
      try profiled("transfer: device -> host") { event in
        try check(clEnqueueReadBuffer(queue, mem(tensor), cl_bool(CL_TRUE), 0, raw.count, raw.baseAddress, 0, nil, event), "clEnqueueReadBuffer")
      }
    }
    return values
  }

  public func copy(from source: Tensor, to destination: Tensor) throws {
    checkSameCount(source, destination, op: "copy")
    guard source.count > 0 else { return }
    try profiled("transfer: device copy") { event in
      try check(clEnqueueCopyBuffer(queue, mem(source), mem(destination), 0, 0, source.count * 4, 0, nil, event), "clEnqueueCopyBuffer")
    }
  }

  public func fill(_ tensor: Tensor, value: Float) throws {
    guard tensor.count > 0 else { return }
    var pattern = value
    try profiled("fill") { event in
      try check(clEnqueueFillBuffer(queue, mem(tensor), &pattern, 4, 0, tensor.count * 4, 0, nil, event), "clEnqueueFillBuffer")
    }
  }

  public func synchronize() throws {
    try check(clFinish(queue), "clFinish")
    if !pendingEvents.isEmpty { try collectTimings() }
  }
}

/// Accumulated device time of one kernel.
public struct KernelTiming {
  public let name: String
  public private(set) var calls = 0
  public private(set) var totalNanoseconds: Double = 0
  public private(set) var minNanoseconds = Double.infinity
  /// Floating-point operations of the calls, where the launch says (convolutions, GEMMs).
  public private(set) var flops: Double = 0

  init(name: String) { self.name = name }

  /// GFLOP/s over the calls, or nil for kernels that do not count flops.
  public var gflops: Double? { flops > 0 && totalNanoseconds > 0 ? flops / totalNanoseconds : nil }

  mutating func add(nanoseconds: Double, flops: Double = 0) {
    calls += 1
    totalNanoseconds += nanoseconds
    minNanoseconds = min(minNanoseconds, nanoseconds)
    self.flops += flops
  }
}
