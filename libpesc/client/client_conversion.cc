#include "client/client_conversion.h"

#include <algorithm>

#include "transport/public_conversion.h"

namespace pesc {
namespace {

StoredBytes from_proto(const v1::Payload& payload) {
  if (payload.has_blob()) {
    return StoredBytes{.blob_sha256 = payload.blob().sha256(), .blob_size = payload.blob().size()};
  }
  return StoredBytes{.inline_data = payload.inline_data()};
}

template <typename Repeated>
std::vector<std::string> strings_of(const Repeated& repeated) {
  return std::vector<std::string>(repeated.begin(), repeated.end());
}

}  // namespace

Progress from_proto(const v1::JobProgress& progress) {
  return Progress{progress.total(),  progress.pending(),   progress.running(), progress.succeeded(),
                  progress.failed(), progress.cancelled(), progress.waiting(), progress.queued_at_workers()};
}

JobSummary from_proto(const v1::JobInfo& job) {
  JobSummary summary{.id = job.id(),
                     .name = job.spec().name(),
                     .user = job.spec().user(),
                     .warm_runner = job.spec().warm_runner(),
                     .state = from_proto(job.state()),
                     .progress = from_proto(job.progress()),
                     .created = from_unix_ms(job.created_unix_ms()),
                     .finished = from_unix_ms(job.finished_unix_ms()),
                     .failure = job.failure()};
  for (const v1::WorkerPause& pause : job.pauses()) {
    summary.pauses.push_back(WorkerPause{pause.worker_id(), from_unix_ms(pause.start_unix_ms()),
                                         from_unix_ms(pause.end_unix_ms()), pause.reason()});
  }
  return summary;
}

WorkerSummary from_proto(const v1::WorkerInfo& worker) {
  WorkerSummary summary{.id = worker.id(),
                        .host = worker.host(),
                        .slots = worker.slots(),
                        .running = worker.running(),
                        .online = worker.online(),
                        .ranks_done = worker.ranks_done(),
                        .quarantined = worker.quarantined(),
                        .paused = worker.paused(),
                        .throttled = worker.throttled(),
                        .rooms = strings_of(worker.rooms()),
                        .allocation_end = from_unix_ms(worker.end_unix_ms()),
                        .version = worker.version(),
                        .host_cpu_percent = worker.host_cpu_percent(),
                        .domains = strings_of(worker.domains())};
  for (const v1::Gpu& gpu : worker.gpus()) summary.gpus.push_back(from_proto(gpu));
  for (const v1::UnavailableDomain& domain : worker.unavailable_domains()) {
    summary.unavailable_domains.push_back(UnavailableDomain{domain.domain(), domain.why()});
  }
  return summary;
}

StoredRankResult from_proto(const v1::RankResult& result) {
  return StoredRankResult{.result = rank_result_of(result),
                          .output = from_proto(result.output_txt()),
                          .files = StoredBytes{.inline_data = result.files_inline(),
                                               .blob_sha256 = result.files().sha256(),
                                               .blob_size = result.files().size()},
                          .finish_seq = result.finish_seq()};
}

RetriedRanks from_proto(const v1::RetryRanksResponse& retried) {
  return RetriedRanks{.ranks = std::vector<int>(retried.ranks().begin(), retried.ranks().end()),
                      .job = from_proto(retried.job())};
}

RankOutputPiece from_proto(const v1::RankOutput& output) {
  RankOutputPiece piece{.state = from_proto(output.state()), .data = output.data(), .attempt = output.attempt_id()};
  if (output.has_result()) piece.result = from_proto(output.result());
  return piece;
}

v1::Payload to_payload(const StoredBytes& bytes) {
  v1::Payload payload;
  if (bytes.blob_sha256.empty()) {
    payload.set_inline_data(bytes.inline_data);
  } else {
    payload.mutable_blob()->set_sha256(bytes.blob_sha256);
    payload.mutable_blob()->set_size(bytes.blob_size);
  }
  return payload;
}

std::string to_opaque(const StoredBytes& bytes) { return to_payload(bytes).SerializeAsString(); }

StoredBytes stored_bytes_from_opaque(const std::string& opaque) {
  v1::Payload payload;
  payload.ParseFromString(opaque);
  return from_proto(payload);
}

}  // namespace pesc
