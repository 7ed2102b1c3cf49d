import CKernels

/// The tunable sizes of our own kernels (`kernels/igemm.cl`), passed to the compiler as `-D`
/// defines, with the host-side launch shape that goes with them. Values are per device kind and
/// kept as data here; `advprune bench-kernel --set NAME=V` tries others without a rebuild.
public struct CLTunables: Equatable, Sendable, CustomStringConvertible {
  /// Output pixels (or GEMM columns) per work-item, as one vector: 2, 4, 8 or 16.
  public var pix: Int
  /// Output channels accumulated in registers at once by the implicit GEMM.
  public var rows: Int
  /// GEMM rows accumulated in registers at once by `gemm_rows` and the Winograd products.
  public var gemmRows: Int
  /// Patch rows staged per pass in a work-item's private tile.
  public var kc: Int
  /// Weight gradient: patch rows per work-item (times `pix` output channels).
  public var weightTaps: Int
  /// Output channels one conv work-item walks (0: all, so a gathered tile feeds every channel;
  /// a GPU wants fewer, for more work-items).
  public var rowsPerItem: Int
  /// Work-items the weight gradient's batch split aims for.
  public var weightItems: Int
  /// Work-group size of the 2-D/3-D launches along the first dimension (1 on a CPU device,
  /// where a work-group is a task and work-items are loop iterations).
  public var groupSize: Int
  /// The forward and input-gradient convolutions on `conv_tiled` (local-memory tiles, what a GPU
  /// wants) when nonzero: output channels per work-group tile, a multiple of 16. 0: `conv_igemm`.
  public var tileRows: Int
  /// `conv_tiled`'s columns (image pixels over the batch) per tile: 16, 32, 64, 128 or 256.
  public var tileColumns: Int
  /// `conv_tiled`'s patch rows staged in local memory per step.
  public var tileDepth: Int
  /// `conv_tiled` splits K when its tiles make fewer work-groups than this per compute unit (0: never).
  public var splitGroups: Int
  /// 3x3 stride-1 forwards and input gradients as Winograd F(4x4, 3x3) (kernels/winograd.cl) when
  /// nonzero, on layers whose channels make it pay (`OpenCLBackend.winogradPays`).
  public var winograd: Int
  /// The Winograd products walk their row blocks fastest when 1 (`winograd_gemm`): a CPU device
  /// then reuses each column block of the transformed tiles from L1 across the row blocks
  /// (SmallCNN's PGD-10 AT on PoCL about 1.1x faster, README); a GPU reads neighbouring columns
  /// in neighbouring work-items with 0.
  public var winogradRowsFirst: Int
  /// Output rows per work-item of `conv_few_rows_dx` (up to `maxFewRowBlock`, its unrolled
  /// accumulators), the input gradient of a 3x3 stride-1 convolution of a one- to four-channel
  /// image; 0: the device's convolution kernel runs it (`conv_igemm`, or `conv_tiled` on a GPU,
  /// where the three-channel stem's filled a 64-row tile with 3 rows: 0.23x CLBlast on the H200).
  public var fewRowBlock: Int

  public init(
    pix: Int, rows: Int, kc: Int, weightTaps: Int, rowsPerItem: Int, weightItems: Int, groupSize: Int, tileRows: Int = 0,
    tileColumns: Int = 64, tileDepth: Int = 16, splitGroups: Int = 0, winograd: Int = 0, gemmRows: Int? = nil,
    winogradRowsFirst: Int = 0, fewRowBlock: Int = 0
  ) {
    (self.pix, self.rows, self.kc, self.weightTaps) = (pix, rows, kc, weightTaps)
    (self.rowsPerItem, self.weightItems, self.groupSize) = (rowsPerItem, weightItems, groupSize)
    (self.tileRows, self.tileColumns, self.tileDepth, self.splitGroups) = (tileRows, tileColumns, tileDepth, splitGroups)
    (self.winograd, self.winogradRowsFirst, self.fewRowBlock) = (winograd, winogradRowsFirst, fewRowBlock)
    self.gemmRows = gemmRows ?? rows
    precondition(isValid, "invalid OpenCL tunables: \(description)")
  }

  /// Values the kernels compile with: PIX a vector width, positive blocks, `wrows_first` 0 or 1,
  /// `few_rb` within its unrolled accumulators, tiles that fit local memory.
  var isValid: Bool {
    [2, 4, 8, 16].contains(pix) && [rows, gemmRows, kc, weightTaps, weightItems, groupSize].allSatisfy { $0 >= 1 }
      && rowsPerItem >= 0 && [0, 1].contains(winogradRowsFirst) && (0...Self.maxFewRowBlock).contains(fewRowBlock) && tilesAreValid
  }

  /// The most output rows `conv_few_rows_dx` keeps per work-item.
  public static let maxFewRowBlock = 8

  /// GPU-style launches: convolutions on `conv_tiled`, and the bordered copies and sparse kernels
  /// one work-item per value (CPU devices, where a work-item is a loop iteration, take rows and
  /// planes instead).
  public var isTiled: Bool { tileRows > 0 }

  /// Tile shapes `conv_tiled` can take, its two tiles within the 32 KiB of local memory every
  /// OpenCL 1.2 device has.
  var tilesAreValid: Bool {
    guard isTiled else { return true }
    let localBytes = 4 * tileDepth * (tileRows + 1 + tileColumns)
    return splitGroups >= 0 && tileRows % 16 == 0 && tileRows <= 256 && [16, 32, 64, 128, 256].contains(tileColumns) && tileDepth >= 1
      && localBytes <= 32768
  }

