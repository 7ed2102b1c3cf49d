import GPU
import Prune

/// `--set NAME=V` for the commands that compile our OpenCL kernels with other tunables
/// (`bench-kernel`, `profile`): the assignments applied in order to `base`.
func applying(_ assignments: [String], to base: CLTunables) throws -> CLTunables {
  var tunables = base
  for assignment in assignments {
    guard let t = tunables.setting(assignment) else {
      throw UserError.badValue(
        name: "--set", value: assignment,
        problem:
          "expected NAME=V with NAME one of \(base) and V valid for it (pix 2, 4, 8 or 16; tm 0 or a multiple of 16 up to 256; tn 16, 32, 64, 128 or 256; tiles within 32 KiB of local memory)"
      )
    }
    tunables = t
  }
  return tunables
}
