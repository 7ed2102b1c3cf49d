import Foundation
import GPU

/// Model checkpoints as safetensors with PyTorch state_dict names.
///
/// Tensors: every parameter and buffer under its state_dict key, the pruning state as
/// `<name>_<slot>` (`_mask`, `_scores`, `_twin`, `_admm_z`, `_admm_u`), and, in checkpoints written during
/// training, each SGD momentum buffer as `<name>_momentum` so a run resumes exactly (extra keys a PyTorch user loads with
/// `strict=False`). The header's `__metadata__` holds the architecture and the run's provenance.
public enum Checkpoint {
  public static let formatVersion = "advprune-checkpoint-1"

  static let maskSuffix = "_mask"
  static let momentumSuffix = "_momentum"

  /// The state dict, with `pruning` every slot of the pruning state (`<name>_mask`, `_scores`,
  /// `_admm_z`, ...), and with `optimizer` the momentum buffers (of scores too), as host tensors.
  public static func stateDict(of model: Model, optimizer: Bool = false, pruning: Bool = true) throws -> [String: HostTensor] {
    var tensors: [String: HostTensor] = [:]
    let b = model.backend
    func put(_ key: String, _ t: Tensor) throws { tensors[key] = HostTensor(shape: t.shape, values: try b.download(t)) }
    for p in model.parameters {
      try put(p.name, p.value)
      if optimizer && p.isTrainable { try put(p.name + momentumSuffix, p.velocity) }
    }
    guard pruning else { return tensors }
    let state = model.pruning
    for name in state.maskedNames { try put(name + maskSuffix, state.mask(for: name)!) }
    for t in state.allTrained {
      try put(t.name, t.value)
      if optimizer { try put(t.name + momentumSuffix, t.velocity) }
    }
    for (name, slot, t) in state.allAuxiliaries { try put(name + slot.suffix, t) }
    return tensors
  }

  /// Writes `model` atomically: a crash leaves the old file or the new one, never half of one.
  public static func save(_ model: Model, metadata: [String: String], to path: String, optimizer: Bool = false) throws {
    var meta = metadata
    meta["format"] = formatVersion
    meta["arch"] = model.architecture.rawValue
    meta["width"] = "\(model.width)"
    if !model.channels.isEmpty { meta["channels"] = encodeChannels(model.channels) }
    meta["sparsity"] = String(format: "%.6f", try model.sparsity())
    try Safetensors.write(SafetensorsFile(tensors: try stateDict(of: model, optimizer: optimizer), metadata: meta), path: path)
  }

  /// The data set a job runs on: `explicit` (`--dataset`), else the one in the checkpoint's metadata.
  public static func dataset(_ explicit: DatasetName?, metadata: [String: String], path: String) throws -> DatasetName {
    if let explicit { return explicit }
    if let stored = metadata["dataset"] { return try DatasetName(parsing: stored) }
    throw UserError.badCheckpoint(path: path, problem: "no dataset in its metadata; name one with --dataset")
  }

  /// The data set a checkpoint was trained on, from its metadata (nil for files from elsewhere).
  public static func storedDataset(path: String) throws -> DatasetName? {
    try Safetensors.read(path: path).metadata["dataset"].map(DatasetName.init(parsing:))
  }

  /// Reads a checkpoint and builds its model on `backend`.
  ///
  /// The architecture comes from the metadata, or from `architecture` for files without it
  /// (saved from PyTorch); when both exist they must agree.
  public static func load(path: String, backend: Backend, architecture: Architecture? = nil, width: Double? = nil) throws -> (
    model: Model, metadata: [String: String]
  ) {
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
    let channels = try file.metadata["channels"].map { try decodeChannels($0, path: path) } ?? [:]
    var model = try arch.build(backend: backend, seed: 0, width: width ?? storedWidth ?? 1, channels: channels, initialize: false)
    if file.metadata["channels"] == nil {
      // A compacted model saved elsewhere (PyTorch) has no `channels`: its shapes say them.
      let inferred = inferredChannels(file.tensors, model: model)
      if !inferred.isEmpty { model = try arch.build(backend: backend, seed: 0, width: model.width, channels: inferred, initialize: false) }
    }
    try assign(file.tensors, to: model, path: path)
    return (model, file.metadata)
  }

