#include "dispatch/dispatcher.h"

#include <algorithm>
#include <array>

namespace pesc {

// In the order of a round.
std::array<DispatchPolicy*, 3> Dispatcher::policies() { return {&gangs_, &fair_share_, &stragglers_}; }
std::array<const DispatchPolicy*, 3> Dispatcher::policies() const { return {&gangs_, &fair_share_, &stragglers_}; }

bool Dispatcher::dispatch(JobStore& ledger, ActiveJobs& jobs, WorkerRegistry& workers, DispatchHost& host,
                          int64_t now_unix_ms) {
  DispatchRound round(ledger, jobs, workers, host, now_unix_ms);
  for (DispatchPolicy* policy : policies()) {
    policy->place(round);
    if (round.has_failed()) return false;
  }
  return true;
}

std::optional<int64_t> Dispatcher::next_round_unix_ms(const ActiveJobs& jobs, int64_t now_unix_ms) const {
  std::optional<int64_t> next;
  for (const DispatchPolicy* policy : policies()) {
    if (std::optional<int64_t> wanted = policy->next_round_unix_ms(jobs, now_unix_ms)) {
      next = std::min(next.value_or(*wanted), *wanted);
    }
  }
  return next;
}

}  // namespace pesc
