#include "dispatch/dispatch_policy.h"

#include <utility>

namespace pesc {

void ActiveJob::learn_pace(int64_t start_unix_ms, int64_t end_unix_ms) {
  if (start_unix_ms <= 0 || end_unix_ms < start_unix_ms) return;  // it never started
  const double took = static_cast<double>(end_unix_ms - start_unix_ms);
  typical_rank_ms = typical_rank_ms < 0 ? took : 0.8 * typical_rank_ms + 0.2 * took;
}

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
  send(job_id, job, started, gpus);
}

void DispatchRound::send(const std::string& job_id, const ActiveJob& job, const JobStore::StartedAttempt& started,
                         const std::vector<int>& gpus) {
  workers_.sessions()[started.worker_id].hold(started.id, started.rank_count, gpus);
  host_.assign(started.worker_id, assignment_for(job_id, started, gpus), job.description(job_id));
}

std::shared_ptr<const v1::JobDescription> ActiveJob::description(const std::string& job_id) const {
  if (!made_description) made_description = std::make_shared<const v1::JobDescription>(description_for(job_id, spec));
  return made_description;
}

v1::Assignment assignment_for(const std::string& job_id, const JobStore::StartedAttempt& started,
                              const std::vector<int>& gpus) {
  v1::Assignment assignment;
  assignment.set_attempt_id(started.id);
  assignment.set_job_id(job_id);
  assignment.set_rank(started.rank);
  if (started.rank_count > 1) assignment.set_rank_count(started.rank_count);
  *assignment.mutable_gpus() = {gpus.begin(), gpus.end()};
  if (!started.checkpoint.sha256().empty()) *assignment.mutable_checkpoint() = started.checkpoint;
  return assignment;
}

v1::JobDescription description_for(const std::string& job_id, const v1::JobSpec& spec) {
  v1::JobDescription job;
  job.set_job_id(job_id);
  job.set_world_size(spec.repetitions());
  job.set_domain(spec.domain());
  job.set_process_kind(spec.process_kind());
  *job.mutable_process() = spec.process();
  job.set_entry(spec.entry());
  *job.mutable_parameters() = spec.parameters();
  job.set_timeout_ms(spec.timeout_ms());
  job.set_checkpoint_interval_ms(spec.checkpoint_interval_ms());
  job.set_warm_runner(spec.warm_runner());
  *job.mutable_shared() = spec.shared();
  *job.mutable_limits() = spec.limits();
  // A gang's ranks meet over the network.
  job.set_network(spec.network() || spec.parallel());
  job.set_gang(spec.parallel());
  if (spec.has_seed()) job.set_seed(spec.seed());
  return job;
}

}  // namespace pesc