  /// PoCL on a CPU: 16-lane vectors and the whole channel range per item, with register blocks
  /// sized by the host's vector registers (a CPU device compiles for the host it runs on).
  /// Measured with the workbench on SmallCNN and ResNet18 shapes (README).
  /// Winograd: measured on PoCL (README); not yet on a GPU, where the tiled implicit GEMM stays.
  /// Weight gradients: 16 patch rows per work-item spill AVX2's registers, and 4 ran 15-25 %
  /// faster at 32 images, but at 128 (training) each of 4x as many patch blocks streams all of
  /// dy, and ResNet18's large-plane weight gradients ran 27-33 GFLOP/s against 45-49 with 16.
  public static var cpu: CLTunables { advprune_isa_supported() == Int32(ADVPRUNE_ISA_AVX512) ? cpuAVX512 : cpuAVX2 }

  /// AVX-512's 32 registers hold 16 rows of 16-lane accumulators (the implicit GEMM's 16 rows
  /// were measured on AVX-512 hosts by earlier sessions; the Winograd products there were not).
  public static let cpuAVX512 = CLTunables(
    pix: 16, rows: 16, kc: 64, weightTaps: 16, rowsPerItem: 0, weightItems: 256, groupSize: 1, winograd: 1, gemmRows: 16,
    winogradRowsFirst: 1, fewRowBlock: 4)
  /// AVX2 has 16: 6 rows of two-register accumulators, the column vector and the broadcast fill
  /// 15 (16 rows spilled; 8 still did): the implicit GEMM's strided forwards 1.9x and input
  /// gradients 1.1-1.4x faster, the Winograd products about 15 % (README).
  public static let cpuAVX2 = CLTunables(
    pix: 16, rows: 6, kc: 64, weightTaps: 16, rowsPerItem: 0, weightItems: 256, groupSize: 1, winograd: 1, gemmRows: 6,
    winogradRowsFirst: 1, fewRowBlock: 4)
  /// A GPU: the tiled convolution; for the rest narrow vectors, many work-items, groups of 64
  /// (tiles and weight-gradient taps measured on an H200 with the workbench, README).
  public static let gpu = CLTunables(
    pix: 4, rows: 8, kc: 32, weightTaps: 8, rowsPerItem: 8, weightItems: 65536, groupSize: 64, tileRows: 64, tileColumns: 64, tileDepth: 8,
    splitGroups: 4)

  /// These tunables with other `conv_tiled` tiles.
  public func with(tileRows: Int, tileColumns: Int, tileDepth: Int, splitGroups: Int? = nil) -> CLTunables {
    var t = self
    (t.tileRows, t.tileColumns, t.tileDepth) = (tileRows, tileColumns, tileDepth)
    t.splitGroups = splitGroups ?? t.splitGroups
    precondition(t.tilesAreValid)
    return t
  }

  public static func defaults(for device: CLDeviceInfo) -> CLTunables { device.isGPU ? gpu : cpu }

  var defines: String {
    "-DPIX=\(pix) -DROWS=\(rows) -DGEMM_ROWS=\(gemmRows) -DKC=\(kc) -DWTAPS=\(weightTaps) -DWINO_ROWS_FIRST=\(winogradRowsFirst)"
      + (fewRowBlock > 0 ? " -DFEW_RB=\(fewRowBlock)" : "")
      + (isTiled ? " -DTM=\(tileRows) -DTN=\(tileColumns) -DTK=\(tileDepth)" : "")
  }

  public var description: String {
    "pix=\(pix) rows=\(rows) gemm_rows=\(gemmRows) kc=\(kc) wtaps=\(weightTaps) rows_per_item=\(rowsPerItem) witems=\(weightItems) group=\(groupSize)"
      + " tm=\(tileRows) tn=\(tileColumns) tk=\(tileDepth) split=\(splitGroups) winograd=\(winograd) wrows_first=\(winogradRowsFirst) few_rb=\(fewRowBlock)"
  }

  /// Sets one value by its name in `description` ("pix=16"); nil for an unknown name or a bad value.
  public func setting(_ assignment: String) -> CLTunables? {
    let parts = assignment.split(separator: "=", maxSplits: 1).map(String.init)
    guard parts.count == 2, let v = Int(parts[1]), v >= 0 else { return nil }
    var t = self
    switch parts[0] {
    case "pix": t.pix = v
    case "rows": t.rows = v
    case "gemm_rows": t.gemmRows = v
    case "kc": t.kc = v
    case "wtaps": t.weightTaps = v
    case "rows_per_item": t.rowsPerItem = v
    case "witems": t.weightItems = v
    case "group": t.groupSize = v
    case "tm": t.tileRows = v
    case "tn": t.tileColumns = v
    case "tk": t.tileDepth = v
    case "split": t.splitGroups = v
    case "winograd": t.winograd = v
    case "wrows_first": t.winogradRowsFirst = v
    case "few_rb": t.fewRowBlock = v
    default: return nil
    }
    return t.isValid ? t : nil
  }
}

/// Which GEMM engine the OpenCL backend's convolutions and linear layers run on.
public enum OpenCLEngine: String, CaseIterable, Sendable {
  /// Our implicit-GEMM and GEMM kernels (kernels/igemm.cl).
  case native
  /// im2col / col2im around CLBlast's SGEMM: the baseline the workbench races.
  case clblast
}
