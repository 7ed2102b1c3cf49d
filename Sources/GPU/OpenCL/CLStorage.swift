import COpenCL

/// A device buffer owned by the OpenCL backend; released when the last tensor using it goes.
final class CLStorage: TensorStorage {
  let mem: cl_mem
  let count: Int

  init(context: cl_context, count: Int) throws {
    var status: cl_int = 0
    let bytes = max(count, 1) * MemoryLayout<Float>.size
    let mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &status)
    try check(status, "clCreateBuffer(\(bytes) bytes)")
    guard let mem else { throw CLError.api(code: status, name: clErrorName(status), call: "clCreateBuffer") }
    self.mem = mem
    self.count = count
  }

  deinit { clReleaseMemObject(mem) }
}

/// A growable device scratch buffer reused across ops; safe because the queue runs in order.
final class CLScratch {
  private var storage: CLStorage?

  func reserve(_ count: Int, context: cl_context) throws -> Tensor {
    if let storage, storage.count >= count { return Tensor(storage: storage, shape: [count]) }
    storage = nil  // release the old buffer before allocating the larger one
    let fresh = try CLStorage(context: context, count: count)
    storage = fresh
    return Tensor(storage: fresh, shape: [count])
  }
}
