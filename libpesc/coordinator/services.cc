#include "coordinator/services.h"

#include <fstream>
#include <string_view>
#include <thread>

#include "absl/strings/str_cat.h"
#include "security/input_limits.h"
#include "transport/transport.h"

namespace pesc {
namespace {

constexpr absl::Duration kWatchPoll = absl::Seconds(1);
constexpr absl::Duration kBatchSpacing = absl::Milliseconds(5);

bool same_progress(const v1::JobProgress& a, const v1::JobProgress& b) {
  return a.pending() == b.pending() && a.running() == b.running() && a.succeeded() == b.succeeded() &&
         a.failed() == b.failed() && a.cancelled() == b.cancelled() && a.waiting() == b.waiting() &&
         a.queued_at_workers() == b.queued_at_workers();
}

v1::JobEvent progress_event(const v1::JobProgress& progress) {
  v1::JobEvent event;
  *event.mutable_progress() = progress;
  return event;
}

// The IP in a gRPC peer ("ipv4:10.0.0.7:51234", "ipv6:[::1]:51234"); empty
// for other transports (the embedded farm's in-process channel).
std::string peer_ip(const std::string& peer) {
  for (const std::string_view prefix : {"ipv4:", "ipv6:"}) {
    if (!peer.starts_with(prefix)) continue;
    std::string_view address = std::string_view(peer).substr(prefix.size());
    address = address.substr(0, address.rfind(':'));
    if (address.starts_with('[') && address.ends_with(']')) address = address.substr(1, address.size() - 2);
    return std::string(address);
  }
  return "";
}

// A client's default cap on a message it receives is 4 MiB.
constexpr size_t kEventBytes = 1 << 20;

// Sends results in as few events as stay under kEventBytes each.
bool write_results(std::vector<v1::RankResult>& results, grpc::ServerWriter<v1::JobEvent>& writer) {
  v1::JobEvent event;
  size_t bytes = 0;
  for (v1::RankResult& result : results) {
    const size_t size = result.ByteSizeLong();
    if (bytes > 0 && bytes + size > kEventBytes) {
      if (!writer.Write(event)) return false;
      event.Clear();
      bytes = 0;
    }
    bytes += size;
    *event.mutable_ranks_finished()->add_results() = std::move(result);
  }
  return bytes == 0 || writer.Write(event);
}

}  // namespace

grpc::Status JobsService::SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                                    v1::SubmitJobResponse* response) {
  auto caller = access_.authenticate(*context, Needs::kUser);
  if (!caller.ok()) return to_grpc(caller.status());
  v1::JobSpec spec = request->spec();
  if (auto checked = check_job_spec(spec); !checked.ok()) return to_grpc(checked);
  if (auto allowed = access_.check_submit(*caller, spec); !allowed.ok()) return to_grpc(allowed);
  auto job_id = state_.submit(std::move(spec));
  if (!job_id.ok()) return to_grpc(job_id.status());
  response->set_job_id(*job_id);
  return grpc::Status::OK;
}

grpc::Status JobsService::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request, v1::JobInfo* response) {
  if (auto caller = access_.authorize_job(*context, request->job_id()); !caller.ok()) return to_grpc(caller.status());
  auto job = state_.job(request->job_id());
  if (!job.ok()) return to_grpc(job.status());
  *response = *std::move(job);
  return grpc::Status::OK;
}

grpc::Status JobsService::ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest*,
                                   v1::ListJobsResponse* response) {
  auto caller = access_.authenticate(*context, Needs::kUser);
  if (!caller.ok()) return to_grpc(caller.status());
  auto jobs = state_.jobs();
  if (!jobs.ok()) return to_grpc(jobs.status());
  for (auto& job : *jobs) {
    if (caller->owns(job.spec().user())) *response->add_jobs() = std::move(job);
  }
  return grpc::Status::OK;
}

grpc::Status JobsService::CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                                    v1::CancelJobResponse* response) {
  if (auto caller = access_.authorize_job(*context, request->job_id()); !caller.ok()) return to_grpc(caller.status());
  auto job = state_.cancel(request->job_id());
  if (!job.ok()) return to_grpc(job.status());
  *response->mutable_job() = *std::move(job);
  return grpc::Status::OK;
}

