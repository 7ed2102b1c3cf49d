/// A set of output channels that structured pruning removes together, and everything that
/// reads them.
///
/// Producers are the convs (with their bias and batch norm) whose output channel k *is* the
/// group's channel k: one conv in a plain network, every conv writing one stage's residual stream
/// in a ResNet (the stem or the strided shortcut, and each block's `conv2`), because an identity
/// shortcut adds their outputs channel by channel. Consumers are the layers whose input channel
/// k it is; `perChannel` counts the inputs of a linear layer one channel feeds after a flatten.
///
/// When a channel's producer filters, biases and batch-norm scale and shift are all zero, the
/// channel is zero for every input, and removing it (and its consumers' inputs) changes nothing.
public struct ChannelGroup: Sendable, Equatable {
  public struct Producer: Sendable, Equatable {
    public var conv: String
    public var norm: String?
  }

  public struct Consumer: Sendable, Equatable {
    public var layer: String
    public var perChannel: Int
  }

  /// The key of `Model.channels` and of the `channels` checkpoint metadata.
  public var name: String
  public var producers: [Producer]
  public var consumers: [Consumer]
  /// Every consumer reads the channel through ReLU (and pooling or a flatten) without padding and
  /// has a bias, so a channel whose filters are zero, a constant plane, can be folded into the
  /// consumers' biases and removed (`Compaction`). Padding would make the plane's border differ.
  public var foldsConstants = false

  /// Every tensor indexed by the group's channels along dimension 0.
  public var producedTensors: [String] {
    var names: [String] = []
    for p in producers {
      names += [p.conv + ".weight", p.conv + ".bias"]
      if let norm = p.norm {
        for field in ["weight", "bias", "running_mean", "running_var"] { names.append(norm + "." + field) }
      }
    }
    return names
  }
}

extension Architecture {
  /// The architecture's channel groups, in forward order.
  public func channelGroups() -> [ChannelGroup] {
    typealias P = ChannelGroup.Producer
    typealias C = ChannelGroup.Consumer
    func plain(_ conv: String, norm: String? = nil, into next: String, perChannel: Int = 1, foldsConstants: Bool = false) -> ChannelGroup {
      ChannelGroup(
        name: conv, producers: [P(conv: conv, norm: norm)], consumers: [C(layer: next, perChannel: perChannel)], foldsConstants: foldsConstants)
    }
    switch self {
    case .smallcnn:
      return [
        plain("conv1", into: "conv2", foldsConstants: true), plain("conv2", into: "conv3", foldsConstants: true),
        plain("conv3", into: "conv4", foldsConstants: true), plain("conv4", into: "fc1", perChannel: 16, foldsConstants: true),
      ]
    case .vgg16, .vgg16Classic:
      var convs: [Int] = []
      var index = 0
      for entry in Self.vggPlan(classic: self == .vgg16Classic) {
        if entry != nil { convs.append(index) }
        index += entry == nil ? 1 : 3
      }
      return convs.enumerated().map { i, at in
        let next = i + 1 < convs.count ? "features.\(convs[i + 1])" : (self == .vgg16 ? "classifier.0" : "classifier")
        // Only the last conv's reader, the classifier, is unpadded.
        return plain(
          "features.\(at)", norm: "features.\(at + 1)", into: next, perChannel: next == "classifier.0" ? 4 : 1, foldsConstants: i == convs.count - 1)
      }
    case .resnet18:
      var groups: [ChannelGroup] = []
      for stage in 1...4 {
        let blocks = ["layer\(stage).0", "layer\(stage).1"]
        let entry = stage == 1 ? P(conv: "conv1", norm: "bn1") : P(conv: "layer\(stage).0.shortcut.0", norm: "layer\(stage).0.shortcut.1")
        let readers = stage == 1 ? blocks : [blocks[1]]
        let next =
          stage < 4
          ? [C(layer: "layer\(stage + 1).0.conv1", perChannel: 1), C(layer: "layer\(stage + 1).0.shortcut.0", perChannel: 1)]
          : [C(layer: "linear", perChannel: 1)]
        groups.append(
          ChannelGroup(
            name: "stream\(stage)",
            producers: [entry] + blocks.map { P(conv: $0 + ".conv2", norm: $0 + ".bn2") },
            consumers: readers.map { C(layer: $0 + ".conv1", perChannel: 1) } + next))
        groups += blocks.map { plain($0 + ".conv1", norm: $0 + ".bn1", into: $0 + ".conv2") }
      }
      return groups
    }
  }
}
