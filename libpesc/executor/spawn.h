#ifndef PESC_EXECUTOR_SPAWN_H_
#define PESC_EXECUTOR_SPAWN_H_

// Starts a rank's process the way posix_spawn does (clone with a shared
// address space, so a large Python or R parent costs no page-table copy),
// plus what posix_spawn cannot do between fork and exec: rlimits, joining
// cgroups, and dropping to another user. The child only makes system
// calls, so it is safe from a multi-threaded parent.

#include <sys/resource.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "executor/sandbox.h"

namespace pesc {

// A sandbox that already exists, which a child enters instead of starting
// bubblewrap: a slot's launcher (executor/slot_launcher.h).
struct SandboxToEnter {
  int pidfd = -1;      // a process in it
  int namespaces = 0;  // CLONE_NEW* of the namespaces to enter (those that are not ours)
  int root_fd = -1;    // its root directory (O_PATH)
};

struct SpawnPlan {
  std::vector<std::string> argv;  // argv[0]: the absolute path executed
  std::vector<std::string> environment;  // "NAME=value", complete
  std::string working_dir;                // empty: the parent's
  int output_fd = -1;                     // becomes stdout and stderr
  std::vector<int> inherited_fds;         // become 3, 4, ...
  std::vector<int> cgroup_fds;            // cgroup.procs files to write "0" to
  std::vector<std::pair<int, rlimit>> limits;  // RLIMIT_* and values
  std::optional<Credentials> run_as;
  // Set: the program runs in this sandbox, as a child of ours in its pid
  // namespace, with no more privilege than run_as (or this process's user)
  // has there, and no way to gain any (no_new_privs).
  std::optional<SandboxToEnter> enter;
};

// The child runs in a new session (so no terminal of the worker's and its
// own process group), default signal dispositions, nothing blocked, stdin
// from /dev/null and no other descriptors. Returns its pid, or why it could
// not be executed (nothing is left running then).
absl::StatusOr<pid_t> spawn(const SpawnPlan& plan);

// Why `plan` could not be started: the child's `step` failed with `error`.
// A file the job gave that cannot be executed is the job's fault; `run_as`
// (who runs it, if not the worker's user) goes into the hint.
absl::Status spawn_failure(const SpawnPlan& plan, std::string_view step, int error,
                           const std::optional<Credentials>& run_as);

// The rlimits that enforce `limits` in each process of a rank.
// `processes_by_rlimit`: no cgroup counts them, so RLIMIT_NPROC must.
std::vector<std::pair<int, rlimit>> rlimits_for(const ResourceLimits& limits, bool processes_by_rlimit);

}  // namespace pesc

#endif  // PESC_EXECUTOR_SPAWN_H_
