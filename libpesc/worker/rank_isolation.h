#ifndef PESC_WORKER_RANK_ISOLATION_H_
#define PESC_WORKER_RANK_ISOLATION_H_

// How a worker keeps ranks from hurting it or each other: the unprivileged
// user they run as (when the worker is root), the bubblewrap sandbox they
// run in (when installed), and the job's per-rank limits (rlimits, cgroups,
// watches). Turns one job's run into those parts of its RankLaunch.
//
// Thread-safety: apply() from every slot thread at once.

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "executor/cgroup.h"
#include "executor/rank_contract.h"
#include "executor/rank_process.h"
#include "executor/sandbox.h"
#include "worker/rank_task.h"

namespace pesc {

struct IsolationOptions {
  // The user ranks run as when the worker runs as root; created when missing.
  std::string run_as = "pesc";
  // Run ranks in bubblewrap when it is installed and works here.
  bool sandbox = true;
  // Files and dirs a sandboxed rank must not see even where the system is
  // shown, such as the worker's token file and its work dir (of which a
  // rank sees its own slot's dirs only).
  std::vector<std::filesystem::path> hidden;
};

class RankIsolation {
 public:
  // For pesc-worker: resolves (or creates) the user, finds and tries bwrap.
  static absl::StatusOr<std::shared_ptr<RankIsolation>> create(const IsolationOptions& options);
  // Ranks run as the worker's own user, unsandboxed, under the job's limits:
  // the embedded farm, which runs the user's code on the user's machine.
  static std::shared_ptr<RankIsolation> limits_only();

  // One line for the worker's startup log: which isolation is active.
  std::string describe() const;

  // Gives the rank's directories to its user and sets the launch's limits,
  // user, sandbox and cgroups from the job's. `app_dir_ready`: app_dir and
  // the command are as a rank of the same job started them in this slot,
  // so app_dir is its user's already and the command within its reach.
  absl::Status apply(const JobRun& job, const RankContext& context, RankLaunch& launch, bool app_dir_ready);

  // The launcher that may start `launch` inside its slot's sandbox
  // (executor/slot_launcher.h), or nullopt when it needs a bubblewrap of its
  // own: it is not sandboxed, or needs a cgroup or a memory watch (they
  // follow one process tree from its start), or passes descriptors.
  std::optional<std::filesystem::path> slot_launcher_for(const RankLaunch& launch) const;

  // Hides `path` from ranks started from now on too (the coordinator's
  // state dir, once the worker knows it).
  void hide(const std::filesystem::path& path);
  // Whether the ranks' user can execute `program` (an interpreter found on
  // root's PATH under /root cannot be); says why not.
  absl::Status check_runnable(const std::filesystem::path& program) const;

  // Gives what the worker put in a running rank's directory (a restored
  // checkpoint for a warm runner's next rank) to the ranks' user.
  void hand_over(const std::filesystem::path& dir) const;

  // The work dir: traversable (ranks reach their slot dirs) but not
  // listable, and everything in it but runs/ readable by the worker only.
  // An error when the ranks' user could not reach it.
  absl::Status protect_work_dir(const std::filesystem::path& work_dir) const;

  // What output.txt says about a rank killed for `limit`.
  static std::string limit_note(const ResourceLimits& limits, const std::string& limit);

 private:
  RankIsolation() = default;
  // Opened at the first rank that needs one, so a farm that never limits
  // memory or processes makes no cgroup directories.
  std::shared_ptr<CgroupTree> cgroups() const;

  std::optional<Credentials> run_as_;
  std::optional<std::filesystem::path> bwrap_;
  std::optional<std::filesystem::path> slot_launcher_;  // pesc-rank-launcher beside this program
  std::string sandbox_state_;  // why there is no sandbox, for describe()
  mutable absl::Mutex hidden_mutex_;
  std::vector<std::filesystem::path> hidden_ ABSL_GUARDED_BY(hidden_mutex_);
  mutable std::once_flag cgroups_opened_;
  mutable std::shared_ptr<CgroupTree> cgroups_;  // null: none writable here
  mutable std::string cgroups_state_;
};

}  // namespace pesc

#endif  // PESC_WORKER_RANK_ISOLATION_H_
