/// Memory owned by one backend: a host array for the CPU backend, a `cl_mem` for OpenCL.
///
/// Only the backend that made a storage may read it; `Tensor` carries it around untouched.
public protocol TensorStorage: AnyObject {
  /// Number of float32 elements.
  var count: Int { get }
}

/// A float32 NCHW tensor living on a backend: a shape and the storage behind it.
///
/// Tensors are handles: copying a `Tensor` shares the storage. Every op writes into tensors its
/// caller allocated, so the owner of a buffer decides how long it lives and whether it is reused.
public struct Tensor {
  public let storage: TensorStorage
  public let shape: [Int]

  public init(storage: TensorStorage, shape: [Int]) {
    precondition(shape.reduce(1, *) <= storage.count, "shape \(shape) exceeds storage of \(storage.count)")
    self.storage = storage
    self.shape = shape
  }

  public var count: Int { shape.reduce(1, *) }
  public var rank: Int { shape.count }

  /// The same storage seen with another shape of the same element count.
  public func reshaped(_ newShape: [Int]) -> Tensor {
    precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
    return Tensor(storage: storage, shape: newShape)
  }
}
