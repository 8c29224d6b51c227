#ifndef PESC_DISPATCH_ACTIVE_JOB_H_
#define PESC_DISPATCH_ACTIVE_JOB_H_

// A running job as the dispatcher sees it: its spec and the ranks it still
// has to place. The ledger holds the truth; this is memory's copy of it,
// rebuilt from the ledger whenever a ledger call failed.

#include <cstdint>
#include <map>
#include <string>

#include "ledger/job_types.h"
#include "scheduler/fair_share.h"

namespace pesc {

// What a job's first results say of the job itself (fail_fast).
struct FaultWatch {
  int job_faults = 0;  // ranks failed for the job's own fault
  bool any_succeeded = false;
};

struct ActiveJob {
  JobSpec spec;
  int64_t created_unix_ms = 0;
  int pending = 0;
  std::string pinned_worker;  // same-machine jobs, once placed; recovered from the ledger
  FaultWatch fault_watch;
  // How long its ranks take, from those that ended: -1 until one has.
  double typical_rank_ms = -1;

  // Learns from a rank of it that ended.
  void learn_pace(const RankResult& result) { learn_rank_time(typical_rank_ms, result); }

  // The job as the placement rules see it.
  QueuedJob queued(const std::string& job_id) const;
};

// By job id.
using ActiveJobs = std::map<std::string, ActiveJob>;

}  // namespace pesc

#endif  // PESC_DISPATCH_ACTIVE_JOB_H_
