import Foundation

/// Whole-file reads and atomic writes with POSIX calls, so failures carry errno's reason.
enum FileBytes {
  struct Failure: Error { var problem: String }

  static func errnoProblem(_ code: Int32 = errno) -> String {
    code == ENOENT ? "no such file" : String(cString: strerror(code))
  }

  static func read(path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw Failure(problem: errnoProblem()) }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw Failure(problem: errnoProblem()) }
    guard info.st_mode & S_IFMT != S_IFDIR else { throw Failure(problem: "is a directory") }

    var out: [UInt8] = []
    out.reserveCapacity(Int(info.st_size))
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
      let count = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        throw Failure(problem: "read failed: \(errnoProblem())")
      }
      if count == 0 { return out }
      out += chunk[0..<count]
    }
  }

  /// Writes to `.<name>.tmp-<pid>-<random>` beside `path`, syncs, then renames over `path`;
  /// the temp file is removed on every failure.
  static func writeAtomically(_ bytes: [UInt8], path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    let name = (path as NSString).lastPathComponent
    let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
    let temp = (directory.isEmpty ? "" : directory + "/") + ".\(name).tmp-\(getpid())-\(suffix)"

    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      let code = errno
      throw Failure(problem: code == ENOENT ? "no such directory" : errnoProblem(code))
    }
    var isOpen = true
    var renamed = false
    defer {
      if isOpen { close(fd) }
      if !renamed { unlink(temp) }
    }

    var written = 0
    try bytes.withUnsafeBytes { raw in
      guard let base = raw.baseAddress else { return }
      while written < raw.count {
        let count = Foundation.write(fd, base + written, raw.count - written)
        if count < 0 {
          if errno == EINTR { continue }
          throw Failure(problem: errnoProblem())
        }
        written += count
      }
    }
    // Without the sync a crash soon after rename could leave an empty file under the new name.
    guard fsync(fd) == 0 else { throw Failure(problem: "fsync failed: \(errnoProblem())") }
    isOpen = false
    guard close(fd) == 0 else { throw Failure(problem: "close failed: \(errnoProblem())") }
    guard rename(temp, path) == 0 else { throw Failure(problem: errnoProblem()) }
    renamed = true
  }
}
