#ifndef PESC_POOL_POOL_TYPES_H_
#define PESC_POOL_POOL_TYPES_H_

// A pool of pilot workers as the coordinator keeps it, in plain C++: the
// admin service and the pool store convert the protocol's PoolSpec and
// PoolStatus in pool/pool_conversion.h alone, so the pool manager, the
// config file's pools and CoordinatorOptions read no generated type.

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "pesc/pesc.h"

namespace pesc {

// A pool: pilot workers the coordinator submits to a batch system (Slurm)
// while ranks wait, and cancels when they are no longer needed.
struct PoolSpec {
  std::string name;
  std::string batch_system;  // "slurm"
  std::string partition;     // empty: the batch system's default
  std::chrono::seconds time_limit{0};  // each pilot's walltime
  int max_workers = 0;                 // pilots alive at once
  int slots_per_worker = 0;
  std::chrono::seconds idle_timeout{0};  // a pilot idle this long leaves
  std::vector<std::string> submit_args;  // extra arguments to the submit command (sbatch)
  std::vector<std::string> worker_args;  // extra arguments to pesc-worker
  // A batch system from a template file (README: "Pools"): the file's text,
  // kept so a restarted coordinator has it, and its name for messages.
  // Empty: batch_system names a built-in one; set: batch_system is the
  // template's name.
  std::string batch_template;
  std::string batch_template_file;

  bool operator==(const PoolSpec&) const = default;
};

// A pool's spec from a session's or a config file's options (a template is
// the config file's to set).
inline PoolSpec pool_spec_of(std::string name, const PoolOptions& options) {
  return PoolSpec{.name = std::move(name),
                  .batch_system = options.batch_system,
                  .partition = options.partition,
                  .time_limit = options.time_limit,
                  .max_workers = options.max_workers,
                  .slots_per_worker = options.slots_per_worker,
                  .idle_timeout = options.idle_timeout,
                  .submit_args = options.submit_args,
                  .worker_args = options.worker_args};
}

struct PoolStatus {
  PoolSpec spec;
  int pilots_pending = 0;  // submitted, not yet running
  int pilots_running = 0;
  int pilots_submitted = 0;  // since the coordinator started
  // Why it submits nothing more: paused after repeated failures; empty: active.
  std::string paused;
  // The last failure of the batch system (a refused submit, a pilot that
  // died at once or never started), empty when none.
  std::string last_failure;
  // Why its pending pilots wait, in the batch system's words.
  std::string pending_reason;
};

}  // namespace pesc

#endif  // PESC_POOL_POOL_TYPES_H_
