import CKernels

// The C hot loops (Winograd transforms, max pooling, the sparse rows, FAB's boundary step) are
// compiled for AVX-512, AVX2 + FMA and baseline x86-64; the CPU's features pick one
// (`CKernels/isa.c`).
extension CPUBackend {
  /// The copies, best last.
  public enum VectorCopy: Int32, CaseIterable, Sendable {
    case baseline = 0
    case avx2 = 1
    case avx512 = 2
  }

  /// The copy in use: the best the CPU supports, or a lower one `ADVPRUNE_CPU_ISA` asked for.
  public static var vectorCopy: VectorCopy { VectorCopy(rawValue: advprune_isa()) ?? .baseline }

  /// Uses `copy` from now on (the best the CPU supports when it lacks it; nil: the best); returns
  /// the copy in use. For tests and races on one machine.
  @discardableResult public static func selectVectorCopy(_ copy: VectorCopy?) -> VectorCopy {
    VectorCopy(rawValue: advprune_isa_select(copy?.rawValue ?? -1)) ?? .baseline
  }

  /// How the device line names this backend: "cpu backend, AVX2 + FMA loops".
  public static var summary: String {
    let loops: String
    switch vectorCopy {
    case .avx512: loops = "AVX-512"
    case .avx2: loops = "AVX2 + FMA"
    case .baseline: loops = "baseline x86-64"
    }
    return "cpu backend, \(loops) loops"
  }
}
