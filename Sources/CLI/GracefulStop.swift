import Foundation
import Prune

/// SIGINT / SIGTERM for long jobs: the first asks the job to stop at its next safe point (after
/// the training step in progress, with a checkpoint); a second one stops at once, as without it.
enum GracefulStop {
  static func install() {
    StopRequest.reset()
    for sig in [SIGINT, SIGTERM] {
      signal(sig) { sig in
        if StopRequest.pendingSignal != 0 {
          signal(sig, SIG_DFL)
          raise(sig)
          return
        }
        StopRequest.pendingSignal = sig
        // write(2) is async-signal-safe; print is not.
        let message = "\nadvprune: stopping after the current step (again to stop at once)\n"
        _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
      }
    }
  }
}
