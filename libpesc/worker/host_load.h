#ifndef PESC_WORKER_HOST_LOAD_H_
#define PESC_WORKER_HOST_LOAD_H_

// How busy the host's CPUs are with work other than this worker's: the busy
// share of /proc/stat's "cpu" line between two samples, less what the worker
// and its ranks (running or ended meanwhile) used.
//
// Thread-safety: one caller at a time.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <utility>

namespace pesc {

// How busy the host's CPUs are with anything (the worker's ranks included):
// the busy share of /proc/stat's "cpu" line between two samples. Reads that
// one line only, so it is cheap enough for every heartbeat.
//
// Thread-safety: one caller at a time.
class HostCpu {
 public:
  explicit HostCpu(std::filesystem::path proc_stat) : proc_stat_(std::move(proc_stat)) {}

  // Percent of all CPUs busy since the previous sample; nullopt on the first
  // one, or when the file cannot be read.
  std::optional<double> sample();

 private:
  std::filesystem::path proc_stat_;
  std::optional<std::pair<int64_t, int64_t>> previous_;  // total and busy ticks
};

class HostLoad {
 public:
  explicit HostLoad(std::filesystem::path proc_stat) : proc_stat_(std::move(proc_stat)) {}

  // Percent of all CPUs busy with other work since the previous sample;
  // nullopt on the first one, or when the file cannot be read. `rank_sessions`
  // are the session ids of the ranks running now.
  std::optional<double> sample(const std::set<pid_t>& rank_sessions);

 private:
  struct Ticks {
    int64_t total = 0;
    int64_t busy = 0;
    int64_t ranks = 0;
  };
  std::filesystem::path proc_stat_;
  std::optional<Ticks> previous_;
};

}  // namespace pesc

#endif  // PESC_WORKER_HOST_LOAD_H_
