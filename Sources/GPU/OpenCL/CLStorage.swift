import COpenCL

/// A device buffer owned by the OpenCL backend; released when the last tensor using it goes.
final class CLStorage: TensorStorage {
  let mem: cl_mem
  let count: Int
  private let memory: DeviceMemory

  init(context: cl_context, count: Int, device: CLDeviceInfo, memory: DeviceMemory) throws {
    var status: cl_int = 0
    let bytes = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<Float>.size)
    let call = "clCreateBuffer(\(bytes.overflow ? "\(count) floats" : byteCount(bytes.partialValue)))"
    // Refused before asking: some drivers accept an oversized buffer and fail later, at first use.
    if bytes.overflow || bytes.partialValue > device.maxAllocationBytes {
      throw CLError.device(
        name: device.name, call: call + " over the device's \(byteCount(device.maxAllocationBytes)) per buffer", code: -61,
        codeName: clErrorName(-61))
    }
    let mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), bytes.partialValue, nil, &status)
    guard status == CL_SUCCESS, let mem else {
      throw CLError.device(name: device.name, call: call, code: status, codeName: clErrorName(status))
    }
    self.mem = mem
    self.count = count
    self.memory = memory
    memory.allocated(bytes.partialValue)
  }

  /// Set by `OpenCLBackend.freeze`: the values do not change until the next freeze, so what an op
  /// derives from them (`OpenCLBackend.derived`) is kept meanwhile. A freeze marks the kept
  /// buffers stale instead of releasing them, so a training loop that refreezes every batch
  /// recomputes into the same buffers and allocates nothing.
  var isFrozen = false
  var kept: [String: (storage: CLStorage, fresh: Bool)] = [:]

  func freeze() {
    isFrozen = true
    for key in kept.keys { kept[key]!.fresh = false }
  }

  deinit {
    clReleaseMemObject(mem)
    memory.released(max(count, 1) * MemoryLayout<Float>.size)
  }
}

/// A growable device scratch buffer reused across ops; safe because the queue runs in order.
final class CLScratch {
  private var storage: CLStorage?

  func reserve(_ count: Int, context: cl_context, device: CLDeviceInfo, memory: DeviceMemory) throws -> Tensor {
    if let storage, storage.count >= count { return Tensor(storage: storage, shape: [count]) }
    storage = nil  // release the old buffer before allocating the larger one
    let fresh = try CLStorage(context: context, count: count, device: device, memory: memory)
    storage = fresh
    return Tensor(storage: fresh, shape: [count])
  }
}

/// "1.5 GiB", "12 MiB", "300 bytes".
func byteCount(_ bytes: Int) -> String {
  if bytes >= 1 << 30 { return String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) }
  if bytes >= 1 << 20 { return "\(bytes >> 20) MiB" }
  return "\(bytes) bytes"
}
