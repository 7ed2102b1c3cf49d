import Foundation
import GPU

/// Model checkpoints as safetensors with PyTorch state_dict names.
///
/// Tensors: every parameter under its state_dict key, and each pruning mask as `<name>_mask`
/// (extra keys a PyTorch user loads with `strict=False` or applies). The header's `__metadata__`
/// holds the architecture and the run's provenance as strings.
public enum Checkpoint {
  public static let formatVersion = "advprune-checkpoint-1"

  /// The state dict (and masks) of `model` as host tensors.
  public static func stateDict(of model: Model) throws -> [String: HostTensor] {
    var tensors: [String: HostTensor] = [:]
    for p in model.parameters {
      tensors[p.name] = HostTensor(shape: p.shape, values: try model.backend.download(p.value))
      if let mask = p.mask { tensors["\(p.name)_mask"] = HostTensor(shape: p.shape, values: try model.backend.download(mask)) }
    }
    return tensors
  }

  /// Writes `model` atomically: a crash leaves the old file or the new one, never half of one.
  public static func save(_ model: Model, metadata: [String: String], to path: String) throws {
    var meta = metadata
    meta["format"] = formatVersion
    meta["arch"] = model.architecture.rawValue
    meta["width"] = "\(model.width)"
    meta["sparsity"] = String(format: "%.6f", try model.sparsity())
    try Safetensors.write(SafetensorsFile(tensors: try stateDict(of: model), metadata: meta), path: path)
  }

  /// Reads a checkpoint and builds its model on `backend`.
  ///
  /// The architecture comes from the metadata, or from `architecture` for files without it
  /// (saved from PyTorch); when both exist they must agree.
  public static func load(path: String, backend: Backend, architecture: Architecture? = nil, width: Double? = nil) throws -> (model: Model, metadata: [String: String]) {
    let file = try Safetensors.read(path: path)
    let arch: Architecture
    switch (file.metadata["arch"], architecture) {
    case (let stored?, let given?) where stored != given.rawValue:
      throw UserError.badCheckpoint(path: path, problem: "holds a '\(stored)' model but --arch \(given.rawValue) was given")
    case (let stored?, _):
      guard let a = Architecture(rawValue: stored) else {
        throw UserError.badCheckpoint(path: path, problem: "unknown architecture '\(stored)' in its metadata")
      }
      arch = a
    case (nil, let given?): arch = given
    case (nil, nil):
      throw UserError.badCheckpoint(path: path, problem: "no architecture in its metadata; name one with --arch")
    }
    let storedWidth = file.metadata["width"].flatMap(Double.init)
    if file.metadata["width"] != nil && storedWidth == nil {
      throw UserError.badCheckpoint(path: path, problem: "width '\(file.metadata["width"]!)' in its metadata is not a number")
    }
    let model = try arch.build(backend: backend, seed: 0, width: width ?? storedWidth ?? 1)
    try assign(file.tensors, to: model, path: path)
    return (model, file.metadata)
  }

  /// Copies tensors into the model's parameters after checking names, shapes and masks.
  static func assign(_ tensors: [String: HostTensor], to model: Model, path: String) throws {
    var problems: [String] = []
    let expected = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0) })
    for p in model.parameters {
      guard let t = tensors[p.name] else {
        problems.append("missing \(p.name) \(p.shape)")
        continue
      }
      if t.shape != p.shape { problems.append("\(p.name) has shape \(t.shape), expected \(p.shape)") }
      if let m = tensors["\(p.name)_mask"] {
        if !p.isPrunable { problems.append("\(p.name)_mask: \(p.name) is not prunable") }
        if m.shape != p.shape { problems.append("\(p.name)_mask has shape \(m.shape), expected \(p.shape)") }
        if m.values.contains(where: { $0 != 0 && $0 != 1 }) { problems.append("\(p.name)_mask holds values other than 0 and 1") }
      }
    }
    for name in tensors.keys.sorted() {
      let base = name.hasSuffix("_mask") ? String(name.dropLast(5)) : name
      if expected[base] == nil { problems.append("unexpected tensor \(name)") }
    }
    if !problems.isEmpty {
      let shown = problems.prefix(5).joined(separator: "; ")
      let more = problems.count > 5 ? " (and \(problems.count - 5) more)" : ""
      throw UserError.badCheckpoint(path: path, problem: "does not fit \(model.architecture.rawValue): \(shown)\(more)")
    }
    let backend = model.backend
    for p in model.parameters {
      try backend.write(tensors[p.name]!.values, to: p.value)
      if let m = tensors["\(p.name)_mask"] {
        let mask = try backend.upload(m.values, shape: p.shape)
        p.mask = mask
        try backend.multiply(out: p.value, a: p.value, b: mask)
      } else {
        p.mask = nil
      }
    }
  }
}
