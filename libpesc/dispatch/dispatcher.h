#ifndef PESC_DISPATCH_DISPATCHER_H_
#define PESC_DISPATCH_DISPATCHER_H_

// Starts ranks on workers: one round runs the policies in their order,
// gangs first (they hold the workers they wait on), then queued ranks in
// fair share, then stragglers' duplicates on what is still idle. A round
// ends early at the first failed ledger call (dispatch_policy.h has the
// contract every policy keeps).

#include <array>
#include <cstdint>
#include <optional>

#include "dispatch/dispatch_policy.h"
#include "dispatch/fair_share_policy.h"
#include "dispatch/gang_policy.h"
#include "dispatch/straggler_policy.h"

namespace pesc {

class Dispatcher {
 public:
  // Returns false when a ledger call failed (the host was told).
  bool dispatch(JobStore& ledger, ActiveJobs& jobs, WorkerRegistry& workers, DispatchHost& host, int64_t now_unix_ms);

  // When the policies want a round for time alone (dispatch_policy.h).
  std::optional<int64_t> next_round_unix_ms(const ActiveJobs& jobs, int64_t now_unix_ms) const;

  GangPolicy& gangs() { return gangs_; }
  FairShareScheduler& scheduler() { return fair_share_.scheduler(); }

 private:
  std::array<DispatchPolicy*, 3> policies();
  std::array<const DispatchPolicy*, 3> policies() const;

  GangPolicy gangs_;
  FairSharePolicy fair_share_;
  StragglerPolicy stragglers_;
};

}  // namespace pesc

#endif  // PESC_DISPATCH_DISPATCHER_H_
