#include "client/client.h"

#include <set>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "archive/archive.h"
#include "client/client_conversion.h"
#include "client/process.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "executor/domain.h"
#include "executor/program_file.h"
#include "transport/tls_diagnosis.h"
#include "transport/job_options.h"
#include "transport/transport.h"
#include "transport/url_fetch.h"

namespace pesc {
namespace fs = std::filesystem;

namespace {

constexpr auto kCallTimeout = std::chrono::seconds(30);
// How long a cancel keeps trying to reach the coordinator: a user who
// pressed Ctrl-C waits for it, and is told when it could not be confirmed.
constexpr absl::Duration kCancelPatience = absl::Seconds(5);
constexpr absl::Duration kRetryPause = absl::Milliseconds(100);

// Runs an idempotent call, `call(context)`, again after UNAVAILABLE: a
// connection the coordinator has just closed (a GOAWAY, a restart) fails
// the call on it, and the next try gets a new one. Tries once more, or
// until `patience` has passed when it is longer.
template <typename Call>
grpc::Status call_idempotent(Call call, absl::Duration patience = absl::ZeroDuration()) {
  const absl::Time give_up = absl::Now() + patience;
  for (int tries = 1;; ++tries) {
    grpc::ClientContext context;
    const absl::Duration left = give_up - absl::Now();
    set_deadline(context, left > kRetryPause ? absl::ToChronoMilliseconds(left) : kCallTimeout);
    grpc::Status status = call(context);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE || (tries > 1 && absl::Now() + kRetryPause >= give_up)) {
      return status;
    }
    absl::SleepFor(kRetryPause);
  }
}
// How long a watch keeps trying to reach a coordinator that went away.
constexpr absl::Duration kReconnectPatience = absl::Seconds(60);

absl::Status check_limits(const RankLimits& limits) {
  if (limits.memory_bytes < 0 || limits.cpu_time.count() < 0 || limits.open_files < 0 || limits.processes < 0 ||
      limits.output_bytes < 0) {
    return absl::InvalidArgumentError("a rank limit cannot be negative (0: no limit)");
  }
  return absl::OkStatus();
}

// A native process runs as it is: a file without its exec bit or a #! line
// is refused here, before anything is uploaded, rather than by every rank.
absl::Status check_local_program(const Domain& domain, const fs::path& named, const PreparedProcess& process) {
  if (domain.name != "native") return absl::OkStatus();
  std::error_code error;
  if (process.kind == v1::PROCESS_KIND_FILE) return check_program_file(named);
  if (fs::is_directory(named, error)) return check_program_file(named / process.entry);
  return absl::OkStatus();  // an archive's entry is checked where it is unpacked
}

}  // namespace

Client::Client(std::shared_ptr<grpc::Channel> channel, std::shared_ptr<void> owner, std::string description,
               std::string address, ChannelSecurity security)
    : channel_(std::move(channel)),
      owner_(std::move(owner)),
      description_(std::move(description)),
      address_(std::move(address)),
      security_(std::move(security)),
      jobs_(v1::Jobs::NewStub(channel_)),
      blobs_(v1::Blobs::NewStub(channel_)) {}

absl::StatusOr<std::shared_ptr<Client>> Client::connect(const std::string& address,
                                                        const ChannelSecurity& security) {
  auto channel = open_channel(address, security);
  // A refused connection fails at once; a host that does not answer gets 5 s.
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(5);
  for (grpc_connectivity_state state = channel->GetState(true); state != GRPC_CHANNEL_READY;
       state = channel->GetState(true)) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE) {
      return explain_unreachable(address, security, absl::UnavailableError("connection refused"));
    }
    if (!channel->WaitForStateChange(state, deadline)) {
      return coordinator_unreachable(address, absl::DeadlineExceededError("no answer within 5 s"));
    }
  }
  return std::shared_ptr<Client>(new Client(std::move(channel), nullptr, address, address, security));
}

std::shared_ptr<Client> Client::over_channel(std::shared_ptr<grpc::Channel> channel, std::shared_ptr<void> owner,
                                             std::string description) {
  return std::shared_ptr<Client>(new Client(std::move(channel), std::move(owner), std::move(description), ""));
}

