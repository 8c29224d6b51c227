#include "worker/assignment_conversion.h"

#include <algorithm>
#include <utility>

namespace pesc {

std::shared_ptr<const JobRun> job_run_from(const v1::JobDescription& description) {
  auto job = std::make_shared<JobRun>();
  job->job_id = description.job_id();
  job->world_size = description.world_size();
  job->domain = description.domain();
  job->process = blob_id_of(description.process());
  job->archive = description.process_kind() != v1::PROCESS_KIND_FILE;
  job->entry = description.entry();
  job->parameters.assign(description.parameters().begin(), description.parameters().end());
  job->timeout_ms = description.timeout_ms();
  job->checkpoint_interval_ms = description.checkpoint_interval_ms();
  job->warm_runner = description.warm_runner();
  for (const v1::SharedFile& shared : description.shared()) {
    job->shared.push_back({.name = shared.name(), .blob = blob_id_of(shared.blob()), .url = shared.url()});
  }
  const v1::RankLimits& limits = description.limits();
  job->limits = ResourceLimits{.memory_bytes = limits.memory_bytes(),
                               .cpu_ms = limits.cpu_ms(),
                               .open_files = limits.open_files(),
                               .processes = limits.processes(),
                               .output_bytes = limits.output_bytes()};
  job->network = description.network();
  job->gang = description.gang();
  if (description.has_seed()) job->seed = description.seed();
  return job;
}

RankTask task_from(const v1::Assignment& assignment, std::shared_ptr<const JobRun> job) {
  RankTask task;
  task.job = std::move(job);
  task.attempt_id = assignment.attempt_id();
  task.rank = assignment.rank();
  task.rank_count = std::max(1, assignment.rank_count());
  if (assignment.has_checkpoint() && !assignment.checkpoint().sha256().empty()) {
    task.checkpoint = blob_id_of(assignment.checkpoint());
  }
  task.gpus.assign(assignment.gpus().begin(), assignment.gpus().end());
  if (!assignment.master_addr().empty()) task.master_addr = assignment.master_addr();
  if (assignment.master_port() != 0) task.master_port = assignment.master_port();
  return task;
}

BlobId blob_id_of(const v1::BlobRef& ref) { return BlobId{.sha256 = ref.sha256(), .size = ref.size()}; }

v1::BlobRef blob_ref_of(const BlobId& blob) {
  v1::BlobRef ref;
  ref.set_sha256(blob.sha256);
  ref.set_size(blob.size);
  return ref;
}

}  // namespace pesc
