#include "dispatch/dispatch_policy.h"

#include <utility>

#include "ledger/ledger_conversion.h"

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
  if (started.checkpoint) *assignment.mutable_checkpoint() = to_proto(*started.checkpoint);
  return assignment;
}

v1::JobDescription description_for(const std::string& job_id, const JobSpec& spec) {
  v1::JobDescription job;
  job.set_job_id(job_id);
  job.set_world_size(spec.repetitions);
  job.set_domain(spec.domain);
  job.set_process_kind(process_kind_of(spec));
  *job.mutable_process() = to_proto(spec.process);
  job.set_entry(spec.options.entry);
  *job.mutable_parameters() = {spec.parameters.begin(), spec.parameters.end()};
  job.set_timeout_ms(spec.options.timeout.count());
  job.set_checkpoint_interval_ms(spec.options.checkpoint_interval.count());
  job.set_warm_runner(spec.options.warm_runner);
  for (const SharedInput& shared : spec.shared) *job.add_shared() = to_proto(shared);
  *job.mutable_limits() = to_proto(spec.options.limits);
  // A gang's ranks meet over the network.
  job.set_network(spec.options.network || spec.options.parallel);
  job.set_gang(spec.options.parallel);
  if (spec.options.seed) job.set_seed(*spec.options.seed);
  return job;
}

}  // namespace pesc
