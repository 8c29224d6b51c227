#ifndef PESC_EXECUTOR_CGROUP_H_
#define PESC_EXECUTOR_CGROUP_H_

// One control group per rank, so a rank's memory and process count are
// capped across all its processes and an out-of-memory kill can be told
// apart from any other death. cgroup v2 where its memory and pids
// controllers are delegated to us; else the v1 memory and pids hierarchies
// where they are writable (hybrid hosts and many containers).
//
// Thread-safety: a CgroupTree may be shared by every slot; a RankCgroup
// belongs to one rank.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "executor/sandbox.h"

namespace pesc {

class RankCgroup {
 public:
  // Kills whatever is still in it and removes it.
  ~RankCgroup();
  RankCgroup(const RankCgroup&) = delete;
  RankCgroup& operator=(const RankCgroup&) = delete;

  // cgroup.procs of each hierarchy, opened for writing: a child writes "0"
  // to each before it executes the rank, so nothing of the rank runs outside.
  const std::vector<int>& join_fds() const { return join_fds_; }

  // The kernel killed a process of it for going over memory_bytes.
  bool oom_killed() const;

  // SIGKILL to every process in it, including any that left the rank's
  // process group.
  void kill_all() const;

 private:
  friend class CgroupTree;
  struct Hierarchy {
    std::filesystem::path dir;
    bool v2 = false;
  };
  RankCgroup() = default;
  std::vector<Hierarchy> dirs_;
  std::filesystem::path memory_dir_;  // empty: no memory controller
  bool memory_v2_ = false;
  std::vector<int> join_fds_;
};

class CgroupTree {
 public:
  // The cgroups this process may make rank cgroups in; an error (saying
  // why) when there are none, and ranks then go without.
  static absl::StatusOr<std::shared_ptr<CgroupTree>> open();
  ~CgroupTree();  // removes its directories (they are empty by then)

  // A fresh cgroup capped at limits.memory_bytes and limits.processes.
  absl::StatusOr<std::unique_ptr<RankCgroup>> create(const ResourceLimits& limits);

  // "cgroup v2" or "cgroup v1 (memory, pids)", for the worker's startup line.
  std::string describe() const;

 private:
  CgroupTree() = default;
  bool v2_ = false;
  std::filesystem::path memory_root_;  // our directory in each hierarchy;
  std::filesystem::path pids_root_;    // the same one under v2
  absl::Mutex mutex_;
  int64_t next_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace pesc

#endif  // PESC_EXECUTOR_CGROUP_H_
