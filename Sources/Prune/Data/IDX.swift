import CZlib
import Foundation

/// An n-dimensional array of unsigned bytes read from an IDX file.
public struct IDXArray: Sendable {
  public var dims: [Int]
  public var bytes: [UInt8]

  /// Makes an array; `bytes.count` must equal the product of `dims`.
  public init(dims: [Int], bytes: [UInt8]) {
    precondition(dims.reduce(1, *) == bytes.count, "dims \(dims) do not match \(bytes.count) bytes")
    self.dims = dims
    self.bytes = bytes
  }
}

/// Reads the IDX format of MNIST and Fashion-MNIST, gzip-compressed or raw.
///
/// Layout: magic `00 00 <type> <ndims>`, `ndims` big-endian u32 sizes, then the data.
/// Only unsigned bytes (type 0x08) are supported: that is all those data sets use.
public enum IDX {
  /// Returns the whole decompressed content of `path`; raw files pass through unchanged.
  ///
  /// Reading stops as soon as the content runs past the size its IDX header declares, so a small
  /// gzip file that inflates to gigabytes is refused after at most one extra chunk, not inflated whole.
  public static func readFile(path: String) throws -> [UInt8] {
    func bad(_ problem: String) -> UserError { .badDataFile(path: path, problem: problem) }

    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw bad("no such file")
    }
    guard !isDirectory.boolValue else { throw bad("is a directory") }
    guard let file = gzopen(path, "rb") else {
      throw bad("cannot open: \(String(cString: strerror(errno)))")
    }
    var isOpen = true
    defer { if isOpen { gzclose(file) } }
    // A larger input buffer than zlib's 8 KB default roughly halves read time on 26 MB files.
    gzbuffer(file, 1 << 17)

    let chunkSize = 1 << 20
    var chunk = [UInt8](repeating: 0, count: chunkSize)
    var out: [UInt8] = []
    var declared: (dims: [Int], header: Int, total: Int)?
    while true {
      let count = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(chunkSize)) }
      if count < 0 { throw bad(zlibProblem(file, path: path)) }
      if count == 0 { break }
      out += chunk[0..<Int(count)]
      if declared == nil { declared = declaredSize(out) }
      if let declared, out.count > declared.total {
        throw bad(
          "trailing bytes: dims \(declared.dims) need \(declared.total - declared.header) data bytes, the file holds more "
            + "(reading stopped after \(out.count - declared.header))")
      }
    }
    // zlib reports a stream that ends early only as a sticky Z_BUF_ERROR, not from gzread.
    var code: Int32 = Z_OK
    _ = gzerror(file, &code)
    if code != Z_OK { throw bad(zlibProblem(file, path: path)) }
    isOpen = false
    let closeCode = gzclose(file)
    if closeCode == Z_BUF_ERROR { throw bad("truncated gzip stream") }
    if closeCode != Z_OK { throw bad("cannot close: zlib error \(closeCode)") }
    return out
  }

  /// Header plus data bytes an IDX header declares, once `bytes` holds the whole header; nil
  /// before that or when `bytes` is not IDX (`parse` says what is wrong then).
  static func declaredSize(_ bytes: [UInt8]) -> (dims: [Int], header: Int, total: Int)? {
    guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0, (1...4).contains(Int(bytes[3])) else { return nil }
    let header = 4 + 4 * Int(bytes[3])
    guard bytes.count >= header else { return nil }
    let dims = stride(from: 4, to: header, by: 4).map { at in bytes[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
    var data = 1
    for size in dims {
      let (product, overflow) = data.multipliedReportingOverflow(by: size)
      if overflow { return (dims, header, Int.max) }
      data = product
    }
    let (total, overflow) = header.addingReportingOverflow(data)
    return (dims, header, overflow ? Int.max : total)
  }

  /// Parses IDX bytes; `path` only names the source in errors.
  public static func parse(_ bytes: [UInt8], path: String) throws -> IDXArray {
    func bad(_ problem: String) -> UserError { .badDataFile(path: path, problem: problem) }

    guard bytes.count >= 4 else {
      throw bad("truncated: \(bytes.count) bytes, too short for the 4-byte IDX magic")
    }
    guard bytes[0] == 0, bytes[1] == 0 else {
      let magic = bytes[0..<4].map { hex($0) }.joined(separator: " ")
      throw bad("not an IDX file: magic bytes are \(magic), expected 00 00 <type> <ndims>")
    }
    let type = bytes[2]
    guard type == 0x08 else {
      throw bad("element type 0x\(hex(type)) (\(typeName(type))) is not supported; only unsigned byte (0x08)")
    }
    let ndims = Int(bytes[3])
    guard (1...4).contains(ndims) else { throw bad("\(ndims) dimensions; expected 1 to 4") }
    let headerCount = 4 + 4 * ndims
    guard bytes.count >= headerCount else {
      throw bad("truncated: the header needs \(headerCount) bytes, the file has \(bytes.count)")
    }

    var dims: [Int] = []
    var expected = 1
    for dim in 0..<ndims {
      let at = 4 + 4 * dim
      let size = bytes[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) }
      dims.append(size)
      let (product, overflow) = expected.multipliedReportingOverflow(by: size)
      guard !overflow else { throw bad("dims \(dims) are too large") }
      expected = product
    }
    let got = bytes.count - headerCount
    guard got >= expected else {
      throw bad("truncated: dims \(dims) need \(expected) data bytes, got \(got)")
    }
    guard got == expected else {
      throw bad("trailing bytes: dims \(dims) need \(expected) data bytes, got \(got)")
    }
    return IDXArray(dims: dims, bytes: Array(bytes[headerCount...]))
  }

  /// Reads and parses the IDX file at `path`.
  public static func read(path: String) throws -> IDXArray {
    try parse(readFile(path: path), path: path)
  }

  /// zlib's message for the file's error, without the "path: " prefix zlib adds.
  static func zlibProblem(_ file: gzFile, path: String) -> String {
    var code: Int32 = Z_OK
    var message = gzerror(file, &code).map { String(cString: $0) } ?? ""
    if message.hasPrefix(path + ": ") { message.removeFirst(path.count + 2) }
    switch code {
    case Z_BUF_ERROR: return "truncated gzip stream"
    case Z_ERRNO: return "read failed: \(String(cString: strerror(errno)))"
    default: return message.isEmpty ? "corrupt gzip stream" : "corrupt gzip stream (\(message))"
    }
  }

  static func hex(_ byte: UInt8) -> String {
    byte < 0x10 ? "0" + String(byte, radix: 16, uppercase: true) : String(byte, radix: 16, uppercase: true)
  }

  static func typeName(_ type: UInt8) -> String {
    switch type {
    case 0x09: return "signed byte"
    case 0x0B: return "int16"
    case 0x0C: return "int32"
    case 0x0D: return "float32"
    case 0x0E: return "float64"
    default: return "unknown type"
    }
  }
}