absl::Status Client::explain(const absl::Status& status) const {
  if (status.code() == absl::StatusCode::kUnavailable && !address_.empty()) {
    return explain_unreachable(address_, security_, status);
  }
  return status;
}

absl::StatusOr<std::string> Client::submit(const SubmitRequest& request) {
  // Checked here too, so a mistake costs no upload.
  PESC_ASSIGN_OR_RETURN(Domain domain, parse_domain(request.domain));
  if (request.repetitions < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("repetitions must be at least 1, not ", request.repetitions, ": how many ranks should run?"));
  }
  if (request.options.max_attempts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_attempts must be at least 1 (1: no retry), not ", request.options.max_attempts));
  }
  if (request.options.timeout.count() < 0 || request.options.checkpoint_interval.count() < 0) {
    return absl::InvalidArgumentError("a timeout or checkpoint interval cannot be negative");
  }
  PESC_RETURN_IF_ERROR(check_limits(request.options.limits));
  PESC_ASSIGN_OR_RETURN(PreparedProcess process, prepare_process(request.process, request.options.entry));
  PESC_RETURN_IF_ERROR(check_local_program(domain, request.process, process));

  std::vector<std::string> trusted;
  absl::StatusOr<std::string> job_id = submit_once(request, process, trusted);
  // A blob taken as held without asking may be gone (deleted with its last
  // job, or a coordinator restarted on another state dir), or no longer
  // readable by this caller: the coordinator then refuses the job, creating
  // nothing. Asked about again (and uploaded where StatBlob says so), the
  // job goes once more.
  const absl::Status& refused = job_id.status();
  const bool blob_missing =
      absl::IsFailedPrecondition(refused) || absl::IsNotFound(refused) || absl::IsPermissionDenied(refused);
  if (job_id.ok() || trusted.empty() || !blob_missing) return job_id;
  forget_blobs(trusted);
  trusted.clear();
  return submit_once(request, process, trusted);
}

absl::StatusOr<std::string> Client::submit_once(const SubmitRequest& request, const PreparedProcess& process,
                                                std::vector<std::string>& trusted) {
  auto uploaded = upload(process.upload, trusted);
  if (!uploaded.ok()) return explain(annotate(uploaded.status(), "cannot upload the process"));

  v1::SubmitJobRequest submit;
  v1::JobSpec& spec = *submit.mutable_spec();
  spec.set_domain(request.domain);
  spec.set_process_kind(process.kind);
  *spec.mutable_process() = *uploaded;
  spec.set_entry(process.entry);
  spec.set_repetitions(request.repetitions);
  for (const std::string& parameter : request.parameters) spec.add_parameters(parameter);
  spec.set_name(request.options.name.empty() ? request.process.filename().string() : request.options.name);
  spec.set_user(request.user);
  set_job_options(request.options, spec);
  PESC_RETURN_IF_ERROR(add_shared_files(request.options.shared, spec, trusted));

  grpc::ClientContext context;
  set_deadline(context, kCallTimeout);
  v1::SubmitJobResponse response;
  if (grpc::Status status = jobs_->SubmitJob(&context, submit, &response); !status.ok()) {
    return explain(to_absl(status));
  }
  return response.job_id();
}

absl::StatusOr<v1::BlobRef> Client::upload(const fs::path& file, std::vector<std::string>& trusted) {
  auto known = [&](const std::string& sha256) {
    absl::MutexLock lock(&known_blobs_mutex_);
    if (!known_blobs_.contains(sha256)) return false;
    trusted.push_back(sha256);
    return true;
  };
  PESC_ASSIGN_OR_RETURN(v1::BlobRef ref, upload_file(*blobs_, file, known));
  absl::MutexLock lock(&known_blobs_mutex_);
  known_blobs_.insert(ref.sha256());
  return ref;
}

void Client::forget_blobs(const std::vector<std::string>& blobs) {
  absl::MutexLock lock(&known_blobs_mutex_);
  for (const std::string& sha256 : blobs) known_blobs_.erase(sha256);
}

