#ifndef PESC_EXECUTOR_SLOT_LAUNCHER_H_
#define PESC_EXECUTOR_SLOT_LAUNCHER_H_

// A worker slot's sandbox, kept from rank to rank: bubblewrap started once
// with pesc-rank-launcher (daemons/rank_launcher_main.cc) as the sandbox's
// init. A rank enters its namespaces and root (spawn.h's SandboxToEnter),
// as the worker's own child, so a sandboxed rank costs about what a plain
// one does instead of new namespaces. After each rank the launcher kills
// whatever the rank left running in the sandbox and empties its /tmp,
// /dev/shm and System V IPC, before the slot's next rank may enter; the
// worker empties the slot's directories as for any rank.
//
// A launcher serves one sandbox (one set of dirs, network or not, devices,
// hidden paths) and one user: a rank that needs another gets a new one. A
// launcher that died (it cannot be killed from inside; a crash, or it could
// not clean up) ends its rank as the worker's fault, and the next rank gets
// a new launcher.
//
// Thread-safety: one rank at a time, from one thread.

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "executor/sandbox.h"
#include "executor/spawn.h"

namespace pesc {

class SlotLauncher {
 public:
  // Starts `program` in `sandbox` as `run_as` (else as the worker's user)
  // and waits until it is ready; what it says itself goes to `log_file`.
  // FailedPrecondition: the sandbox cannot be entered or cleaned on this
  // machine.
  static absl::StatusOr<std::shared_ptr<SlotLauncher>> start(const std::filesystem::path& program,
                                                             const Sandbox& sandbox,
                                                             const std::optional<Credentials>& run_as,
                                                             const std::filesystem::path& log_file);
  ~SlotLauncher();  // ends it and its sandbox
  SlotLauncher(const SlotLauncher&) = delete;
  SlotLauncher& operator=(const SlotLauncher&) = delete;

  // Whether it is alive and can run a rank that wants `sandbox` as `run_as`:
  // the same sandbox, with the same directories still there (a slot's dirs
  // made anew are other dirs than those bound).
  bool serves(const Sandbox& sandbox, const std::optional<Credentials>& run_as);

  // The sandbox for the next rank to enter, once the last rank's leftovers
  // are gone; Unavailable when the launcher died or could not clean up.
  absl::StatusOr<SandboxToEnter> enter();
  // The rank that entered has ended: the launcher starts cleaning up after
  // it, and enter() waits for that. False when the launcher is gone (and
  // took the rank with it).
  bool rank_ended();
  // False once the launcher has ended or failed, and its sandbox with it.
  bool alive() const;

 private:
  SlotLauncher(pid_t pid, int socket, Sandbox sandbox, std::optional<Credentials> run_as);
  struct DirIdentity {
    dev_t device = 0;
    ino_t inode = 0;
    bool operator==(const DirIdentity&) const = default;
  };
  static std::vector<DirIdentity> identities(const std::vector<std::filesystem::path>& dirs);
  // Finds the launcher inside bubblewrap and how to enter its sandbox.
  absl::Status find_sandbox();
  // Starts `program --probe` in the sandbox the way ranks enter it.
  absl::Status probe(const std::filesystem::path& program, const std::filesystem::path& log_file);
  // Waits for the cleaning after the last rank, if any; false when broken.
  bool finish_cleaning();

  const pid_t pid_;  // bubblewrap
  const int socket_;
  const Sandbox sandbox_;
  const std::optional<Credentials> run_as_;
  const std::vector<DirIdentity> dirs_;
  SandboxToEnter entry_;      // descriptors owned here
  bool cleaning_ = false;     // a kClean not yet answered
  bool broken_ = false;
};

}  // namespace pesc

#endif  // PESC_EXECUTOR_SLOT_LAUNCHER_H_
