#include "worker/assignment_conversion.h"

#include <algorithm>
#include <utility>

namespace pesc {

std::shared_ptr<const JobRun> job_run_from(const v1::JobDescription& description) {
  auto job = std::make_shared<JobRun>();
  job->job_id = description.job_id();
  job->world_size = description.world_size();
  job->domain = description.domain();
  job->process = from_proto(description.process());
  job->archive = description.process_kind() != v1::PROCESS_KIND_FILE;
  job->entry = description.entry();
  job->parameters.assign(description.parameters().begin(), description.parameters().end());
  job->timeout_ms = description.timeout_ms();
  job->checkpoint_interval_ms = description.checkpoint_interval_ms();
  job->warm_runner = description.warm_runner();
  for (const v1::SharedFile& shared : description.shared()) job->shared.push_back(from_proto(shared));
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
    task.checkpoint = from_proto(assignment.checkpoint());
  }
  task.gpus.assign(assignment.gpus().begin(), assignment.gpus().end());
  if (!assignment.master_addr().empty()) task.master_addr = assignment.master_addr();
  if (assignment.master_port() != 0) task.master_port = assignment.master_port();
  return task;
}

namespace {

v1::FailureClass failure_class_of(Fault fault) {
  switch (fault) {
    case Fault::kNone:
      return v1::FAILURE_CLASS_UNSPECIFIED;
    case Fault::kJob:
      return v1::FAILURE_CLASS_JOB;
    case Fault::kRank:
      return v1::FAILURE_CLASS_RANK;
    case Fault::kWorker:
      return v1::FAILURE_CLASS_WORKER;
  }
  return v1::FAILURE_CLASS_UNSPECIFIED;
}

}  // namespace

v1::RankResult result_of(const RankOutcome& outcome) {
  v1::RankResult result;
  result.set_rank(outcome.rank);
  result.set_attempt_id(outcome.attempt_id);
  result.set_state(outcome.succeeded ? v1::RANK_STATE_SUCCEEDED : v1::RANK_STATE_FAILED);
  result.set_failure_class(failure_class_of(outcome.fault));
  result.set_exit_code(outcome.exit_code);
  result.set_signal(outcome.signal);
  result.set_start_unix_ms(outcome.start_unix_ms);
  result.set_end_unix_ms(outcome.end_unix_ms);
  result.set_cpu_ms(outcome.cpu_ms);
  result.set_max_rss_kb(outcome.max_rss_kb);
  result.set_timed_out(outcome.timed_out);
  result.set_limit_exceeded(outcome.limit_exceeded);
  result.set_error(outcome.error);
  if (outcome.output_txt) *result.mutable_output_txt() = to_proto(*outcome.output_txt);
  result.set_files_inline(outcome.files_inline);
  if (outcome.files) *result.mutable_files() = to_proto(*outcome.files);
  *result.mutable_left_out() = {outcome.left_out.begin(), outcome.left_out.end()};
  if (outcome.checkpoint) *result.mutable_checkpoint() = to_proto(*outcome.checkpoint);
  return result;
}

}  // namespace pesc
