#include "dispatch/dispatch_policy.h"

#include <utility>

namespace pesc {

QueuedJob ActiveJob::queued(const std::string& job_id) const {
  QueuedJob entry;
  entry.job_id = job_id;
  entry.user = spec.user();
  entry.created_unix_ms = created_unix_ms;
  entry.pending = pending;
  if (!spec.rooms().empty()) entry.rooms.assign(spec.rooms().begin(), spec.rooms().end());
  entry.same_machine = spec.same_machine();
  entry.pinned_worker = pinned_worker;
  entry.gpus_per_rank = spec.gpus_per_rank();
  entry.min_capability = spec.min_capability();
  entry.domain = spec.domain();
  return entry;
}

void DispatchRound::failed(std::string_view what, const absl::Status& status) {
  failed_ = true;
  host_.ledger_failed(what, status);
}

void DispatchRound::dispatched(const std::string& job_id, ActiveJob& job, const JobStore::StartedAttempt& started,
                               const std::vector<int>& gpus) {
  job.pending -= started.rank_count;
  if (job.spec.same_machine()) job.pinned_worker = started.worker_id;
  send(job_id, job.spec, started, gpus);
}

void DispatchRound::send(const std::string& job_id, const v1::JobSpec& spec, const JobStore::StartedAttempt& started,
                         const std::vector<int>& gpus) {
  workers_.sessions()[started.worker_id].hold(started.id, started.rank_count, gpus);
  host_.assign(started.worker_id, assignment_for(job_id, spec, started, gpus));
}

v1::Assignment assignment_for(const std::string& job_id, const v1::JobSpec& spec,
                              const JobStore::StartedAttempt& started, const std::vector<int>& gpus) {
  v1::Assignment assignment;
  if (started.rank_count > 1) assignment.set_rank_count(started.rank_count);
  *assignment.mutable_gpus() = {gpus.begin(), gpus.end()};
  assignment.set_attempt_id(started.id);
  if (!started.checkpoint.sha256().empty()) *assignment.mutable_checkpoint() = started.checkpoint;
  assignment.set_timeout_ms(spec.timeout_ms());
  assignment.set_checkpoint_interval_ms(spec.checkpoint_interval_ms());
  assignment.set_warm_runner(spec.warm_runner());
  if (spec.has_seed()) assignment.set_seed(spec.seed());
  *assignment.mutable_shared() = spec.shared();
  *assignment.mutable_limits() = spec.limits();
  // A gang's ranks meet over the network.
  assignment.set_network(spec.network() || spec.parallel());
  assignment.set_gang(spec.parallel());
  assignment.set_job_id(job_id);
  assignment.set_rank(started.rank);
  assignment.set_world_size(spec.repetitions());
  assignment.set_domain(spec.domain());
  assignment.set_process_kind(spec.process_kind());
  *assignment.mutable_process() = spec.process();
  assignment.set_entry(spec.entry());
  *assignment.mutable_parameters() = spec.parameters();
  // The rank contract's defaults; a gang learns its own with StartGang.
  assignment.set_master_addr("127.0.0.1");
  assignment.set_master_port(9000);
  return assignment;
}

}  // namespace pesc
