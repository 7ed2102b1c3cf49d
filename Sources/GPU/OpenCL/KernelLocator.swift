import Foundation

/// Finds the directory of the `.cl` files: `--kernels-dir`, then `ADVPRUNE_KERNELS`, then a
/// `kernels/` next to the executable, then the package's own `kernels/` (for `swift run`/tests).
public enum KernelLocator {
  public static func candidates(explicit: String?) -> [String] {
    var dirs: [String] = []
    if let explicit { dirs.append(explicit) }
    if let env = ProcessInfo.processInfo.environment["ADVPRUNE_KERNELS"], !env.isEmpty { dirs.append(env) }
    let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
    dirs.append(exe.deletingLastPathComponent().appendingPathComponent("kernels").path)
    dirs.append(exe.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("kernels").path)
    // Sources/GPU/OpenCL/KernelLocator.swift -> package root.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent()
    dirs.append(root.appendingPathComponent("kernels").path)
    return dirs
  }

  /// The source text of `file` from the first candidate directory that has it.
  public static func source(_ file: String, explicit: String?) throws -> (path: String, text: String) {
    let dirs = candidates(explicit: explicit)
    for dir in dirs {
      let path = (dir as NSString).appendingPathComponent(file)
      if let text = try? String(contentsOfFile: path, encoding: .utf8) { return (path, text) }
    }
    throw CLError.kernelSourceMissing(file: file, searched: dirs)
  }
}