grpc::Status JobsService::WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                                   grpc::ServerWriter<v1::JobEvent>* writer) {
  auto caller = access_.authorize_job(*context, request->job_id());
  if (!caller.ok()) return to_grpc(caller.status());
  auto session = access_.hold(*caller, context);
  int64_t after_seq = request->after_seq();
  v1::JobProgress last_progress;
  last_progress.set_total(-1);
  absl::Time last_batch = absl::InfinitePast();
  while (!context->IsCancelled()) {
    // Right after a batch, let results gather for a moment: a busy job then
    // costs one wake-up per batch instead of one per rank.
    absl::SleepFor(std::max(absl::ZeroDuration(), last_batch + kBatchSpacing - absl::Now()));
    auto results = state_.results_after(request->job_id(), after_seq, kWatchPoll);
    if (!results.ok()) return to_grpc(results.status());
    if (!results->empty()) last_batch = absl::Now();
    if (!results->empty()) after_seq = results->back().finish_seq();
    if (!write_results(*results, *writer)) return grpc::Status::CANCELLED;
    auto job = state_.job(request->job_id());
    if (!job.ok()) return to_grpc(job.status());
    if (last_progress.total() < 0 || !same_progress(last_progress, job->progress())) {
      last_progress = job->progress();
      if (!writer->Write(progress_event(last_progress))) return grpc::Status::CANCELLED;
    }
    if (job->state() != v1::JOB_STATE_RUNNING && results->empty()) {
      v1::JobEvent done;
      *done.mutable_job_done() = *std::move(job);
      writer->Write(done);
      return grpc::Status::OK;
    }
    if (state_.shutting_down()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the coordinator is shutting down");
  }
  return grpc::Status::CANCELLED;
}

grpc::Status JobsService::DeleteJob(grpc::ServerContext* context, const v1::DeleteJobRequest* request,
                                    v1::DeleteJobResponse* response) {
  if (auto caller = access_.authorize_job(*context, request->job_id()); !caller.ok()) return to_grpc(caller.status());
  auto freed = state_.delete_job(request->job_id());
  if (!freed.ok()) return to_grpc(freed.status());
  response->set_bytes_freed(*freed);
  return grpc::Status::OK;
}

grpc::Status JobsService::ListWorkers(grpc::ServerContext* context, const v1::ListWorkersRequest*,
                                      v1::ListWorkersResponse* response) {
  if (auto caller = access_.authenticate(*context, Needs::kUser); !caller.ok()) return to_grpc(caller.status());
  auto workers = state_.workers();
  if (!workers.ok()) return to_grpc(workers.status());
  for (auto& worker : *workers) *response->add_workers() = std::move(worker);
  return grpc::Status::OK;
}

grpc::Status BlobsService::StatBlob(grpc::ServerContext* context, const v1::StatBlobRequest* request,
                                    v1::StatBlobResponse* response) {
  auto caller = access_.authenticate(*context, Needs::kAnyone);
  if (!caller.ok()) return to_grpc(caller.status());
  if (auto checked = check_blob_id(request->sha256()); !checked.ok()) return to_grpc(checked);
  // A user learns only of blobs it may read, so a blob someone else
  // uploaded is uploaded again: having its bytes is the proof of access.
  response->set_present(state_.blobs().contains(request->sha256()) &&
                        access_.may_read_blob(*caller, request->sha256()));
  return grpc::Status::OK;
}

grpc::Status BlobsService::UploadBlob(grpc::ServerContext* context, grpc::ServerReader<v1::BlobChunk>* reader,
                                      v1::BlobRef* response) {
  auto caller = access_.authenticate(*context, Needs::kAnyone);
  if (!caller.ok()) return to_grpc(caller.status());
  v1::BlobChunk chunk;
  if (!reader->Read(&chunk)) return {grpc::StatusCode::INVALID_ARGUMENT, "an upload needs at least one chunk"};
  const v1::BlobRef expected = chunk.ref();
  if (!is_sha256_hex(expected.sha256())) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first chunk must name the blob's sha256 in lowercase hex"};
  }
  if (auto allowed = access_.check_upload(*caller, expected.size()); !allowed.ok()) return to_grpc(allowed);
  // Workers may hold the admin's token; only a user's upload is refused.
  const bool from_worker = caller->role != Role::kUser;
  auto writer = state_.blobs().begin_write();
  if (!writer.ok()) return to_grpc(state_.blob_not_stored(writer.status(), from_worker));
  uint64_t received = 0;
  do {
    received += chunk.data().size();
    if (received > expected.size()) {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              absl::StrCat("blob ", expected.sha256(), " is larger than the ", expected.size(), " bytes announced")};
    }
    if (auto status = (*writer)->append(chunk.data()); !status.ok()) return to_grpc(state_.blob_not_stored(status, from_worker));
  } while (reader->Read(&chunk));
  auto stored = (*writer)->commit(expected.sha256());
  if (!stored.ok()) return to_grpc(state_.blob_not_stored(stored.status(), from_worker));
  access_.note_upload(*caller, *stored, received);
  response->set_sha256(*stored);
  response->set_size(received);
  return grpc::Status::OK;
}

