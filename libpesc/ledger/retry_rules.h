#ifndef PESC_LEDGER_RETRY_RULES_H_
#define PESC_LEDGER_RETRY_RULES_H_

// When a failed rank goes back to the queue: the rule every JobStore
// backend applies when it takes a result.

#include <algorithm>

#include "pesc/pesc.h"

namespace pesc {

// A rank that could not even start (a missing interpreter, a failed fetch)
// is retried this often before it is reported, whatever max_attempts says.
inline constexpr int kMaxWorkerFailuresPerRank = 3;
// A rank whose attempts fail for their workers' own faults (a full disk) is
// placed again this often, outside the job's max_attempts: enough for a farm
// with a few full disks, and still a wait that ends for a rank that fills
// every disk it lands on.
inline constexpr int kMaxWorkerFaultsPerRank = 10;

// Attempts a rank that exits non-zero gets in all, for the job's
// max_attempts (0 and 1: no retry).
inline int attempts_allowed(int max_attempts) { return std::max(1, max_attempts); }

inline bool is_workers_fault(const RankResult& result) {
  return result.status != RankStatus::kSucceeded && result.failure_class == FailureClass::kWorker;
}

// A rank that failed for what its job holds fails that way on any worker
// and in any attempt: it is not tried again.
inline bool is_job_fault(const RankResult& result) { return result.failure_class == FailureClass::kJob; }

// A failed rank that never ran counts against the workers, one that ran
// against its own budget (the job's max_attempts).
inline bool never_ran(const RankResult& result) {
  return result.status == RankStatus::kFailed && (!result.error.empty() || is_workers_fault(result));
}

// Whether a rank whose attempt ended with `result` (FAILED or SUCCEEDED)
// goes back to the queue, given the failures it had before.
inline bool goes_again(const RankResult& result, int own_failures, int worker_failures, int max_attempts) {
  if (result.status != RankStatus::kFailed || is_job_fault(result)) return false;
  if (!never_ran(result)) return own_failures + 1 < max_attempts;
  const int worker_budget = is_workers_fault(result) ? kMaxWorkerFaultsPerRank : kMaxWorkerFailuresPerRank;
  return worker_failures + 1 < worker_budget;
}

}  // namespace pesc

#endif  // PESC_LEDGER_RETRY_RULES_H_
