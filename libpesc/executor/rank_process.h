#ifndef PESC_EXECUTOR_RANK_PROCESS_H_
#define PESC_EXECUTOR_RANK_PROCESS_H_

// One running rank: a child process in a process group of its own, with
// stdout and stderr interleaved into one file, stdin from /dev/null.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace pesc {

struct RankLaunch {
  std::vector<std::string> argv;  // argv[0] is an absolute path
  // Added to (and overriding) the worker's own environment.
  std::vector<std::pair<std::string, std::string>> environment;
  std::filesystem::path working_dir;
  std::filesystem::path output_file;  // created; stdout and stderr append to it
  // Descriptors the child gets as 3, 4, ... in this order (a runner's
  // protocol pipes); every other descriptor of the worker stays closed.
  std::vector<int> inherited_fds;
};

struct RankExit {
  int exit_code = 0;  // 128 + signal when killed, as a shell reports it
  int signal = 0;     // the signal that killed the rank, else 0
  int64_t start_unix_ms = 0;
  int64_t end_unix_ms = 0;
  int64_t cpu_ms = 0;      // user + system time of the rank's process
  int64_t max_rss_kb = 0;  // its peak resident memory
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
  RankProcess(pid_t pid, int64_t start_unix_ms);
  struct Terminator;
  pid_t pid_;
  int64_t start_unix_ms_;
  std::unique_ptr<Terminator> terminator_;
};

}  // namespace pesc

#endif  // PESC_EXECUTOR_RANK_PROCESS_H_
