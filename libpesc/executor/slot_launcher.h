#ifndef PESC_EXECUTOR_SLOT_LAUNCHER_H_
#define PESC_EXECUTOR_SLOT_LAUNCHER_H_

// A worker slot's launcher: pesc-rank-launcher (daemons/rank_launcher_main.cc)
// started once in the slot's bubblewrap sandbox, which starts the slot's
// sandboxed ranks there one at a time, so a rank costs a fork and an exec
// instead of new namespaces. After each rank it kills what the rank left
// running and empties the sandbox's private /tmp and /dev/shm; the worker
// empties the slot's directories as for any rank.
//
// A launcher serves one sandbox (one set of dirs, network or not, devices,
// hidden paths) and one user: a rank that needs another gets a new launcher.
// When it dies (a rank killed it, or it could not clean up), the rank it
// was running is lost as the worker's fault and the next rank gets a new one.
//
// Thread-safety: one rank at a time; a rank's control may signal from
// another thread while its wait() blocks.

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "executor/rank_process.h"
#include "executor/sandbox.h"
#include "executor/spawn.h"

namespace pesc {

class SlotLauncher : public std::enable_shared_from_this<SlotLauncher> {
 public:
  // Starts `program` in `sandbox` as `run_as` (else as the worker's user)
  // and waits until it is ready; what it says itself goes to `log_file`.
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
  bool serves(const Sandbox& sandbox, const std::optional<Credentials>& run_as) const;

  // Starts `plan` (argv, environment, working_dir, output_fd and limits are
  // used) in the sandbox, without waiting for the launcher's answer: a
  // program that cannot be executed ends at once, with RankExit::not_run
  // saying why as spawn() would.
  absl::StatusOr<std::unique_ptr<RankControl>> start_rank(const SpawnPlan& plan);

  // bubblewrap's pid: it leads the session every rank of the launcher is in.
  pid_t pid() const { return pid_; }

 private:
  class Control;
  struct DirIdentity {
    dev_t device = 0;
    ino_t inode = 0;
    bool operator==(const DirIdentity&) const = default;
  };
  static std::vector<DirIdentity> identities(const std::vector<std::filesystem::path>& dirs);

  SlotLauncher(pid_t pid, int socket, Sandbox sandbox, std::optional<Credentials> run_as);
  // The next frame from the launcher; false when it is gone.
  bool receive(std::string& body);
  bool send_signal(int signal);
  bool alive() const;

  const pid_t pid_;
  const int socket_;
  const Sandbox sandbox_;
  const std::optional<Credentials> run_as_;
  const std::vector<DirIdentity> dirs_;
  absl::Mutex send_mutex_;  // a rank's signal may come from another thread
  bool broken_ = false;     // set on the slot's thread only
};

}  // namespace pesc

#endif  // PESC_EXECUTOR_SLOT_LAUNCHER_H_