  /// Copies tensors into the model's parameters and pruning state after checking names, shapes
  /// and masks.
  static func assign(_ tensors: [String: HostTensor], to model: Model, path: String) throws {
    var problems: [String] = []
    let expected = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0) })
    func checkShape(_ key: String, of p: Parameter) {
      if let t = tensors[key], t.shape != p.shape { problems.append("\(key) has shape \(t.shape), expected \(p.shape)") }
    }
    for p in model.parameters {
      guard let t = tensors[p.name] else {
        problems.append("missing \(p.name) \(p.shape)")
        continue
      }
      if t.shape != p.shape { problems.append("\(p.name) has shape \(t.shape), expected \(p.shape)") }
      for slot in PruningState.Slot.allCases where slot != .mask { checkShape(p.name + slot.suffix, of: p) }
      checkShape(p.name + momentumSuffix, of: p)
      for slot in PruningState.Slot.trained { checkShape(p.name + slot.suffix + momentumSuffix, of: p) }
      if let m = tensors[p.name + maskSuffix] {
        if !p.isTrainable { problems.append("\(p.name)_mask: \(p.name) is a buffer, not a parameter") }
        if m.shape != p.shape { problems.append("\(p.name)_mask has shape \(m.shape), expected \(p.shape)") }
        if m.values.contains(where: { $0 != 0 && $0 != 1 }) { problems.append("\(p.name)_mask holds values other than 0 and 1") }
      }
      for slot in PruningState.Slot.allCases where slot != .mask && tensors[p.name + slot.suffix] != nil && !p.isPrunable {
        problems.append("\(p.name)\(slot.suffix): \(p.name) is not a prunable weight")
      }
    }
    for name in tensors.keys.sorted() where expected[baseName(of: name)] == nil { problems.append("unexpected tensor \(name)") }
    if !problems.isEmpty {
      let shown = problems.prefix(5).joined(separator: "; ")
      let more = problems.count > 5 ? " (and \(problems.count - 5) more)" : ""
      throw UserError.badCheckpoint(path: path, problem: "does not fit \(model.architecture.rawValue): \(shown)\(more)")
    }
    let backend = model.backend
    let state = model.pruning
    state.clear()
    for p in model.parameters {
      try backend.write(tensors[p.name]!.values, to: p.value)
      if let m = tensors[p.name + maskSuffix] {
        let mask = try backend.upload(m.values, shape: p.shape)
        state.setMask(mask, for: p.name)
        // Under live scores (a HYDRA/HARP phase) a masked weight may come back when the scores
        // move, so its value is kept; otherwise the mask is hard and the weight is zero.
        if tensors[p.name + PruningState.Slot.scores.suffix] == nil { try backend.multiply(out: p.value, a: p.value, b: mask) }
      }
      if let v = tensors[p.name + momentumSuffix] {
        try backend.write(v.values, to: p.velocity)
      } else {
        try backend.fill(p.velocity, value: 0)
      }
      if let s = tensors[p.name + PruningState.Slot.scores.suffix] {
        let scores = try state.setScores(for: p, values: s.values)
        if let v = tensors[scores.name + momentumSuffix] { try backend.write(v.values, to: scores.velocity) }
      }
      if let t = tensors[p.name + PruningState.Slot.twin.suffix] {
        let twin = try state.setTwin(for: p, values: t.values)
        if let v = tensors[twin.name + momentumSuffix] { try backend.write(v.values, to: twin.velocity) }
      }
      for slot in [PruningState.Slot.admmZ, .admmU] {
        if let t = tensors[p.name + slot.suffix] { state.setAuxiliary(slot, try backend.upload(t.values, shape: p.shape), for: p.name) }
      }
    }
  }

  /// The parameter a checkpoint key belongs to: `conv1.weight` for `conv1.weight_scores_momentum`.
  static func baseName(of key: String) -> String {
    var base = key
    if base.hasSuffix(momentumSuffix) { base = String(base.dropLast(momentumSuffix.count)) }
    for slot in PruningState.Slot.allCases where base.hasSuffix(slot.suffix) {
      return String(base.dropLast(slot.suffix.count))
    }
    return base
  }

  /// Channel counts of a compacted model as metadata: `conv1=12,conv2=30` (sorted).
  static func encodeChannels(_ channels: [String: Int]) -> String {
    channels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
  }

  static func decodeChannels(_ text: String, path: String) throws -> [String: Int] {
    var channels: [String: Int] = [:]
    for entry in text.split(separator: ",") {
      let parts = entry.split(separator: "=")
      guard parts.count == 2, let count = Int(parts[1]), count >= 1 else {
        throw UserError.badCheckpoint(path: path, problem: "channels entry '\(entry)' in its metadata is not <group>=<count >= 1>")
      }
      channels[String(parts[0])] = count
    }
    return channels
  }

  /// Channel groups whose first producer's output count in `tensors` differs from `model`'s.
  static func inferredChannels(_ tensors: [String: HostTensor], model: Model) -> [String: Int] {
    var channels: [String: Int] = [:]
    for group in model.architecture.channelGroups() {
      let name = group.producers[0].conv + ".weight"
      guard let t = tensors[name], let p = model.parameter(named: name), t.shape.count == p.shape.count,
        let count = t.shape.first, count >= 1, count != p.shape[0]
      else { continue }
      channels[group.name] = count
    }
    return channels
  }
}