grpc::Status BlobsService::DownloadBlob(grpc::ServerContext* context, const v1::DownloadBlobRequest* request,
                                        grpc::ServerWriter<v1::BlobChunk>* writer) {
  auto caller = access_.authenticate(*context, Needs::kAnyone);
  if (!caller.ok()) return to_grpc(caller.status());
  if (auto checked = check_blob_id(request->sha256()); !checked.ok()) return to_grpc(checked);
  if (!access_.may_read_blob(*caller, request->sha256())) {
    return {grpc::StatusCode::PERMISSION_DENIED,
            absl::StrCat("blob ", request->sha256(), " belongs to no job of ", caller->name, " and was not uploaded by ",
                         caller->name)};
  }
  if (!state_.blobs().contains(request->sha256())) {
    return {grpc::StatusCode::NOT_FOUND, absl::StrCat("no blob ", request->sha256())};
  }
  std::ifstream in(state_.blobs().path_of(request->sha256()), std::ios::binary);
  v1::BlobChunk chunk;
  std::string buffer(kBlobChunkBytes, '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    chunk.set_data(buffer.data(), static_cast<size_t>(in.gcount()));
    if (chunk.data().empty()) break;
    if (!writer->Write(chunk)) return grpc::Status::CANCELLED;
  }
  return grpc::Status::OK;
}

grpc::Status WorkersService::Connect(grpc::ServerContext* context,
                                     grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream) {
  auto caller = access_.authenticate(*context, Needs::kWorker);
  if (!caller.ok()) return to_grpc(caller.status());
  auto session = access_.hold(*caller, context);
  v1::WorkerMessage message;
  if (!stream->Read(&message) || !message.has_register_()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "a worker's first message must register it"};
  }
  if (auto checked = check_registration(message.register_()); !checked.ok()) return to_grpc(checked);
  const std::string worker_id = message.register_().worker_id();
  auto outbox = std::make_shared<Outbox>();
  if (auto registered =
          state_.connect_worker(message.register_(), peer_ip(context->peer()), caller->credential, outbox);
      !registered.ok()) {
    return to_grpc(registered.status());
  }
  // Reads and writes run side by side: this thread reads, the writer drains
  // the outbox and cuts the stream of a worker that fell silent.
  std::thread writer([&] {
    const absl::Duration tick = absl::FromChrono(state_.options().heartbeat_interval);
    while (!outbox->closed()) {
      if (auto next = outbox->pop(tick)) {
        if (!stream->Write(*next)) break;
      } else if (state_.is_silent(worker_id)) {
        break;
      }
    }
    context->TryCancel();
  });
  while (stream->Read(&message)) {
    if (message.has_finished_batch()) {
      state_.worker_finished(worker_id, message.finished_batch());
    } else if (message.has_checkpoint()) {
      state_.worker_checkpoint(worker_id, message.checkpoint());
    } else if (message.has_gang_ready()) {
      state_.worker_gang_ready(worker_id, message.gang_ready());
    } else if (message.has_heartbeat()) {
      state_.worker_heartbeat(worker_id, message.heartbeat());
    } else {
      state_.worker_heard(worker_id);
    }
  }
  state_.disconnect_worker(worker_id, outbox.get());
  outbox->close();
  writer.join();
  return grpc::Status::OK;
}

}  // namespace pesc
