#ifndef PESC_TRANSPORT_PUBLIC_CONVERSION_H_
#define PESC_TRANSPORT_PUBLIC_CONVERSION_H_

// The protocol's states, failure classes, rank results and GPUs as the
// public API's plain types (and the enums back), written once for the client
// (client_conversion.cc) and the coordinator's ledger and registry
// (ledger/ledger_conversion.h, registry/registry_conversion.h). Header only,
// so that the ledger needs no more than the protocol's messages.

#include <chrono>
#include <cstdint>

#include "common/clock.h"
#include "common/job_state.h"
#include "common/rank_time.h"
#include "common/worker_gpu.h"
#include "pesc/pesc.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

inline RankStatus from_proto(v1::RankState state) {
  switch (state) {
    case v1::RANK_STATE_RUNNING: return RankStatus::kRunning;
    case v1::RANK_STATE_SUCCEEDED: return RankStatus::kSucceeded;
    case v1::RANK_STATE_FAILED: return RankStatus::kFailed;
    case v1::RANK_STATE_CANCELLED: return RankStatus::kCancelled;
    default: return RankStatus::kPending;
  }
}

inline v1::RankState to_proto(RankStatus status) {
  switch (status) {
    case RankStatus::kPending: return v1::RANK_STATE_PENDING;
    case RankStatus::kRunning: return v1::RANK_STATE_RUNNING;
    case RankStatus::kSucceeded: return v1::RANK_STATE_SUCCEEDED;
    case RankStatus::kFailed: return v1::RANK_STATE_FAILED;
    case RankStatus::kCancelled: return v1::RANK_STATE_CANCELLED;
  }
  return v1::RANK_STATE_UNSPECIFIED;
}

inline FailureClass from_proto(v1::FailureClass failure_class) {
  switch (failure_class) {
    case v1::FAILURE_CLASS_JOB: return FailureClass::kJob;
    case v1::FAILURE_CLASS_RANK: return FailureClass::kRank;
    case v1::FAILURE_CLASS_WORKER: return FailureClass::kWorker;
    case v1::FAILURE_CLASS_OWNER: return FailureClass::kOwner;
    default: return FailureClass::kNone;
  }
}

inline v1::FailureClass to_proto(FailureClass failure_class) {
  switch (failure_class) {
    case FailureClass::kNone: return v1::FAILURE_CLASS_UNSPECIFIED;
    case FailureClass::kJob: return v1::FAILURE_CLASS_JOB;
    case FailureClass::kRank: return v1::FAILURE_CLASS_RANK;
    case FailureClass::kWorker: return v1::FAILURE_CLASS_WORKER;
    case FailureClass::kOwner: return v1::FAILURE_CLASS_OWNER;
  }
  return v1::FAILURE_CLASS_UNSPECIFIED;
}

inline JobState from_proto(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_RUNNING: return JobState::kRunning;
    case v1::JOB_STATE_FINISHED: return JobState::kFinished;
    case v1::JOB_STATE_CANCELLED: return JobState::kCancelled;
    case v1::JOB_STATE_FAILED: return JobState::kFailed;
    default: return JobState::kUnknown;
  }
}

inline v1::JobState to_proto(JobState state) {
  switch (state) {
    case JobState::kUnknown: return v1::JOB_STATE_UNSPECIFIED;
    case JobState::kRunning: return v1::JOB_STATE_RUNNING;
    case JobState::kFinished: return v1::JOB_STATE_FINISHED;
    case JobState::kCancelled: return v1::JOB_STATE_CANCELLED;
    case JobState::kFailed: return v1::JOB_STATE_FAILED;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

inline v1::RankLimits to_proto(const RankLimits& limits) {
  v1::RankLimits proto;
  proto.set_memory_bytes(limits.memory_bytes);
  proto.set_cpu_ms(limits.cpu_time.count());
  proto.set_open_files(limits.open_files);
  proto.set_processes(limits.processes);
  proto.set_output_bytes(limits.output_bytes);
  return proto;
}

inline WorkerGpu from_proto(const v1::Gpu& gpu) {
  return WorkerGpu{.index = gpu.index(),
                   .name = gpu.name(),
                   .memory_bytes = gpu.memory_bytes(),
                   .compute_capability = gpu.compute_capability()};
}

inline v1::Gpu to_proto(const WorkerGpu& gpu) {
  v1::Gpu proto;
  proto.set_index(gpu.index);
  proto.set_name(gpu.name);
  proto.set_memory_bytes(gpu.memory_bytes);
  proto.set_compute_capability(gpu.compute_capability);
  return proto;
}

// A result as the public RankResult, its output left empty: where the
// output and the files are kept is each reader's own.
inline RankResult rank_result_of(const v1::RankResult& result) {
  RankResult rank;
  rank.rank = result.rank();
  rank.status = from_proto(result.state());
  rank.exit_code = result.exit_code();
  rank.signal = result.signal();
  rank.worker = result.worker();
  rank.start = from_unix_ms(result.start_unix_ms());
  rank.end = from_unix_ms(result.end_unix_ms());
  rank.duration = std::chrono::milliseconds(run_time_ms(rank));
  rank.cpu_time = std::chrono::milliseconds(result.cpu_ms());
  rank.max_rss_kb = result.max_rss_kb();
  rank.attempt = result.attempt_id();
  rank.attempts = result.attempts();
  rank.other_attempt_workers = {result.other_attempt_workers().begin(), result.other_attempt_workers().end()};
  rank.timed_out = result.timed_out();
  rank.limit_exceeded = result.limit_exceeded();
  rank.has_files = !result.files_inline().empty() || !result.files().sha256().empty();
  rank.error = result.error();
  rank.failure_class = from_proto(result.failure_class());
  rank.left_out = {result.left_out().begin(), result.left_out().end()};
  return rank;
}

}  // namespace pesc

#endif  // PESC_TRANSPORT_PUBLIC_CONVERSION_H_
