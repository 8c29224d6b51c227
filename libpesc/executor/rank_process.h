#ifndef PESC_EXECUTOR_RANK_PROCESS_H_
#define PESC_EXECUTOR_RANK_PROCESS_H_

// One running rank: a child process in a session and process group of its
// own, with stdout and stderr interleaved into one file, stdin from
// /dev/null; optionally under limits, as another user, in a cgroup and in a
// bubblewrap sandbox (executor/sandbox.h): one of its own, or its slot's,
// kept from rank to rank (executor/slot_launcher.h).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "executor/cgroup.h"
#include "executor/sandbox.h"

namespace pesc {

class SlotLauncher;

struct RankLaunch {
  std::vector<std::string> argv;  // argv[0] is an absolute path
  // Added to (and overriding) the worker's own environment.
  std::vector<std::pair<std::string, std::string>> environment;
  std::filesystem::path working_dir;
  std::filesystem::path output_file;  // created; stdout and stderr append to it
  // Descriptors the child gets as 3, 4, ... in this order (a runner's
  // protocol pipes); every other descriptor of the worker stays closed.
  std::vector<int> inherited_fds;

  ResourceLimits limits;
  std::filesystem::path output_dir;  // watched against limits.output_bytes
  std::optional<Credentials> run_as;  // else the worker's own user
  std::optional<Sandbox> sandbox;     // else the process runs as it is
  // Set: the rank enters this launcher's sandbox, which is `sandbox` as
  // `run_as` already, instead of starting a bubblewrap of its own.
  std::shared_ptr<SlotLauncher> launcher;
  // Where memory and process caps go; null: rlimits and watches only.
  std::shared_ptr<CgroupTree> cgroups;
};

// A file of the rank's output_dir that a warm runner handed over its pipe
// instead of writing it (executor/warm_runner.h).
struct PipedFile {
  std::string name;  // a plain name in output_dir
  std::string bytes;
};

struct RankExit {
  int exit_code = 0;  // 128 + signal when killed, as a shell reports it
  int signal = 0;     // the signal that killed the rank, else 0
  int64_t start_unix_ms = 0;
  int64_t end_unix_ms = 0;
  int64_t cpu_ms = 0;      // user + system time of the rank's process
  int64_t max_rss_kb = 0;  // its peak resident memory
  // "memory", "cpu" or "output" when it was killed for going over that
  // limit of its launch; else empty.
  std::string limit_exceeded;
  std::optional<PipedFile> piped_file;
  // Not OK when the rank entered its slot's sandbox and the slot's launcher
  // died meanwhile, taking the rank with it: the worker's fault.
  absl::Status not_run;
};

// Thread-safety: wait() from one thread while terminate() is called from
// another is the intended use.
class RankProcess {
 public:
  // Fails (nothing left running) when the program cannot be executed.
  static absl::StatusOr<std::unique_ptr<RankProcess>> start(const RankLaunch& launch);
  ~RankProcess();  // kills the group if still running

  // Blocks until the rank's main process ends, then kills whatever else is
  // left in its process group so nothing outlives the rank.
  RankExit wait();

  // SIGTERM to the whole group, SIGKILL after `grace` if it still lives.
  // Returns at once; wait() observes the end.
  void terminate(std::chrono::milliseconds grace);

  pid_t pid() const { return pid_; }

 private:
  RankProcess(pid_t pid, int64_t start_unix_ms, bool sandboxed);
  struct Terminator;
  class LimitWatch;
  // SIGKILL to the process group and to all of the rank's cgroup.
  void kill_everything();
  std::string limit_exceeded(const RankExit& exit) const;

  pid_t pid_;
  int64_t start_unix_ms_;
  std::unique_ptr<Terminator> terminator_;
  ResourceLimits limits_;
  std::filesystem::path output_dir_;
  std::unique_ptr<RankCgroup> cgroup_;
  std::shared_ptr<SlotLauncher> launcher_;  // whose sandbox the rank entered
  bool launcher_told_ = false;              // that the rank ended
  bool launcher_lost_ = false;              // and it had died
  std::unique_ptr<LimitWatch> watch_;  // declared last: stopped first
};

}  // namespace pesc

#endif  // PESC_EXECUTOR_RANK_PROCESS_H_
