import CZlib
import Foundation

/// Writes level-5 MAT-files as MATLAB does, so the reader is tested on the published layout.
enum MATWriter {
  enum Values {
    case uint8([UInt8])
    case double([Double])
  }
  struct Variable {
    var name: String
    var dims: [Int]
    var values: Values
    var storedAsUInt8 = false
  }

  static func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }

  /// A sub-element: 8-byte tag, data, zero padding to 8 bytes; small format for <= 4 bytes.
  static func element(type: UInt32, _ data: [UInt8], small: Bool = true) -> [UInt8] {
    if small, data.count <= 4 {
      return u32(UInt32(data.count) << 16 | type) + data + [UInt8](repeating: 0, count: 4 - data.count)
    }
    return u32(type) + u32(UInt32(data.count)) + data + [UInt8](repeating: 0, count: (8 - data.count % 8) % 8)
  }

  static func matrix(_ v: Variable) -> [UInt8] {
    let classCode: UInt32
    let real: [UInt8]
    switch v.values {
    case .uint8(let bytes): (classCode, real) = (9, element(type: 2, bytes))
    case .double(let values):
      classCode = 6
      real =
        v.storedAsUInt8
        ? element(type: 2, values.map { UInt8($0) })  // MATLAB stores integral doubles compactly
        : element(type: 9, values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
    }
    let body =
      element(type: 6, u32(classCode) + u32(0))
      + element(type: 5, v.dims.flatMap { u32(UInt32($0)) })
      + element(type: 1, Array(v.name.utf8))
      + real
    return u32(14) + u32(UInt32(body.count)) + body
  }

  static func header() -> [UInt8] {
    var text = Array("MATLAB 5.0 MAT-file, Platform: GLNXA64, Created by: advprune tests".utf8)
    text += [UInt8](repeating: 0x20, count: 116 - text.count)
    return text + [UInt8](repeating: 0, count: 8) + [0x00, 0x01] + Array("IM".utf8)
  }

  static func file(_ variables: [Variable], compressed: Bool) -> [UInt8] {
    var out = header()
    for v in variables {
      let m = matrix(v)
      guard compressed else {
        out += m
        continue
      }
      var size = compressBound(uLong(m.count))
      var packed = [UInt8](repeating: 0, count: Int(size))
      let code = packed.withUnsafeMutableBufferPointer {
        compress(
          $0.baseAddress, &size, m, uLong(m.count))
      }
      precondition(code == Z_OK)
      out += u32(15) + u32(UInt32(size)) + packed[0..<Int(size)]
    }
    return out
  }

  /// SVHN's layout: X uint8 32x32x3xN column-major, y double Nx1 in 1...10.
  static func svhn(images: [[UInt8]], labels: [Double], compressed: Bool) -> [UInt8] {
    file(
      [
        Variable(name: "X", dims: [32, 32, 3, images.count], values: .uint8(images.flatMap { $0 })),
        Variable(name: "y", dims: [labels.count, 1], values: .double(labels), storedAsUInt8: compressed),
      ], compressed: compressed)
  }
}
