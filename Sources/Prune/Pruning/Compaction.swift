/// Physically removes the channels filter pruning zeroed: a smaller dense model that computes
/// the same function.
///
/// A channel goes when every producer's filter, conv bias and batch-norm scale and shift are zero
/// for it (then it is zero for every input, see `ChannelGroup`); the producers lose those rows
/// (running statistics included) and the consumers those input channels. Masks that still hold
/// zeros (unstructured pruning on top) are kept, cut the same way; optimizer state and the other
/// pruning slots (scores, auxiliaries) are dropped.
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
    var channels: [String: Int] = [:]
    var groups: [GroupSparsity] = []
    for group in model.architecture.channelGroups() {
      let kept = keptChannels(group, tensors: tensors)
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
    let kept = (0..<count).filter { k in
      rows.contains { t in
        let width = t.values.count / count
        return t.values[(k * width)..<((k + 1) * width)].contains { $0 != 0 }
      }
    }
    return kept.isEmpty ? [0] : kept
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
