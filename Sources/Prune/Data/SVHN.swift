import Foundation

/// SVHN, cropped digits (http://ufldl.stanford.edu/housenumbers/): `train_32x32.mat` and
/// `test_32x32.mat`, MATLAB v5 files holding `X`, uint8 32x32x3xN (row, column, channel, image;
/// column-major), and `y`, N labels in 1...10 where 10 is the digit 0.
public enum SVHN {
  public static func load(directory: String, train: Bool, limit: Int?) throws -> LabeledImages {
    let name = train ? "train_32x32.mat" : "test_32x32.mat"
    let path = (directory as NSString).appendingPathComponent(name)
    func bad(_ problem: String) -> UserError { .badDataFile(path: path, problem: problem) }
    guard FileManager.default.fileExists(atPath: path) else {
      throw bad(
        "missing; download train_32x32.mat and test_32x32.mat (format 2, cropped digits) from http://ufldl.stanford.edu/housenumbers/ into this directory"
      )
    }
    let arrays = try MATv5.read(path: path, only: ["X", "y"])
    guard let x = arrays["X"], let y = arrays["y"] else {
      throw bad("no uint8 variables 'X' and 'y' (found: \(arrays.keys.sorted().joined(separator: ", ")))")
    }
    guard x.dims.count == 4, Array(x.dims.prefix(3)) == [32, 32, 3], let pixels = x.bytes else {
      throw bad("X is \(x.className) \(x.dims.map(String.init).joined(separator: "x")); expected uint8 32x32x3xN")
    }
    let total = x.dims[3]
    guard y.count == total else { throw bad("y holds \(y.count) labels for \(total) images") }
    let labelValues = y.bytes.map { $0.map(Double.init) } ?? y.doubles ?? []
    let count = min(total, limit ?? .max)

    var labels: [Int] = []
    labels.reserveCapacity(count)
    for (i, value) in labelValues.prefix(count).enumerated() {
      guard value == value.rounded(), (1...10).contains(value) else { throw bad("label \(i) is \(value); expected 1...10") }
      labels.append(value == 10 ? 0 : Int(value))
    }
    // Column-major X[row, column, channel, image] to row-major [image, channel, row, column].
    let scale = (0...255).map { Float($0) / 255 }
    var images = [Float](repeating: 0, count: count * 3072)
    pixels.withUnsafeBufferPointer { source in
      images.withUnsafeMutableBufferPointer { out in
        for n in 0..<count {
          for c in 0..<3 {
            let plane = n * 3072 + c * 1024
            for column in 0..<32 {
              for row in 0..<32 { out[plane + row * 32 + column] = scale[Int(source[plane + column * 32 + row])] }
            }
          }
        }
      }
    }
    return LabeledImages(images: images, labels: labels, channels: 3, height: 32, width: 32, classCount: 10)
  }
}