absl::Status Client::add_shared_files(const std::vector<std::string>& sources, v1::JobSpec& spec,
                                      std::vector<std::string>& trusted) {
  std::set<std::string> names;
  for (const std::string& source : sources) {
    v1::SharedFile& shared = *spec.add_shared();
    if (is_fetchable_url(source)) {
      shared.set_url(source);
      std::string path = source.substr(0, source.find_first_of("?#"));
      shared.set_name(path.substr(path.find_last_of('/') + 1));
    } else {
      std::error_code error;
      if (!fs::is_regular_file(source, error)) {
        return absl::NotFoundError(absl::StrCat("the shared file \"", source, "\" does not exist (or is not a file)"));
      }
      auto uploaded = upload(source, trusted);
      if (!uploaded.ok()) return explain(annotate(uploaded.status(), absl::StrCat("cannot upload ", source)));
      *shared.mutable_blob() = *uploaded;
      shared.set_name(fs::path(source).filename().string());
    }
    if (shared.name().empty() || shared.name() == "." || shared.name() == "..") {
      return absl::InvalidArgumentError(absl::StrCat("cannot name a shared file after \"", source, "\""));
    }
    if (!names.insert(shared.name()).second) {
      return absl::InvalidArgumentError(absl::StrCat("two shared files are named ", shared.name()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<JobSummary> Client::job(const std::string& job_id) {
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  v1::JobInfo info;
  grpc::Status status =
      call_idempotent([&](grpc::ClientContext& context) { return jobs_->GetJob(&context, request, &info); });
  if (!status.ok()) return explain(to_absl(status));
  return from_proto(info);
}

absl::StatusOr<std::vector<JobSummary>> Client::jobs() {
  v1::ListJobsResponse response;
  grpc::Status status =
      call_idempotent([&](grpc::ClientContext& context) { return jobs_->ListJobs(&context, {}, &response); });
  if (!status.ok()) return explain(to_absl(status));
  std::vector<JobSummary> jobs;
  for (const v1::JobInfo& job : response.jobs()) jobs.push_back(from_proto(job));
  return jobs;
}

absl::StatusOr<JobSummary> Client::cancel(const std::string& job_id) {
  v1::CancelJobRequest request;
  request.set_job_id(job_id);
  v1::CancelJobResponse response;
  grpc::Status status = call_idempotent(
      [&](grpc::ClientContext& context) { return jobs_->CancelJob(&context, request, &response); }, kCancelPatience);
  if (!status.ok()) return explain(to_absl(status));
  return from_proto(response.job());
}

absl::StatusOr<uint64_t> Client::delete_job(const std::string& job_id) {
  grpc::ClientContext context;
  set_deadline(context, kCallTimeout);
  v1::DeleteJobRequest request;
  request.set_job_id(job_id);
  v1::DeleteJobResponse response;
  if (grpc::Status status = jobs_->DeleteJob(&context, request, &response); !status.ok()) {
    return explain(to_absl(status));
  }
  return response.bytes_freed();
}

absl::StatusOr<RetriedRanks> Client::retry(const std::string& job_id, const std::vector<int>& ranks) {
  grpc::ClientContext context;  // not repeated on its own: a second retry finds the job running
  set_deadline(context, kCallTimeout);
  v1::RetryRanksRequest request;
  request.set_job_id(job_id);
  request.mutable_ranks()->Assign(ranks.begin(), ranks.end());
  v1::RetryRanksResponse response;
  if (grpc::Status status = jobs_->RetryRanks(&context, request, &response); !status.ok()) {
    return explain(to_absl(status));
  }
  return from_proto(response);
}

absl::StatusOr<RankOutputPiece> Client::read_output(const std::string& job_id, int rank, int64_t offset) {
  v1::ReadRankOutputRequest request;
  request.set_job_id(job_id);
  request.set_rank(rank);
  request.set_offset(offset);
  v1::RankOutput response;
  grpc::Status status = call_idempotent(
      [&](grpc::ClientContext& context) { return jobs_->ReadRankOutput(&context, request, &response); });
  if (!status.ok()) return explain(to_absl(status));
  return from_proto(response);
}

absl::StatusOr<std::vector<WorkerSummary>> Client::workers() {
  v1::ListWorkersResponse response;
  grpc::Status status =
      call_idempotent([&](grpc::ClientContext& context) { return jobs_->ListWorkers(&context, {}, &response); });
  if (!status.ok()) return explain(to_absl(status));
  std::vector<WorkerSummary> workers;
  for (const v1::WorkerInfo& worker : response.workers()) workers.push_back(from_proto(worker));
  return workers;
}

absl::StatusOr<std::string> Client::fetch(const StoredBytes& bytes) { return read_payload(*blobs_, to_payload(bytes)); }

absl::Status Client::save_files(const StoredBytes& files, const fs::path& dir) {
  if (files.empty()) return absl::OkStatus();
  PESC_ASSIGN_OR_RETURN(TempDirectory scratch, TempDirectory::create("pesc-files-"));
  fs::path tar = scratch.path() / "files.tar";
  if (files.inline_data.empty()) {
    PESC_RETURN_IF_ERROR(download_blob(*blobs_, to_payload(files).blob(), tar));
  } else {
    PESC_RETURN_IF_ERROR(write_file_atomically(tar, files.inline_data));
  }
  return archive::extract(tar, dir);
}

std::unique_ptr<JobWatch> Client::watch(const std::string& job_id, int64_t after_seq) {
  return std::make_unique<JobWatch>(shared_from_this(), job_id, after_seq);
}

JobWatch::JobWatch(std::shared_ptr<Client> client, std::string job_id, int64_t after_seq)
    : client_(std::move(client)), job_id_(std::move(job_id)), after_seq_(after_seq) {
  reader_ = std::thread([this] { read_loop(); });
}

JobWatch::~JobWatch() {
  {
    absl::MutexLock lock(&mutex_);
    closing_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  reader_.join();
}

void JobWatch::push(Event event) {
  absl::MutexLock lock(&mutex_);
  events_.push_back(std::move(event));
}

std::optional<JobWatch::Event> JobWatch::next(absl::Duration timeout) {
  absl::MutexLock lock(&mutex_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mutex_) { return !events_.empty(); };
  if (!mutex_.AwaitWithTimeout(absl::Condition(&ready), timeout)) return std::nullopt;
  Event event = std::move(events_.front());
  events_.pop_front();
  return event;
}

// One WatchJob call; returns how it ended. Progress survives in after_seq.
absl::Status JobWatch::follow(int64_t& after_seq, bool& done) {
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mutex_);
    if (closing_) return absl::CancelledError();
    context_ = &context;
  }
  v1::WatchJobRequest request;
  request.set_job_id(job_id_);
  request.set_after_seq(after_seq);
  auto reader = client_->jobs_->WatchJob(&context, request);
  v1::JobEvent event;
  while (reader->Read(&event)) {
    if (event.has_ranks_finished()) {
      for (const v1::RankResult& result : event.ranks_finished().results()) {
        after_seq = result.finish_seq();
        push(from_proto(result));
      }
    } else if (event.has_progress()) {
      push(from_proto(event.progress()));
    } else if (event.has_job_done()) {
      done = true;
      push(Done{from_proto(event.job_done())});
    }
  }
  grpc::Status status = reader->Finish();
  absl::MutexLock lock(&mutex_);
  context_ = nullptr;
  return to_absl(status);
}

void JobWatch::read_loop() {
  int64_t after_seq = after_seq_;
  absl::Time gave_up_at = absl::InfiniteFuture();
  while (true) {
    bool done = false;
    const int64_t before = after_seq;
    absl::Status status = follow(after_seq, done);
    if (done) return;
    if (after_seq != before) gave_up_at = absl::InfiniteFuture();
    {
      absl::MutexLock lock(&mutex_);
      if (closing_) return;
    }
    bool transient = status.ok() || status.code() == absl::StatusCode::kUnavailable ||
                     status.code() == absl::StatusCode::kDeadlineExceeded ||
                     status.code() == absl::StatusCode::kCancelled;
    if (!transient) {
      push(status);
      return;
    }
    // The coordinator went away (a restart): keep trying for a while.
    if (gave_up_at == absl::InfiniteFuture()) gave_up_at = absl::Now() + kReconnectPatience;
    if (absl::Now() > gave_up_at) {
      push(annotate(status, "lost the coordinator while waiting for the job"));
      return;
    }
    absl::MutexLock lock(&mutex_);
    mutex_.AwaitWithTimeout(absl::Condition(&closing_), absl::Milliseconds(200));
    if (closing_) return;
  }
}

}  // namespace pesc
