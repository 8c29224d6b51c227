#include "coordinator/services.h"

#include <algorithm>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "coordinator/job_watch.h"
#include "coordinator/worker_stream.h"
#include "ledger/ledger_conversion.h"
#include "registry/registry_conversion.h"
#include "security/input_limits.h"
#include "transport/transport.h"

namespace pesc {

grpc::Status JobsService::SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                                    v1::SubmitJobResponse* response) {
  auto caller = access_.authenticate(*context, Needs::kUser);
  if (!caller.ok()) return to_grpc(caller.status());
  auto job_id = access_.submit(*caller, request->spec());
  if (!job_id.ok()) return to_grpc(job_id.status());
  response->set_job_id(*job_id);
  return grpc::Status::OK;
}

grpc::Status JobsService::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request, v1::JobInfo* response) {
  if (auto caller = access_.authorize_job(*context, request->job_id()); !caller.ok()) return to_grpc(caller.status());
  auto job = state_.job(request->job_id());
  if (!job.ok()) return to_grpc(job.status());
  *response = to_proto(*job);
  return grpc::Status::OK;
}

grpc::Status JobsService::ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest*,
                                   v1::ListJobsResponse* response) {
  auto caller = access_.authenticate(*context, Needs::kUser);
  if (!caller.ok()) return to_grpc(caller.status());
  auto jobs = access_.visible_jobs(*caller);
  if (!jobs.ok()) return to_grpc(jobs.status());
  for (const JobRecord& job : *jobs) *response->add_jobs() = to_proto(job);
  return grpc::Status::OK;
}

grpc::Status JobsService::CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                                    v1::CancelJobResponse* response) {
  if (auto caller = access_.authorize_job(*context, request->job_id()); !caller.ok()) return to_grpc(caller.status());
  auto job = state_.cancel(request->job_id());
  if (!job.ok()) return to_grpc(job.status());
  *response->mutable_job() = to_proto(*job);
  return grpc::Status::OK;
}

grpc::ServerWriteReactor<v1::JobEvent>* JobsService::WatchJob(grpc::CallbackServerContext* context,
                                                              const v1::WatchJobRequest* request) {
  return JobWatch::start(state_, access_, context, *request);
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
  for (const WorkerView& worker : *workers) *response->add_workers() = to_proto(worker);
  return grpc::Status::OK;
}

grpc::Status JobsService::RetryRanks(grpc::ServerContext* context, const v1::RetryRanksRequest* request,
                                     v1::RetryRanksResponse* response) {
  if (auto caller = access_.authorize_job(*context, request->job_id()); !caller.ok()) return to_grpc(caller.status());
  auto retried = state_.retry(request->job_id(), {request->ranks().begin(), request->ranks().end()});
  if (!retried.ok()) return to_grpc(retried.status());
  response->mutable_ranks()->Assign(retried->ranks.begin(), retried->ranks.end());
  *response->mutable_job() = to_proto(retried->job);
  return grpc::Status::OK;
}

grpc::Status JobsService::ReadRankOutput(grpc::ServerContext* context, const v1::ReadRankOutputRequest* request,
                                         v1::RankOutput* response) {
  if (auto caller = access_.authorize_job(*context, request->job_id()); !caller.ok()) return to_grpc(caller.status());
  if (request->offset() < 0) return {grpc::StatusCode::INVALID_ARGUMENT, "an output offset is not negative"};
  auto output = state_.read_output(request->job_id(), request->rank(), request->offset());
  if (!output.ok()) return to_grpc(output.status());
  *response = to_proto(*output);
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
  absl::StatusOr<uint64_t> size = state_.blobs().size_of(request->sha256());
  if (!size.ok()) return to_grpc(size.status());
  std::ifstream in(state_.blobs().path_of(request->sha256()), std::ios::binary);
  v1::BlobChunk chunk;
  // No bigger than the blob: most are small, and a thousand workers fetching
  // one would otherwise each cost a chunk's allocation and zeroing.
  std::string buffer(std::min<uint64_t>(std::max<uint64_t>(*size, 1), kBlobChunkBytes), '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    chunk.set_data(buffer.data(), static_cast<size_t>(in.gcount()));
    if (chunk.data().empty()) break;
    if (!writer->Write(chunk)) return grpc::Status::CANCELLED;
  }
  return grpc::Status::OK;
}

grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* WorkersService::Connect(
    grpc::CallbackServerContext* context) {
  return WorkerStream::start(state_, access_, context);
}

}  // namespace pesc
