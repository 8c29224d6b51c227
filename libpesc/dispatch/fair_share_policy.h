#ifndef PESC_DISPATCH_FAIR_SHARE_POLICY_H_
#define PESC_DISPATCH_FAIR_SHARE_POLICY_H_

// Places the pending ranks of every job but gangs on the workers not held,
// in fair share between users (scheduler/fair_share.h: rooms, pins, GPUs
// and domains decide where a job may go). Short ranks go in chunks of
// consecutive ranks, one attempt each, so that they share a
// message and a transaction. Owns the users' accounts of run time.

#include <map>
#include <string>
#include <vector>

#include "dispatch/dispatch_policy.h"
#include "scheduler/fair_share.h"

namespace pesc {

class FairSharePolicy final : public DispatchPolicy {
 public:
  void place(DispatchRound& round) override;

  // The users' accounts: set from the ledger, charged as ranks finish.
  FairShareScheduler& scheduler() { return scheduler_; }

  // Ranks of the job one attempt may run: more than one once the job's
  // ranks have shown themselves short, and few enough that its tail still
  // spreads over every online slot.
  static int chunk_size(const ActiveJob& job, int online_slots);

 private:
  // Starts one job's share of the round: chunks are started and sent here,
  // one-rank attempts started and left in `started_at` (by placement index)
  // for the caller to send in the scheduler's order.
  void start_placed(DispatchRound& round, const std::string& job_id, const std::vector<Placement>& placements,
                    const std::vector<size_t>& indices, std::map<size_t, JobStore::StartedAttempt>& started_at);
  // Starts a job's placed ranks on a worker in chunks of consecutive ranks.
  void assign_chunks(DispatchRound& round, const std::string& job_id, ActiveJob& job, const std::string& worker_id,
                     std::vector<int> ranks, int chunk);

  FairShareScheduler scheduler_;
};

}  // namespace pesc

#endif  // PESC_DISPATCH_FAIR_SHARE_POLICY_H_
