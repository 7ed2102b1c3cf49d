import Foundation

/// `advprune bench slurm`: a Slurm job-array script, one array task per shard, each writing its own
/// database; the merge command to run when they are done is printed at its end.
public struct SlurmScript {
  public var config: String
  public var shards: Int
  public var databasePrefix: String
  public var executable: String
  public var device: String?
  public var partition: String?
  public var time: String
  public var cpus: Int
  public var gpus: Int

  public init(config: String, shards: Int, databasePrefix: String, executable: String, time: String = "24:00:00", cpus: Int = 8, gpus: Int = 1) {
    self.config = config
    self.shards = shards
    self.databasePrefix = databasePrefix
    self.executable = executable
    self.time = time
    self.cpus = cpus
    self.gpus = gpus
  }

  public var text: String {
    let name = ((config as NSString).lastPathComponent as NSString).deletingPathExtension
    var lines = [
      "#!/bin/bash",
      "# advprune benchmark \(name): \(shards) shards as one Slurm job array (written by advprune bench slurm).",
      "#SBATCH --job-name=advprune-\(name)",
      "#SBATCH --array=1-\(shards)",
      "#SBATCH --cpus-per-task=\(cpus)",
      "#SBATCH --time=\(time)",
      "#SBATCH --output=\(databasePrefix)-%a.log",
    ]
    if gpus > 0 { lines.append("#SBATCH --gres=gpu:\(gpus)") }
    if let partition { lines.append("#SBATCH --partition=\(partition)") }
    lines += [
      "set -euo pipefail",
      "shard=\"${SLURM_ARRAY_TASK_ID:?run this script with sbatch}\"",
      "# Each task writes its own database; a resubmitted task skips the cells its database holds.",
      "# Shards share one checkpoint directory: each dense model is trained once, by the first shard needing it.",
      "\(shellQuoted(executable)) bench run \(shellQuoted(config)) --db \(shellQuoted(databasePrefix))-\"$shard\".sqlite --shard \"$shard\"/\(shards)"
        + " --checkpoints \(shellQuoted(databasePrefix)).checkpoints" + (device.map { " --device \(shellQuoted($0))" } ?? ""),
      "# When every task has finished:",
      "#   \(executable) bench merge \(databasePrefix)-*.sqlite --into \(databasePrefix).sqlite",
      "",
    ]
    return lines.joined(separator: "\n")
  }
}

/// A word for a POSIX shell: kept as is when it is plain, single-quoted otherwise.
func shellQuoted(_ word: String) -> String {
  let plain = word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:@%+,".contains($0) }
  return plain && !word.isEmpty ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
