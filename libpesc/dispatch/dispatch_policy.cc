#include "dispatch/dispatch_policy.h"

#include <utility>


namespace pesc {

QueuedJob ActiveJob::queued(const std::string& job_id) const {
  QueuedJob entry;
  entry.job_id = job_id;
  entry.user = spec.user;
  entry.created_unix_ms = created_unix_ms;
  entry.pending = pending;
  if (!spec.options.rooms.empty()) entry.rooms = spec.options.rooms;
  entry.same_machine = spec.options.same_machine;
  entry.pinned_worker = pinned_worker;
  entry.gpus_per_rank = spec.options.gpus;
  entry.min_capability = spec.options.min_capability;
  entry.domain = spec.domain;
  return entry;
}

void DispatchRound::failed(std::string_view what, const absl::Status& status) {
  failed_ = true;
  host_.ledger_failed(what, status);
}

void DispatchRound::dispatched(const std::string& job_id, ActiveJob& job, const JobStore::StartedAttempt& started,
                               const std::vector<int>& gpus) {
  job.pending -= started.rank_count;
  if (job.spec.options.same_machine) job.pinned_worker = started.worker_id;
  send(job_id, job, started, gpus);
}

void DispatchRound::send(const std::string& job_id, const ActiveJob& job, const JobStore::StartedAttempt& started,
                         const std::vector<int>& gpus) {
  workers_.sessions()[started.worker_id].hold(started.id, job_id, started.rank_count, gpus);
  host_.assign(started.worker_id,
               AttemptOrder{.job_id = job_id,
                            .attempt_id = started.id,
                            .rank = started.rank,
                            .rank_count = started.rank_count,
                            .checkpoint = started.checkpoint,
                            .gpus = gpus},
               job.spec);
}

}  // namespace pesc
