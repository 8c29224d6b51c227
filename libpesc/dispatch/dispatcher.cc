#include "dispatch/dispatcher.h"

namespace pesc {

bool Dispatcher::dispatch(JobStore& ledger, ActiveJobs& jobs, WorkerRegistry& workers, DispatchHost& host,
                          int64_t now_unix_ms) {
  DispatchRound round(ledger, jobs, workers, host, now_unix_ms);
  for (DispatchPolicy* policy : {static_cast<DispatchPolicy*>(&gangs_), static_cast<DispatchPolicy*>(&fair_share_),
                                 static_cast<DispatchPolicy*>(&stragglers_)}) {
    policy->place(round);
    if (round.has_failed()) return false;
  }
  return true;
}

}  // namespace pesc
