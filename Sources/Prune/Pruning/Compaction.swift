/// Physically removes the channels filter pruning zeroed: a smaller dense model that computes
/// the same function.
///
/// A channel goes when every producer's filter, conv bias and batch-norm scale and shift are zero
/// for it (then it is zero for every input, see `ChannelGroup`); the producers lose those rows
/// (running statistics included) and the consumers those input channels. In a group whose
/// constants fold (`ChannelGroup.foldsConstants`) a channel also goes when only its filter is
/// zero: it is then a constant plane, which its consumers take into their biases. Heavy
/// unstructured pruning leaves many such filters (at 99 % SmallCNN's conv1 keeps 3 of 32), and each
/// removal empties more filters downstream. Masks that still hold zeros (unstructured pruning on
/// top) are kept, cut the same way; optimizer state and the other pruning slots (scores,
/// auxiliaries) are dropped.
public enum Compaction {
  public struct Outcome {
    /// The compact state dict, for a model built with `channels`.
    public var tensors: [String: HostTensor]
    /// Every group's channel count after compaction.
    public var channels: [String: Int]
    /// Per group: channels before and after.
    public var groups: [GroupSparsity]
  }

  public static func compact(_ model: Model) throws -> Outcome {
    var tensors = try Checkpoint.stateDict(of: model, pruning: false)
    var masks = try Checkpoint.stateDict(of: model).filter { $0.key.hasSuffix(Checkpoint.maskSuffix) }
    // The model computes with value * mask; the zeros under a mask are what empty a filter.
    for (key, mask) in masks {
      let base = String(key.dropLast(Checkpoint.maskSuffix.count))
      if var t = tensors[base], t.values.count == mask.values.count {
        for i in t.values.indices where mask.values[i] == 0 { t.values[i] = 0 }
        tensors[base] = t
      }
    }
    var channels: [String: Int] = [:]
    var groups: [GroupSparsity] = []
    for group in model.architecture.channelGroups() {
      var kept = keptChannels(group, tensors: tensors)
      if group.foldsConstants, group.producers.count == 1, group.consumers.allSatisfy({ tensors[$0.layer + ".bias"] != nil }) {
        let live = filteredChannels(group.producers[0].conv, tensors: tensors)
        let constant = kept.filter { !live.contains($0) }
        if !constant.isEmpty && !live.isEmpty {
          fold(constant, of: group, into: &tensors, model: model)
          kept = live
        }
      }
      channels[group.name] = kept.count
      groups.append(GroupSparsity(name: group.name, channels: tensors[group.producers[0].conv + ".weight"]!.shape[0], kept: kept.count))
      for name in group.producedTensors {
        for key in [name, name + Checkpoint.maskSuffix] {
          if let t = tensors[key] { tensors[key] = select(t, dimension: 0, channels: kept, perChannel: 1) }
          if let t = masks[key] { masks[key] = select(t, dimension: 0, channels: kept, perChannel: 1) }
        }
      }
      for consumer in group.consumers {
        let key = consumer.layer + ".weight"
        tensors[key] = select(tensors[key]!, dimension: 1, channels: kept, perChannel: consumer.perChannel)
        if let m = masks[key + Checkpoint.maskSuffix] {
          masks[key + Checkpoint.maskSuffix] = select(m, dimension: 1, channels: kept, perChannel: consumer.perChannel)
        }
      }
    }
    let prunable = Set(model.prunableParameters.map(\.name))
    for (key, mask) in masks {
      let base = String(key.dropLast(Checkpoint.maskSuffix.count))
      if prunable.contains(base) && mask.values.contains(0) { tensors[key] = mask }
    }
    return Outcome(tensors: tensors, channels: channels, groups: groups)
  }

  /// Channels of `group` that can carry signal; at least one, so every layer keeps a shape.
  static func keptChannels(_ group: ChannelGroup, tensors: [String: HostTensor]) -> [Int] {
    let count = tensors[group.producers[0].conv + ".weight"]!.shape[0]
    let rows = group.producers.flatMap { p -> [HostTensor] in
      ([p.conv + ".weight", p.conv + ".bias"] + (p.norm.map { [$0 + ".weight", $0 + ".bias"] } ?? [])).compactMap { tensors[$0] }
    }
    let kept = (0..<count).filter { k in rows.contains { hasNonzero($0, slice: k, of: count) } }
    return kept.isEmpty ? [0] : kept
  }

  /// Output channels of `conv` whose filter has a nonzero weight.
  static func filteredChannels(_ conv: String, tensors: [String: HostTensor]) -> [Int] {
    let w = tensors[conv + ".weight"]!
    return (0..<w.shape[0]).filter { hasNonzero(w, slice: $0, of: w.shape[0]) }
  }

  /// Whether slice `k` of `count` equal slices of `t` (channel k's rows) holds a nonzero.
  static func hasNonzero(_ t: HostTensor, slice k: Int, of count: Int) -> Bool {
    let width = t.values.count / count
    return t.values[(k * width)..<((k + 1) * width)].contains { $0 != 0 }
  }

  /// Adds the constant planes `channels` of `group` (filters zero: ReLU of the bias through the
  /// batch norm, in eval mode) to its consumers' biases: each output gains the channel's value
  /// times the sum of the weights that read it, which is exact because every consumer reads it
  /// unpadded (`foldsConstants`).
  static func fold(_ channels: [Int], of group: ChannelGroup, into tensors: inout [String: HostTensor], model: Model) {
    let producer = group.producers[0]
    func value(_ name: String, _ k: Int) -> Double? { tensors[name].map { Double($0.values[k]) } }
    var constants: [(channel: Int, value: Double)] = []
    for k in channels {
      var v = value(producer.conv + ".bias", k) ?? 0
      if let norm = producer.norm {
        let eps = model.convBatchNormPairs.first { $0.1.weight.name == norm + ".weight" }.map { Double($0.1.eps) } ?? 1e-5
        v =
          (value(norm + ".weight", k) ?? 1) * (v - (value(norm + ".running_mean", k) ?? 0))
          / ((value(norm + ".running_var", k) ?? 1) + eps).squareRoot()
          + (value(norm + ".bias", k) ?? 0)
      }
      if v > 0 { constants.append((k, v)) }
    }
    for consumer in group.consumers where !constants.isEmpty {
      let w = tensors[consumer.layer + ".weight"]!
      var bias = tensors[consumer.layer + ".bias"]!
      let outputs = w.shape[0]
      let along = w.shape[1] / consumer.perChannel
      let inner = w.values.count / (outputs * along)
      for o in 0..<outputs {
        var sum = Double(bias.values[o])
        for (k, c) in constants {
          let start = (o * along + k) * inner
          sum += c * w.values[start..<(start + inner)].reduce(0.0) { $0 + Double($1) }
        }
        bias.values[o] = Float(sum)
      }
      tensors[consumer.layer + ".bias"] = bias
    }
  }

  /// The slices `channels` of `dimension`, each `perChannel` wide (a linear layer after a flatten).
  static func select(_ t: HostTensor, dimension: Int, channels: [Int], perChannel: Int) -> HostTensor {
    let outer = t.shape[..<dimension].reduce(1, *)
    let inner = t.shape[(dimension + 1)...].reduce(1, *) * perChannel
    let along = t.shape[dimension] / perChannel
    var values: [Float] = []
    values.reserveCapacity(outer * channels.count * inner)
    for o in 0..<outer {
      for c in channels {
        let start = (o * along + c) * inner
        values += t.values[start..<(start + inner)]
      }
    }
    var shape = t.shape
    shape[dimension] = channels.count * perChannel
    return HostTensor(shape: shape, values: values)
  }
}
