#include "ledger/ledger_conversion.h"

#include <chrono>
#include <utility>

#include "common/clock.h"
#include "transport/job_options.h"

namespace pesc {
namespace {

template <typename Repeated>
std::vector<std::string> strings_of(const Repeated& repeated) {
  return std::vector<std::string>(repeated.begin(), repeated.end());
}

RankLimits from_proto(const v1::RankLimits& limits) {
  return RankLimits{.memory_bytes = limits.memory_bytes(),
                    .cpu_time = std::chrono::milliseconds(limits.cpu_ms()),
                    .open_files = limits.open_files(),
                    .processes = limits.processes(),
                    .output_bytes = limits.output_bytes()};
}

MapOptions options_of(const v1::JobSpec& spec) {
  MapOptions options;
  options.entry = spec.entry();
  options.name = spec.name();
  options.max_attempts = spec.max_attempts();
  options.timeout = std::chrono::milliseconds(spec.timeout_ms());
  options.checkpoint_interval = std::chrono::milliseconds(spec.checkpoint_interval_ms());
  options.warm_runner = spec.warm_runner();
  options.rooms = strings_of(spec.rooms());
  options.same_machine = spec.same_machine();
  options.limits = from_proto(spec.limits());
  options.network = spec.network();
  options.parallel = spec.parallel();
  options.no_duplicates = spec.no_duplicates();
  options.gpus = spec.gpus_per_rank();
  options.min_capability = spec.min_capability();
  if (spec.has_seed()) options.seed = spec.seed();
  options.notify = strings_of(spec.notify());
  return options;
}

}  // namespace

v1::ProcessKind process_kind_of(const JobSpec& spec) {
  return spec.archive ? v1::PROCESS_KIND_ARCHIVE : v1::PROCESS_KIND_FILE;
}

JobSpec from_proto(const v1::JobSpec& spec) {
  JobSpec job{.domain = spec.domain(),
              .process = from_proto(spec.process()),
              .archive = spec.process_kind() != v1::PROCESS_KIND_FILE,
              .repetitions = spec.repetitions(),
              .parameters = strings_of(spec.parameters()),
              .user = spec.user(),
              .options = options_of(spec)};
  for (const v1::SharedFile& shared : spec.shared()) job.shared.push_back(from_proto(shared));
  return job;
}

v1::JobSpec to_proto(const JobSpec& job) {
  v1::JobSpec spec;
  spec.set_domain(job.domain);
  spec.set_process_kind(process_kind_of(job));
  *spec.mutable_process() = to_proto(job.process);
  spec.set_repetitions(job.repetitions);
  *spec.mutable_parameters() = {job.parameters.begin(), job.parameters.end()};
  spec.set_user(job.user);
  for (const SharedInput& shared : job.shared) *spec.add_shared() = to_proto(shared);
  spec.set_entry(job.options.entry);
  spec.set_name(job.options.name);
  set_job_options(job.options, spec);
  return spec;
}

RankRecord rank_record_of(const v1::RankResult& proto) {
  RankRecord rank{.result = rank_result_of(proto)};
  if (proto.has_output_txt()) rank.output = from_proto(proto.output_txt());
  if (proto.has_files() && !proto.files().sha256().empty()) {
    rank.files.blob = from_proto(proto.files());
  } else {
    rank.files.inline_bytes = proto.files_inline();
  }
  if (proto.has_checkpoint() && !proto.checkpoint().sha256().empty()) rank.checkpoint = from_proto(proto.checkpoint());
  rank.finish_seq = proto.finish_seq();
  return rank;
}

v1::RankResult to_proto(const RankRecord& rank) {
  const RankResult& result = rank.result;
  v1::RankResult proto;
  proto.set_rank(result.rank);
  proto.set_state(to_proto(result.status));
  proto.set_attempt_id(result.attempt);
  proto.set_worker(result.worker);
  proto.set_exit_code(result.exit_code);
  proto.set_signal(result.signal);
  proto.set_start_unix_ms(unix_ms_of(result.start));
  proto.set_end_unix_ms(unix_ms_of(result.end));
  proto.set_cpu_ms(result.cpu_time.count());
  proto.set_max_rss_kb(result.max_rss_kb);
  proto.set_error(result.error);
  proto.set_attempts(result.attempts);
  proto.set_timed_out(result.timed_out);
  proto.set_limit_exceeded(result.limit_exceeded);
  proto.set_failure_class(to_proto(result.failure_class));
  *proto.mutable_left_out() = {result.left_out.begin(), result.left_out.end()};
  *proto.mutable_other_attempt_workers() = {result.other_attempt_workers.begin(), result.other_attempt_workers.end()};
  if (rank.output.blob || !rank.output.inline_bytes.empty()) *proto.mutable_output_txt() = to_proto(rank.output);
  if (rank.files.blob) {
    *proto.mutable_files() = to_proto(*rank.files.blob);
  } else {
    proto.set_files_inline(rank.files.inline_bytes);
  }
  if (rank.checkpoint) *proto.mutable_checkpoint() = to_proto(*rank.checkpoint);
  proto.set_finish_seq(rank.finish_seq);
  return proto;
}

std::vector<RankRecord> rank_records_of(const google::protobuf::RepeatedPtrField<v1::RankResult>& results) {
  std::vector<RankRecord> ranks;
  ranks.reserve(static_cast<size_t>(results.size()));
  for (const v1::RankResult& result : results) ranks.push_back(rank_record_of(result));
  return ranks;
}

std::vector<v1::RankResult> to_proto(const std::vector<RankRecord>& ranks) {
  std::vector<v1::RankResult> results;
  results.reserve(ranks.size());
  for (const RankRecord& rank : ranks) results.push_back(to_proto(rank));
  return results;
}

std::vector<AttemptEnded> attempts_ended_of(const v1::AttemptsFinished& batch) {
  std::vector<AttemptEnded> ended;
  ended.reserve(static_cast<size_t>(batch.finished_size()));
  for (const v1::RankFinished& finished : batch.finished()) {
    ended.push_back({.attempt_id = finished.attempt_id(),
                     .result = rank_record_of(finished.result()),
                     .chunk = rank_records_of(finished.chunk())});
  }
  return ended;
}

v1::RankOutput to_proto(const RankOutputNow& output) {
  v1::RankOutput proto;
  proto.set_state(to_proto(output.state));
  proto.set_data(output.data);
  proto.set_attempt_id(output.attempt_id);
  if (output.result) *proto.mutable_result() = to_proto(*output.result);
  return proto;
}

OutputAnswer from_proto(const v1::OutputRead& answer) {
  return OutputAnswer{.request_id = answer.request_id(), .data = answer.data(), .gone = answer.gone()};
}

v1::JobProgress to_proto(const Progress& progress) {
  v1::JobProgress proto;
  proto.set_total(progress.total);
  proto.set_pending(progress.pending);
  proto.set_running(progress.running);
  proto.set_succeeded(progress.succeeded);
  proto.set_failed(progress.failed);
  proto.set_cancelled(progress.cancelled);
  proto.set_waiting(progress.waiting);
  proto.set_queued_at_workers(progress.queued_at_workers);
  return proto;
}

v1::JobInfo to_proto(const JobRecord& job) {
  v1::JobInfo info;
  info.set_id(job.id);
  *info.mutable_spec() = to_proto(job.spec);
  info.set_state(to_proto(job.state));
  *info.mutable_progress() = to_proto(job.progress);
  info.set_created_unix_ms(job.created_unix_ms);
  info.set_finished_unix_ms(job.finished_unix_ms);
  info.set_failure(job.failure);
  return info;
}

std::vector<v1::JobInfo> to_proto(const std::vector<JobRecord>& jobs) {
  std::vector<v1::JobInfo> infos;
  infos.reserve(jobs.size());
  for (const JobRecord& job : jobs) infos.push_back(to_proto(job));
  return infos;
}

v1::JobInfo to_proto(const JobView& job) {
  v1::JobInfo info = to_proto(job.record);
  for (const WorkerPause& pause : job.pauses) *info.add_pauses() = to_proto(pause);
  return info;
}

v1::WorkerPause to_proto(const WorkerPause& pause) {
  v1::WorkerPause proto;
  proto.set_worker_id(pause.worker);
  proto.set_start_unix_ms(unix_ms_of(pause.start));
  proto.set_end_unix_ms(unix_ms_of(pause.end));
  proto.set_reason(pause.reason);
  return proto;
}

v1::WorkerInfo to_proto(const WorkerRecord& worker) {
  v1::WorkerInfo info;
  info.set_id(worker.id);
  info.set_host(worker.host);
  info.set_slots(worker.slots);
  info.set_last_seen_unix_ms(worker.last_seen_unix_ms);
  info.set_ranks_done(worker.ranks_done);
  return info;
}

}  // namespace pesc
