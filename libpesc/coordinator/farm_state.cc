#include "coordinator/farm_state.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <iostream>
#include <limits>
#include <utility>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "executor/domain.h"
#include "executor/rank_contract.h"

namespace pesc {
namespace {

constexpr int kMaxRepetitions = 10'000'000;
constexpr int kResultsPerBatch = 512;
// How long a new job's ranks may have nowhere to go before its clients are told why.
constexpr absl::Duration kWaitingGrace = absl::Seconds(2);
// Ranks in a row that cannot start on a worker for the worker's own fault
// before it is quarantined.
constexpr int kQuarantineAfter = 2;
// A job whose first this many ranks (or all, when it has fewer) failed for
// the job's own fault, none succeeding, ends FAILED at once.
constexpr int kFailFastAfter = 3;
// A batch of assignments or acks stays well under gRPC's 4 MiB message cap.
constexpr size_t kBatchBytes = 1 << 20;
// A worker holds enough assignments to keep each slot busy this long, so
// short ranks do not wait on round trips to the coordinator.
constexpr double kPrefetchHorizonMs = 50;
constexpr int kMaxPrefetchPerSlot = 512;
// How stale the count of ranks queued at workers may be: a progress display
// needs no better, and a count costs a look at every running attempt.
constexpr absl::Duration kQueuedRecount = absl::Milliseconds(250);
// Short function-mode ranks go in chunks of about this much work each, of
// at most kMaxChunk ranks, and small enough that a job's tail still spreads
// over every slot.
constexpr double kChunkHorizonMs = 20;
constexpr int kMaxChunk = 32;
constexpr int kChunksPerSlotAtLeast = 4;
// A rank is a straggler, worth a duplicate on an idle worker, once it has
// run this many times a typical rank's time, and at least this long.
constexpr double kStragglerFactor = 2;
constexpr double kStragglerMinMs = 1000;
constexpr int64_t kStragglerScanMs = 200;
constexpr int kMaxGpusPerRank = 64;

absl::Status validate(const v1::JobSpec& spec) {
  if (auto domain = parse_domain(spec.domain()); !domain.ok()) return domain.status();
  if (spec.repetitions() < 1 || spec.repetitions() > kMaxRepetitions) {
    return absl::InvalidArgumentError(absl::StrCat("repetitions must be between 1 and ", kMaxRepetitions,
                                                   ", not ", spec.repetitions()));
  }
  if (spec.process().sha256().empty() || spec.process_kind() == v1::PROCESS_KIND_UNSPECIFIED) {
    return absl::InvalidArgumentError("the job names no process: upload one and give its blob and kind");
  }
  if (spec.entry().empty()) return absl::InvalidArgumentError("the job names no entry point");
  PESC_RETURN_IF_ERROR(check_parameters_fit({spec.parameters().begin(), spec.parameters().end()}));
  for (const std::string& room : spec.rooms()) {
    if (room.empty() || room.size() > 64) {
      return absl::InvalidArgumentError("a room name must have 1 to 64 characters");
    }
  }
  if (spec.gpus_per_rank() < 0 || spec.gpus_per_rank() > kMaxGpusPerRank) {
    return absl::InvalidArgumentError(
        absl::StrCat("GPUs per rank must be between 0 and ", kMaxGpusPerRank, ", not ", spec.gpus_per_rank()));
  }
  if (!(spec.min_capability() >= 0) || (spec.min_capability() > 0 && spec.gpus_per_rank() == 0)) {
    return absl::InvalidArgumentError("a minimum compute capability needs GPUs per rank (--gpus N)");
  }
  if (spec.parallel() && spec.gpus_per_rank() > 0) {
    return absl::UnimplementedError(
        "a parallel job cannot ask for GPUs yet (gangs are placed by slots only); drop --gpus or --parallel");
  }
  return absl::OkStatus();
}

// Room a job needs on the state disk: its rows and results, and slack for
// the write-ahead log. Refused below it, rather than taken and then stuck.
constexpr uint64_t kStateHeadroomBytes = uint64_t{2} << 20;
constexpr uint64_t kStateBytesPerRank = 512;
// How often the same store failure is logged while it lasts (a full disk).
constexpr absl::Duration kStoreFailureLogInterval = absl::Seconds(10);

absl::Status state_disk_full(const std::filesystem::path& state_dir, absl::string_view detail) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "the coordinator's state disk is full, so it takes no new jobs: ", state_dir.string(), " (", detail,
      "). Free space on that disk (or move the state dir to a larger one); running jobs go on by themselves "
      "when space returns"));
}

}  // namespace

void Outbox::assign(v1::Assignment assignment) {
  {
    absl::MutexLock lock(&mutex_);
    if (closed_) return;
    const size_t bytes = assignment.ByteSizeLong();
    *joinable(v1::CoordinatorMessage::kAssignBatch, bytes).mutable_assign_batch()->add_assignments() =
        std::move(assignment);
  }
  tell_ready();
}

void Outbox::acknowledge(int64_t attempt_id) {
  {
    absl::MutexLock lock(&mutex_);
    if (closed_) return;
    joinable(v1::CoordinatorMessage::kAck, sizeof attempt_id).mutable_ack()->add_attempt_ids(attempt_id);
  }
  tell_ready();
}

v1::CoordinatorMessage& Outbox::joinable(v1::CoordinatorMessage::MessageCase kind, size_t adding_bytes) {
  if (queue_.empty() || queue_.back().message_case() != kind || last_bytes_ + adding_bytes > kBatchBytes) {
    queue_.emplace_back();
    last_bytes_ = 0;
  }
  last_bytes_ += adding_bytes;
  return queue_.back();
}

void Outbox::push(v1::CoordinatorMessage message) {
  {
    absl::MutexLock lock(&mutex_);
    if (closed_) return;
    queue_.push_back(std::move(message));
    last_bytes_ = kBatchBytes;  // nothing joins a message of another kind
  }
  tell_ready();
}

std::optional<v1::CoordinatorMessage> Outbox::pop() {
  absl::MutexLock lock(&mutex_);
  if (closed_ || queue_.empty()) return std::nullopt;
  v1::CoordinatorMessage message = std::move(queue_.front());
  queue_.pop_front();
  return message;
}

bool Outbox::closed() {
  absl::MutexLock lock(&mutex_);
  return closed_;
}

void Outbox::close() {
  {
    absl::MutexLock lock(&mutex_);
    closed_ = true;
  }
  tell_ready();
}

void Outbox::on_ready(std::function<void()> ready) {
  absl::MutexLock lock(&mutex_);
  ready_ = std::move(ready);
}

void Outbox::tell_ready() {
  std::function<void()> ready;
  {
    absl::MutexLock lock(&mutex_);
    ready = ready_;
  }
  if (ready) ready();
}

absl::StatusOr<std::unique_ptr<FarmState>> FarmState::open(CoordinatorOptions options) {
  std::error_code error;
  options.state_dir = std::filesystem::absolute(options.state_dir, error);
  PESC_RETURN_IF_ERROR(make_private_dir(options.state_dir));
  PESC_ASSIGN_OR_RETURN(auto dir_lock, StateDirLock::take(options.state_dir));
  PESC_ASSIGN_OR_RETURN(auto store, open_state_database(options.state_dir));
  PESC_ASSIGN_OR_RETURN(auto blobs, BlobStore::open(options.state_dir / "blobs", BlobStore::Access::kOwnerOnly));
  auto state = std::unique_ptr<FarmState>(
      new FarmState(options, std::move(dir_lock), std::move(store), std::move(blobs)));
  {
    absl::MutexLock lock(&state->mutex_);
    PESC_RETURN_IF_ERROR(state->recover());
  }
  state->reaper_ = std::make_unique<std::thread>([raw = state.get()] { raw->reaper_loop(); });
  return state;
}

FarmState::FarmState(CoordinatorOptions options, std::unique_ptr<StateDirLock> lock, std::unique_ptr<JobStore> store,
                     std::unique_ptr<BlobStore> blobs)
    : options_(std::move(options)), lock_(std::move(lock)), blobs_(std::move(blobs)), store_(std::move(store)) {}

FarmState::~FarmState() {
  shut_down();
  if (reaper_ && reaper_->joinable()) reaper_->join();
}

// After a restart the running attempts belong to workers that have not
// reconnected yet; they get one lease to come back and claim them.
absl::Status FarmState::recover() { return resync(); }

void FarmState::store_failed(std::string_view what, const absl::Status& status) {
  resync_needed_ = true;
  const absl::Time now = absl::Now();
  if (status.message() == last_store_failure_ && now - last_store_failure_logged_ < kStoreFailureLogInterval) return;
  last_store_failure_ = std::string(status.message());
  last_store_failure_logged_ = now;
  std::cerr << "pesc coordinator: " << what << " failed, rolled back, will retry: " << status.message() << std::endl;
}

void FarmState::store_writes_again() {
  if (last_store_failure_.empty()) return;
  last_store_failure_.clear();
  std::cerr << "pesc coordinator: the state store takes writes again" << std::endl;
}

bool FarmState::resync_if_needed() {
  if (!resync_needed_) return true;
  if (absl::Status status = resync(); !status.ok()) {
    store_failed("reading the state back from the store", status);
    return false;
  }
  return true;
}

// Memory follows the store, never the other way round: the attempts each
// worker holds, the active jobs and their pending counts, and usage are
// read back from it, at a start and after a failed store call.
absl::Status FarmState::resync() {
  resync_needed_ = false;
  PESC_ASSIGN_OR_RETURN(auto usage, store_->usage_by_user());
  PESC_ASSIGN_OR_RETURN(auto running_jobs, store_->running_jobs());
  PESC_ASSIGN_OR_RETURN(auto running, store_->running_attempts());
  std::map<std::string, ActiveJob> jobs;
  for (JobRecord& record : running_jobs) {
    ActiveJob& job = jobs[record.id] =
        ActiveJob{std::move(record.spec), record.created_unix_ms, record.progress.pending()};
    auto known = active_jobs_.find(record.id);
    if (known != active_jobs_.end()) job.fault_watch = known->second.fault_watch;
    if (!job.spec.same_machine()) continue;
    if (known != active_jobs_.end()) {
      job.pinned_worker = known->second.pinned_worker;
      continue;
    }
    PESC_ASSIGN_OR_RETURN(job.pinned_worker, store_->latest_worker(record.id));
    // Its worker gets a lease to come back, like one holding attempts;
    // past it the pin goes (requeue_expired).
    if (!job.pinned_worker.empty() && !sessions_.contains(job.pinned_worker)) {
      sessions_[job.pinned_worker].last_heard = absl::Now();
    }
  }
  scheduler_.set_usage(std::move(usage));
  active_jobs_ = std::move(jobs);
  for (auto& [worker_id, session] : sessions_) {
    session.attempts.clear();
    session.chunk_sizes.clear();
  }
  for (const AttemptRecord& attempt : running) {
    auto [known, added] = sessions_.try_emplace(attempt.worker_id);
    Session& session = known->second;
    session.attempts.insert(attempt.id);
    if (attempt.rank_count > 1) session.chunk_sizes[attempt.id] = attempt.rank_count;
    if (added) session.last_heard = absl::Now();
  }
  // Workers given a lease to come back keep their ids bound to them.
  PESC_ASSIGN_OR_RETURN(auto credentials, store_->worker_credentials());
  for (auto& [worker_id, session] : sessions_) {
    if (auto bound = credentials.find(worker_id); bound != credentials.end()) session.credential = bound->second;
  }
  return restart_gangs_unlike_the_store(running);
}

// Whether a gang had started is known to memory only (its ranks may still
// wait for their start), so a gang that memory and the store see
// differently (after a restart, or a failed store call) starts over: the
// store runs attempts of it that memory did not launch, or has a rank of a
// launched gang pending again (its start was rolled back).
absl::Status FarmState::restart_gangs_unlike_the_store(const std::vector<AttemptRecord>& running) {
  std::vector<int64_t> restart;
  for (const AttemptRecord& attempt : running) {
    auto job = active_jobs_.find(attempt.job_id);
    if (job == active_jobs_.end() || !job->second.spec.parallel()) continue;
    auto launch = gangs_.find(attempt.job_id);
    if (launch == gangs_.end() || !launch->second.worker_of.contains(attempt.id)) restart.push_back(attempt.id);
  }
  for (const auto& [job_id, launch] : gangs_) {
    auto job = active_jobs_.find(job_id);
    if (job != active_jobs_.end() && job->second.pending == 0) continue;
    for (const auto& [attempt, worker_id] : launch.worker_of) restart.push_back(attempt);
  }
  return requeue(restart);
}

void FarmState::send_when_committed(std::function<void()> send) {
  if (held_sends_) {
    held_sends_->push_back(std::move(send));
  } else {
    send();
  }
}

absl::StatusOr<std::string> FarmState::submit(v1::JobSpec spec) {
  PESC_RETURN_IF_ERROR(validate(spec));
  if (!blobs_->contains(spec.process().sha256())) {
    return absl::FailedPreconditionError(
        absl::StrCat("the process blob ", spec.process().sha256(), " was never uploaded"));
  }
  for (const v1::SharedFile& shared : spec.shared()) {
    if (shared.has_blob() && !blobs_->contains(shared.blob().sha256())) {
      return absl::FailedPreconditionError(absl::StrCat("the shared file ", shared.name(), " was never uploaded"));
    }
  }
  PESC_RETURN_IF_ERROR(check_state_disk(spec.repetitions()));
  absl::MutexLock lock(&mutex_);
  if (shutting_down_) return absl::UnavailableError("the coordinator is shutting down");
  std::string job_id = random_hex(6);
  int64_t now = now_unix_ms();
  if (absl::Status created = store_->create_job(job_id, spec, now); !created.ok()) {
    if (absl::IsResourceExhausted(created)) return state_disk_full(options_.state_dir, created.message());
    return created;
  }
  int repetitions = spec.repetitions();
  active_jobs_[job_id] = ActiveJob{std::move(spec), now, repetitions};
  dispatch();
  changed();
  events_.published_at(absl::FromUnixMillis(now) + kWaitingGrace);  // why it waits shows after the grace
  return job_id;
}

absl::Status FarmState::check_state_disk(int repetitions) const {
  struct statvfs disk {};
  if (::statvfs(options_.state_dir.c_str(), &disk) != 0) return absl::OkStatus();  // the store will tell
  const uint64_t free_bytes = uint64_t{disk.f_bavail} * disk.f_frsize;
  const uint64_t needed = kStateHeadroomBytes + kStateBytesPerRank * static_cast<uint64_t>(repetitions);
  if (free_bytes >= needed) return absl::OkStatus();
  return state_disk_full(options_.state_dir, absl::StrCat(free_bytes, " bytes are free there, and a job of ",
                                                          repetitions, " ranks needs about ", needed));
}

absl::Status FarmState::blob_not_stored(const absl::Status& status, bool from_worker) const {
  if (!absl::IsResourceExhausted(status)) return status;
  absl::Status full = state_disk_full(options_.state_dir, status.message());
  return from_worker ? absl::UnavailableError(full.message()) : full;
}

// Waited for, not refused: the workers it needs may still be joining.
std::string FarmState::gang_shortfall(const std::string& job_id, const ActiveJob& job) const {
  const QueuedJob gang = queued(job_id, job);
  int slots = 0;
  int workers = 0;
  for (const WorkerCapacity& worker : worker_capacity()) {
    if (!may_run_on(gang, worker)) continue;
    slots += worker.slots;
    workers += 1;
  }
  if (slots >= job.spec.repetitions()) return "";
  return absl::StrCat("a parallel job runs all its ", job.spec.repetitions(),
                      " ranks at once, but the workers online in room(s) ", absl::StrJoin(gang.rooms, ", "),
                      " have ", slots, " slots in all (", workers,
                      " workers): start more workers, or cancel it and lower the repetitions or drop --parallel");
}

absl::StatusOr<v1::JobInfo> FarmState::job(const std::string& job_id) {
  absl::MutexLock lock(&mutex_);
  PESC_ASSIGN_OR_RETURN(JobRecord record, store_->job(job_id));
  v1::JobInfo info = info_of(record);
  PESC_ASSIGN_OR_RETURN(auto pauses, store_->pauses_between(record.created_unix_ms, record.finished_unix_ms > 0
                                                                                      ? record.finished_unix_ms
                                                                                      : now_unix_ms()));
  info.mutable_pauses()->Assign(pauses.begin(), pauses.end());
  return info;
}

absl::StatusOr<std::vector<v1::JobInfo>> FarmState::jobs() {
  absl::MutexLock lock(&mutex_);
  PESC_ASSIGN_OR_RETURN(auto records, store_->jobs());
  std::vector<v1::JobInfo> infos;
  infos.reserve(records.size());
  for (const JobRecord& record : records) infos.push_back(info_of(record));
  return infos;
}

absl::StatusOr<v1::JobInfo> FarmState::cancel(const std::string& job_id) {
  absl::MutexLock lock(&mutex_);
  return cancel_locked(job_id);
}

absl::StatusOr<uint64_t> FarmState::delete_job(const std::string& job_id) {
  absl::MutexLock lock(&mutex_);
  PESC_RETURN_IF_ERROR(cancel_locked(job_id).status());
  PESC_ASSIGN_OR_RETURN(std::vector<std::string> unused, store_->delete_job(job_id));
  uint64_t freed = 0;
  for (const std::string& sha256 : unused) {
    std::error_code error;
    uint64_t size = std::filesystem::file_size(blobs_->path_of(sha256), error);
    if (!error && std::filesystem::remove(blobs_->path_of(sha256), error)) freed += size;
  }
  changed();
  return freed;
}

absl::StatusOr<v1::JobInfo> FarmState::cancel_locked(const std::string& job_id) {
  PESC_ASSIGN_OR_RETURN(auto to_stop, store_->cancel_job(job_id, now_unix_ms()));
  forget_ended_job(job_id, to_stop);
  PESC_ASSIGN_OR_RETURN(JobRecord record, store_->job(job_id));
  return record.to_info();
}

void FarmState::forget_ended_job(const std::string& job_id, const std::vector<AttemptRecord>& to_stop) {
  active_jobs_.erase(job_id);
  gangs_.erase(job_id);
  std::map<std::string, std::vector<int64_t>> cancels;
  for (const AttemptRecord& attempt : to_stop) cancels[attempt.worker_id].push_back(attempt.id);
  tell_to_cancel(cancels);
  changed();
  dispatch();
}

void FarmState::fail_fast(const std::string& job_id, const v1::RankResult& result) {
  auto job = active_jobs_.find(job_id);
  if (job == active_jobs_.end()) return;
  FaultWatch& watch = job->second.fault_watch;
  if (result.state() == v1::RANK_STATE_SUCCEEDED) watch.any_succeeded = true;
  if (watch.any_succeeded || result.failure_class() != v1::FAILURE_CLASS_JOB) return;
  if (++watch.job_faults < std::min(job->second.spec.repetitions(), kFailFastAfter)) return;
  fail_job(job_id, result.error());
}

void FarmState::fail_job(const std::string& job_id, const std::string& failure) {
  auto to_stop = store_->fail_job(job_id, failure, now_unix_ms());
  if (!to_stop.ok()) {
    store_failed("failing a job for its own fault", to_stop.status());
    return;  // the job's next failed rank tries again
  }
  forget_ended_job(job_id, *to_stop);
}

// The workers also forget these attempts.
void FarmState::tell_to_cancel(const std::map<std::string, std::vector<int64_t>>& attempts_by_worker) {
  for (const auto& [worker_id, attempts] : attempts_by_worker) {
    auto session = sessions_.find(worker_id);
    if (session == sessions_.end()) continue;
    v1::CoordinatorMessage message;
    for (int64_t attempt : attempts) {
      session->second.attempts.erase(attempt);
      message.mutable_cancel()->add_attempt_ids(attempt);
    }
    if (session->second.outbox) {
      send_when_committed([outbox = session->second.outbox, message = std::move(message)]() mutable {
        outbox->push(std::move(message));
      });
    }
  }
}

absl::StatusOr<std::vector<v1::WorkerInfo>> FarmState::workers() {
  absl::MutexLock lock(&mutex_);
  PESC_ASSIGN_OR_RETURN(auto known, store_->workers());
  for (v1::WorkerInfo& worker : known) {
    auto session = sessions_.find(worker.id());
    if (session == sessions_.end()) continue;
    worker.set_online(session->second.outbox != nullptr);
    worker.set_quarantined(session->second.quarantined);
    for (const std::string& room : session->second.rooms) worker.add_rooms(room);
    *worker.mutable_gpus() = {session->second.gpus.begin(), session->second.gpus.end()};
    worker.set_paused(session->second.paused);
    worker.set_throttled(session->second.throttled);
    for (const auto& [domain, why] : session->second.unavailable_domains) {
      v1::UnavailableDomain& unavailable = *worker.add_unavailable_domains();
      unavailable.set_domain(domain);
      unavailable.set_why(why);
    }
    worker.set_running(static_cast<int>(session->second.started_attempts().size()));  // not those it queues
  }
  return known;
}

absl::StatusOr<std::vector<v1::RankResult>> FarmState::results_after(const std::string& job_id, int64_t after_seq) {
  absl::MutexLock lock(&mutex_);
  return store_->results_after(job_id, after_seq, kResultsPerBatch);
}

absl::StatusOr<v1::Registered> FarmState::connect_worker(const v1::RegisterWorker& registration,
                                                         const std::string& peer_ip, const std::string& credential,
                                                         std::shared_ptr<Outbox> outbox) {
  if (registration.worker_id().empty()) return absl::InvalidArgumentError("a worker must say its id");
  if (registration.slots() < 1) return absl::InvalidArgumentError("a worker needs at least one slot");
  absl::MutexLock lock(&mutex_);
  if (shutting_down_) return absl::UnavailableError("the coordinator is shutting down");
  // What it holds is weighed against what the store says it holds.
  if (!resync_if_needed()) return absl::UnavailableError("the coordinator cannot read its state store; try again");
  if (auto held = sessions_.find(registration.worker_id());
      held != sessions_.end() && !held->second.credential.empty() && held->second.credential != credential) {
    return absl::AlreadyExistsError(absl::StrCat(
        "the worker id \"", registration.worker_id(), "\" belongs to a worker that registered with another token",
        " or certificate and is connected or within its lease: give this worker an id of its own (--id), or leave",
        " --id out to have one made"));
  }
  PESC_RETURN_IF_ERROR(store_->record_worker(registration.worker_id(), registration.host(), registration.slots(),
                                             credential, now_unix_ms()));
  Session& session = sessions_[registration.worker_id()];
  session.credential = credential;
  if (session.outbox) session.outbox->close();  // a stale stream of the same worker
  session.host = registration.host();
  session.address = peer_ip.empty() ? registration.host() : peer_ip;
  session.slots = registration.slots();
  session.failures_in_a_row = 0;
  session.quarantined.clear();  // rejoining (after a fix, say) earns a new chance
  session.rooms.assign(registration.rooms().begin(), registration.rooms().end());
  if (session.rooms.empty()) session.rooms.push_back(kPublicRoom);
  session.outbox = std::move(outbox);
  session.last_heard = absl::Now();
  session.gpus.assign(registration.gpus().begin(), registration.gpus().end());
  session.paused = registration.paused_reason();
  record_pause(registration.worker_id(), session.paused);
  session.unavailable_domains.clear();
  for (const v1::UnavailableDomain& domain : registration.unavailable_domains()) {
    session.unavailable_domains[domain.domain()] = domain.why();
  }

  // What the worker holds and the coordinator still wants stays; the rest
  // is stale on one side or the other.
  std::set<int64_t> in_hand(registration.attempts_in_hand().begin(), registration.attempts_in_hand().end());
  v1::Registered registered;
  // Several heartbeats per lease, so one late beat does not lose a worker.
  registered.set_heartbeat_ms(static_cast<int32_t>(
      std::min(options_.heartbeat_interval, options_.worker_lease / 4).count()));
  std::error_code error;
  registered.set_state_dir(std::filesystem::absolute(options_.state_dir, error).string());
  std::vector<int64_t> vanished;
  for (int64_t attempt : session.attempts) {
    if (!in_hand.contains(attempt)) vanished.push_back(attempt);
  }
  for (int64_t attempt : in_hand) {
    if (!session.attempts.contains(attempt)) registered.add_stale_attempts(attempt);
  }
  for (int64_t attempt : vanished) session.attempts.erase(attempt);
  for (const v1::HeldGpus& held : registration.held_gpus()) {
    if (session.attempts.contains(held.attempt_id())) {
      session.gpus_held[held.attempt_id()].assign(held.gpus().begin(), held.gpus().end());
    }
  }
  PESC_RETURN_IF_ERROR(requeue(vanished));
  session.outbox->push([&] {
    v1::CoordinatorMessage message;
    *message.mutable_registered() = registered;
    return message;
  }());
  dispatch();
  changed();
  return registered;
}

void FarmState::worker_heard(const std::string& worker_id) {
  absl::MutexLock lock(&mutex_);
  if (auto session = sessions_.find(worker_id); session != sessions_.end()) session->second.last_heard = absl::Now();
}

void FarmState::worker_heartbeat(const std::string& worker_id, const v1::Heartbeat& heartbeat) {
  absl::MutexLock lock(&mutex_);
  auto session = sessions_.find(worker_id);
  if (session == sessions_.end()) return;
  session->second.last_heard = absl::Now();
  session->second.throttled = heartbeat.throttled_reason();
  std::vector<int64_t> returned;
  for (int64_t attempt : heartbeat.returned_attempts()) {
    if (session->second.attempts.erase(attempt) > 0) returned.push_back(attempt);
  }
  if (session->second.paused == heartbeat.paused_reason() && returned.empty()) return;
  session->second.paused = heartbeat.paused_reason();
  record_pause(worker_id, session->second.paused);
  if (requeue(returned).ok()) dispatch();
  changed();
}

void FarmState::worker_finished(const std::string& worker_id, const v1::AttemptsFinished& batch) {
  absl::MutexLock lock(&mutex_);
  auto session = sessions_.find(worker_id);
  if (session == sessions_.end()) return;
  session->second.last_heard = absl::Now();
  if (!resync_if_needed()) return;  // not acknowledged: the worker sends them again
  {
    // The results and the assignments they free room for reach the disk
    // together, in one transaction; acknowledgements and assignments go out
    // once it has committed.
    JobStore::Batch transaction(*store_);
    held_sends_.emplace();
    for (const v1::RankFinished& finished : batch.finished()) {
      if (finished.chunk_size() > 0) {
        finish_chunk(session->second, finished);
      } else if (finished.result().state() == v1::RANK_STATE_CANCELLED) {
        keep_cancelled_output(session->second, finished);
      } else {
        finish_attempt(session->second, finished);
      }
    }
    dispatch();
    std::vector<std::function<void()>> sends = *std::exchange(held_sends_, std::nullopt);
    if (absl::Status committed = transaction.commit(); !committed.ok()) {
      store_failed("recording results", committed);
    } else {
      store_writes_again();
      for (std::function<void()>& send : sends) send();
    }
  }
  resync_if_needed();
  changed();
}

void FarmState::learn_from(Session& session, const v1::RankResult& reported) {
  // A worker that paused itself (its disk is full, say: it says so before
  // the failures it caused) is out of service already, and comes back by
  // itself; a quarantine would keep it out until it reconnects.
  if (session.paused.empty()) note_worker_health(session, reported);
  if (reported.end_unix_ms() >= reported.start_unix_ms() && reported.start_unix_ms() > 0) {
    const double took = static_cast<double>(reported.end_unix_ms() - reported.start_unix_ms());
    session.typical_rank_ms = session.typical_rank_ms < 0 ? took : 0.8 * session.typical_rank_ms + 0.2 * took;
  }
}

void FarmState::finish_chunk(Session& session, const v1::RankFinished& finished) {
  session.attempts.erase(finished.attempt_id());
  session.chunk_sizes.erase(finished.attempt_id());
  for (const v1::RankResult& reported : finished.chunk()) learn_from(session, reported);
  auto accepted = store_->finish_chunk(finished.attempt_id(), {finished.chunk().begin(), finished.chunk().end()},
                                       now_unix_ms());
  if (!accepted.ok()) {
    store_failed("recording a chunk's results", accepted.status());
    return;  // not acknowledged: the worker sends it again
  }
  if (*accepted) {
    for (const v1::RankResult& result : (*accepted)->results) {
      scheduler_.charge((*accepted)->user, result.end_unix_ms() - result.start_unix_ms());
    }
    if (auto job = active_jobs_.find((*accepted)->job_id); job != active_jobs_.end()) {
      job->second.pending += (*accepted)->requeued;
    }
    for (const v1::RankResult& result : (*accepted)->results) fail_fast((*accepted)->job_id, result);
    if ((*accepted)->job_finished) active_jobs_.erase((*accepted)->job_id);
  }
  acknowledge(session, finished.attempt_id());
}

void FarmState::keep_cancelled_output(Session& session, const v1::RankFinished& finished) {
  session.attempts.erase(finished.attempt_id());
  if (absl::Status kept = store_->keep_cancelled_output(finished.attempt_id(), finished.result()); !kept.ok()) {
    store_failed("keeping a cancelled rank's output", kept);
    return;  // not acknowledged: the worker sends it again
  }
  acknowledge(session, finished.attempt_id());
}

void FarmState::finish_attempt(Session& session, const v1::RankFinished& finished) {
  session.attempts.erase(finished.attempt_id());
  const v1::RankResult& reported = finished.result();
  learn_from(session, reported);
  auto accepted = store_->finish_attempt(finished.attempt_id(), reported, now_unix_ms());
  if (!accepted.ok()) {
    store_failed("recording a result", accepted.status());
    return;  // not acknowledged: the worker sends it again
  }
  if (*accepted) {
    const v1::RankResult& result = (*accepted)->result;
    std::map<std::string, std::vector<int64_t>> losers;  // a straggler's other attempts
    for (const AttemptRecord& superseded : (*accepted)->superseded) losers[superseded.worker_id].push_back(superseded.id);
    tell_to_cancel(losers);
    scheduler_.charge((*accepted)->user, result.end_unix_ms() - result.start_unix_ms());
    if ((*accepted)->requeued) {
      if (auto job = active_jobs_.find((*accepted)->job_id); job != active_jobs_.end()) job->second.pending += 1;
    }
    fail_fast((*accepted)->job_id, result);
    if ((*accepted)->job_finished) {
      active_jobs_.erase((*accepted)->job_id);
      gangs_.erase((*accepted)->job_id);
    } else if (result.state() != v1::RANK_STATE_SUCCEEDED && gangs_.contains((*accepted)->job_id)) {
      // Its partners cannot finish without it: all go again together, or,
      // when it has no attempts left, the gang ends.
      if ((*accepted)->requeued) {
        (void)requeue({finished.attempt_id()});  // a failure is logged and retried there
      } else if (result.failure_class() == v1::FAILURE_CLASS_JOB) {
        fail_job((*accepted)->job_id, result.error());  // every restart would fail the same way
      } else if (auto cancelled = cancel_locked((*accepted)->job_id); !cancelled.ok()) {
        store_failed("cancelling a gang that failed for good", cancelled.status());
      }
    }
  }
  acknowledge(session, finished.attempt_id());
}

void FarmState::acknowledge(const Session& session, int64_t attempt_id) {
  if (!session.outbox) return;
  send_when_committed([outbox = session.outbox, attempt_id] { outbox->acknowledge(attempt_id); });
}

int FarmState::prefetch_for(const Session& session) const {
  if (session.typical_rank_ms < 0) return options_.prefetch_per_slot;
  // Ranks times are whole milliseconds, so sub-millisecond ranks average
  // below 1 and count as what they are.
  const double enough = kPrefetchHorizonMs / std::max(0.1, session.typical_rank_ms);
  return std::clamp(static_cast<int>(enough), options_.prefetch_per_slot, kMaxPrefetchPerSlot);
}

void FarmState::note_worker_health(Session& session, const v1::RankResult& result) {
  // A job's own mistakes (a file that cannot run, say) fail on any worker
  // and tell nothing about this one.
  if (result.failure_class() == v1::FAILURE_CLASS_JOB) return;
  if (result.failure_class() != v1::FAILURE_CLASS_WORKER) {
    session.failures_in_a_row = 0;
    return;
  }
  if (++session.failures_in_a_row >= kQuarantineAfter && session.quarantined.empty()) {
    session.quarantined = absl::StrCat(session.failures_in_a_row, " ranks in a row could not start: ", result.error());
  }
}

void FarmState::worker_checkpoint(const std::string& worker_id, const v1::CheckpointSaved& saved) {
  absl::MutexLock lock(&mutex_);
  if (auto session = sessions_.find(worker_id); session != sessions_.end()) session->second.last_heard = absl::Now();
  // Lost to a failure, it is saved again at the next interval.
  if (absl::Status saved_status = store_->save_checkpoint(saved.attempt_id(), saved.checkpoint()); !saved_status.ok()) {
    store_failed("saving a checkpoint", saved_status);
  }
}

void FarmState::disconnect_worker(const std::string& worker_id, const Outbox* outbox) {
  absl::MutexLock lock(&mutex_);
  auto session = sessions_.find(worker_id);
  if (session == sessions_.end() || session->second.outbox.get() != outbox) return;  // already replaced
  session->second.outbox->close();
  session->second.outbox.reset();
  record_pause(worker_id, "");  // away is not paused; it says again when it is back
  changed();
}

void FarmState::record_pause(const std::string& worker_id, const std::string& reason) {
  if (absl::Status recorded = store_->record_pause(worker_id, reason, now_unix_ms()); !recorded.ok()) {
    std::cerr << "pesc coordinator: recording whether worker " << worker_id
              << " is paused failed (job reports count that time as idle): " << recorded.message() << std::endl;
  }
}

void FarmState::cut_silent_workers() {
  const absl::Time cutoff = absl::Now() - absl::FromChrono(options_.worker_lease);
  for (auto& [worker_id, session] : sessions_) {
    if (session.outbox && session.last_heard < cutoff) session.outbox->close();
  }
}

absl::Status FarmState::requeue(const std::vector<int64_t>& attempts) {
  if (attempts.empty()) return absl::OkStatus();
  std::vector<int64_t> with_gangs = stop_gangs_of(attempts);
  with_gangs.insert(with_gangs.end(), attempts.begin(), attempts.end());
  if (absl::Status requeued = store_->requeue_attempts(with_gangs); !requeued.ok()) {
    requeue_later_.insert(with_gangs.begin(), with_gangs.end());
    store_failed("putting ranks back in the queue", requeued);
    return requeued;
  }
  // Workers that still hold any of them let go.
  const std::set<int64_t> requeued(with_gangs.begin(), with_gangs.end());
  std::map<std::string, std::vector<int64_t>> taken_back;
  for (const auto& [worker_id, session] : sessions_) {
    for (int64_t attempt : session.attempts) {
      if (requeued.contains(attempt)) taken_back[worker_id].push_back(attempt);
    }
  }
  tell_to_cancel(taken_back);
  // The store knows which jobs got ranks back; take its counts.
  auto running = store_->running_jobs();
  if (!running.ok()) {
    store_failed("reading the jobs' counts", running.status());
    return running.status();
  }
  for (const JobRecord& record : *running) {
    if (auto job = active_jobs_.find(record.id); job != active_jobs_.end()) {
      job->second.pending = record.progress.pending();
    }
  }
  return absl::OkStatus();
}

// Ranks of workers that stayed away past their lease go back to the queue.
void FarmState::requeue_expired() {
  absl::Time cutoff = absl::Now() - absl::FromChrono(options_.worker_lease);
  std::vector<int64_t> lost;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    Session& session = it->second;
    if (session.outbox || session.last_heard >= cutoff) {
      ++it;
      continue;
    }
    lost.insert(lost.end(), session.attempts.begin(), session.attempts.end());
    // Same-machine jobs on the lost worker start over on another one.
    for (auto& [job_id, job] : active_jobs_) {
      if (job.pinned_worker == it->first) job.pinned_worker.clear();
    }
    it = sessions_.erase(it);
  }
  if (lost.empty() || !requeue(lost).ok()) return;  // a failed requeue is retried by the reaper
  dispatch();
  changed();
}

void FarmState::retry_requeue() {
  if (requeue_later_.empty()) return;
  const std::set<int64_t> attempts = std::exchange(requeue_later_, {});
  if (requeue({attempts.begin(), attempts.end()}).ok()) changed();
}

void FarmState::reaper_loop() {
  while (true) {
    absl::MutexLock lock(&mutex_);
    mutex_.AwaitWithTimeout(absl::Condition(&shutting_down_), absl::Milliseconds(250));
    if (shutting_down_) return;
    if (!resync_if_needed()) continue;
    retry_requeue();
    cut_silent_workers();
    requeue_expired();
    dispatch();  // ranks become stragglers with time alone, and dispatch is retried after a store failure
  }
}

QueuedJob FarmState::queued(const std::string& job_id, const ActiveJob& job) {
  QueuedJob entry;
  entry.job_id = job_id;
  entry.user = job.spec.user();
  entry.created_unix_ms = job.created_unix_ms;
  entry.pending = job.pending;
  if (!job.spec.rooms().empty()) entry.rooms.assign(job.spec.rooms().begin(), job.spec.rooms().end());
  entry.same_machine = job.spec.same_machine();
  entry.pinned_worker = job.pinned_worker;
  entry.gpus_per_rank = job.spec.gpus_per_rank();
  entry.min_capability = job.spec.min_capability();
  entry.domain = job.spec.domain();
  return entry;
}

std::string FarmState::why_waiting(const std::string& job_id) {
  auto job = active_jobs_.find(job_id);
  if (job == active_jobs_.end() || job->second.pending <= 0) return "";
  // A worker started together with the job may still be joining.
  if (now_unix_ms() - job->second.created_unix_ms < absl::ToInt64Milliseconds(kWaitingGrace)) return "";
  std::vector<ConnectedWorker> workers;
  for (const auto& [worker_id, session] : sessions_) {
    if (!session.outbox) continue;
    std::string unavailable;
    if (!session.quarantined.empty()) unavailable = "quarantined: " + session.quarantined;
    if (!session.paused.empty()) unavailable = "paused: " + session.paused;
    workers.push_back({.capacity = {.worker_id = worker_id,
                                    .rooms = session.rooms,
                                    .free_gpus = all_gpus(session),
                                    .unavailable_domains = session.unavailable_domains},
                       .unavailable = unavailable});
  }
  std::string why = pesc::why_waiting(queued(job_id, job->second), workers);
  if (why.empty() && job->second.spec.parallel()) why = gang_shortfall(job_id, job->second);
  return why;
}

v1::JobInfo FarmState::info_of(const JobRecord& record) {
  v1::JobInfo info = record.to_info();
  v1::JobProgress& progress = *info.mutable_progress();
  progress.set_waiting(why_waiting(record.id));
  if (record.state == v1::JOB_STATE_RUNNING) {
    // Counted a moment ago, so never more than the ranks running now.
    progress.set_queued_at_workers(std::min(queued_at_workers(record.id), progress.running()));
    progress.set_running(progress.running() - progress.queued_at_workers());
  }
  return info;
}

int FarmState::queued_at_workers(const std::string& job_id) {
  if (absl::Now() - queued_counted_at_ >= kQueuedRecount) {
    count_queued_at_workers();
  } else if (std::exchange(queued_stale_, false)) {
    events_.published_at(queued_counted_at_ + kQueuedRecount);  // watchers read the count again then
  }
  auto queued = queued_by_job_.find(job_id);
  return queued == queued_by_job_.end() ? 0 : queued->second;
}

void FarmState::count_queued_at_workers() {
  queued_counted_at_ = absl::Now();
  queued_stale_ = false;
  queued_by_job_.clear();
  absl::StatusOr<std::vector<AttemptRecord>> attempts = store_->running_attempts();
  if (!attempts.ok()) return;  // every rank sent counts as running, as before workers queued
  std::map<std::string, std::set<int64_t>> started_by_worker;
  for (const AttemptRecord& attempt : *attempts) {
    auto session = sessions_.find(attempt.worker_id);
    if (session == sessions_.end()) continue;
    auto [started, first_seen] = started_by_worker.try_emplace(attempt.worker_id);
    if (first_seen) started->second = session->second.started_attempts();
    const bool in_a_slot = started->second.contains(attempt.id);
    queued_by_job_[attempt.job_id] += in_a_slot ? attempt.rank_count - 1 : attempt.rank_count;
  }
}

// Online workers that may get ranks, with the assignments each may take.
std::vector<WorkerCapacity> FarmState::worker_capacity() const {
  std::vector<WorkerCapacity> capacity;
  for (auto& [worker_id, session] : sessions_) {
    if (!session.outbox || !session.quarantined.empty() || !session.paused.empty()) continue;
    int limit = session.slots * (1 + prefetch_for(session));
    capacity.push_back({.worker_id = worker_id,
                        .free = limit - session.ranks_held(),
                        .rooms = session.rooms,
                        .slots = session.slots,
                        .free_gpus = free_gpus(session),
                        .unavailable_domains = session.unavailable_domains});
  }
  return capacity;
}

// Workers not held for a gang, each with its idle slots as `free` (gang
// ranks and duplicates must start at once, not queue behind other ranks).
std::vector<WorkerCapacity> FarmState::idle_slots(const std::set<std::string>& held) const {
  std::vector<WorkerCapacity> workers = worker_capacity();
  std::erase_if(workers, [&](const WorkerCapacity& worker) { return held.contains(worker.worker_id); });
  for (WorkerCapacity& worker : workers) {
    worker.free = worker.slots - static_cast<int>(sessions_.at(worker.worker_id).attempts.size());
  }
  return workers;
}

// After a store failure each step stops; the reaper tries again shortly.
void FarmState::dispatch() {
  if (!resync_if_needed()) return;
  const std::set<std::string> held = dispatch_gangs();
  if (!resync_needed_) dispatch_queued(held);
  if (!resync_needed_) dispatch_duplicates(held);
}

void FarmState::dispatch_queued(const std::set<std::string>& held) {
  std::vector<QueuedJob> queued_jobs;
  for (const auto& [job_id, job] : active_jobs_) {
    if (job.pending > 0 && !job.spec.parallel()) queued_jobs.push_back(queued(job_id, job));
  }
  if (queued_jobs.empty()) return;
  std::vector<WorkerCapacity> capacity = worker_capacity();
  std::erase_if(capacity, [&](const WorkerCapacity& worker) { return held.contains(worker.worker_id); });
  std::vector<Placement> placements = scheduler_.place(std::move(queued_jobs), std::move(capacity));
  std::map<std::string, std::vector<size_t>> placements_of_job;
  for (size_t i = 0; i < placements.size(); ++i) placements_of_job[placements[i].job_id].push_back(i);
  int online_slots = 0;
  for (const auto& [worker_id, session] : sessions_) {
    if (session.outbox) online_slots += session.slots;
  }
  // Started per job in one store call; sent in the scheduler's order.
  std::map<size_t, JobStore::StartedAttempt> started_at;
  for (const auto& [job_id, indices] : placements_of_job) {
    if (!resync_needed_) start_placed(job_id, placements, indices, online_slots, started_at);
  }
  for (const auto& [index, attempt] : started_at) {
    const Placement& placement = placements[index];
    dispatched(placement.job_id, active_jobs_[placement.job_id], attempt, placement.gpus);
  }
}

void FarmState::start_placed(const std::string& job_id, const std::vector<Placement>& placements,
                             const std::vector<size_t>& indices, int online_slots,
                             std::map<size_t, JobStore::StartedAttempt>& started_at) {
  auto pending = store_->pending_ranks(job_id, static_cast<int>(indices.size()));
  if (!pending.ok()) return store_failed("finding pending ranks", pending.status());
  ActiveJob& job = active_jobs_[job_id];
  // Workers that take this job in chunks get blocks of consecutive ranks
  // from the front; each other placement gets one rank.
  struct Chunked {
    std::string worker_id;
    int chunk = 0;  // ranks per chunk on it
    int ranks = 0;  // its placements
  };
  std::vector<Chunked> chunked;  // in placement order
  std::vector<size_t> single;
  for (size_t index : indices) {
    const std::string& worker_id = placements[index].worker_id;
    auto same = std::find_if(chunked.begin(), chunked.end(), [&](const Chunked& c) { return c.worker_id == worker_id; });
    if (same != chunked.end()) {
      same->ranks += 1;
    } else if (const int chunk = chunk_size(sessions_.at(worker_id), job, online_slots); chunk > 1) {
      chunked.push_back({.worker_id = worker_id, .chunk = chunk, .ranks = 1});
    } else {
      single.push_back(index);
    }
  }
  size_t next = 0;
  for (const Chunked& worker : chunked) {
    std::vector<int> block;
    for (; next < pending->size() && static_cast<int>(block.size()) < worker.ranks; ++next) {
      block.push_back((*pending)[next]);
    }
    assign_chunks(job_id, job, worker.worker_id, std::move(block), worker.chunk);
  }
  std::vector<JobStore::Placed> placed;
  std::map<int, size_t> placement_of_rank;
  for (size_t i = 0; next < pending->size() && i < single.size(); ++i, ++next) {
    placed.push_back({.rank = (*pending)[next], .worker_id = placements[single[i]].worker_id});
    placement_of_rank[(*pending)[next]] = single[i];
  }
  if (placed.empty()) return;
  auto started = store_->start_attempts(job_id, placed, now_unix_ms());
  if (!started.ok()) return store_failed("starting attempts", started.status());
  for (JobStore::StartedAttempt& attempt : *started) started_at[placement_of_rank[attempt.rank]] = std::move(attempt);
}

std::set<int64_t> FarmState::Session::started_attempts() const {
  auto end = attempts.begin();
  std::advance(end, std::min<size_t>(attempts.size(), static_cast<size_t>(std::max(0, slots))));
  return std::set<int64_t>(attempts.begin(), end);
}

int FarmState::Session::ranks_held() const {
  int held = 0;
  for (int64_t attempt : attempts) {
    auto chunk = chunk_sizes.find(attempt);
    held += chunk == chunk_sizes.end() ? 1 : chunk->second;
  }
  return held;
}

int FarmState::chunk_size(const Session& session, const ActiveJob& job, int online_slots) {
  // Only warm runners make a rank cheap enough for the rest to matter, and
  // gangs, GPUs and checkpoints are per rank.
  if (!job.spec.warm_runner() || job.spec.parallel() || job.spec.gpus_per_rank() > 0 ||
      job.spec.checkpoint_interval_ms() > 0 || session.typical_rank_ms < 0) {
    return 1;
  }
  const int by_time = static_cast<int>(kChunkHorizonMs / std::max(0.1, session.typical_rank_ms));
  const int by_tail = job.pending / (kChunksPerSlotAtLeast * std::max(1, online_slots));
  return std::clamp(std::min(by_time, by_tail), 1, kMaxChunk);
}

void FarmState::assign_chunks(const std::string& job_id, ActiveJob& job, const std::string& worker_id,
                              std::vector<int> ranks, int chunk) {
  std::sort(ranks.begin(), ranks.end());
  for (size_t first = 0; first < ranks.size();) {
    size_t end = first + 1;
    while (end < ranks.size() && ranks[end] == ranks[end - 1] + 1 && static_cast<int>(end - first) < chunk) ++end;
    const int count = static_cast<int>(end - first);
    absl::StatusOr<JobStore::StartedAttempt> started =
        count == 1 ? store_->start_attempt(job_id, ranks[first], worker_id, now_unix_ms())
                   : store_->start_chunk(job_id, ranks[first], count, worker_id, now_unix_ms());
    if (!started.ok()) return store_failed("starting a chunk", started.status());
    dispatched(job_id, job, *started);
    first = end;
  }
}

// Uneven desktops must not hold a job's tail: with the job's queue empty, a
// rank running well past the typical rank time of its worker or of an idle
// one (the shorter) also starts on that idle worker, fastest worker first,
// and the first success wins (finish_attempt stops the other).
void FarmState::dispatch_duplicates(const std::set<std::string>& held) {
  // No rank is a straggler before kStragglerMinMs, nor older than its job:
  // until some job is that old there is nothing to look for, and looking
  // costs a pass over every worker and a query (issue 15: after every batch
  // of results).
  // Nor is a straggler missed for long when looked for a few times a second
  // rather than after every batch of results.
  const int64_t now = now_unix_ms();
  if (now - straggler_scan_unix_ms_ < kStragglerScanMs ||
      std::none_of(active_jobs_.begin(), active_jobs_.end(), [&](const auto& job) {
        return static_cast<double>(now - job.second.created_unix_ms) >= kStragglerMinMs;
      })) {
    return;
  }
  straggler_scan_unix_ms_ = now;
  std::vector<WorkerCapacity> idle = idle_slots(held);
  std::erase_if(idle, [](const WorkerCapacity& worker) { return worker.free <= 0; });
  if (idle.empty()) return;
  auto typical_ms = [&](const std::string& worker_id) {
    const double typical = sessions_.at(worker_id).typical_rank_ms;
    return typical < 0 ? std::numeric_limits<double>::infinity() : typical;
  };
  std::stable_sort(idle.begin(), idle.end(), [&](const WorkerCapacity& a, const WorkerCapacity& b) {
    return typical_ms(a.worker_id) < typical_ms(b.worker_id);
  });
  for (const auto& [job_id, job] : active_jobs_) {
    if (static_cast<double>(now - job.created_unix_ms) < kStragglerMinMs) continue;
    // A GPU rank's duplicate would need GPUs of its own; not worth holding them.
    if (job.pending > 0 || job.spec.no_duplicates() || job.spec.parallel() || job.spec.same_machine() ||
        job.spec.gpus_per_rank() > 0) {
      continue;
    }
    auto running = store_->running_attempts(job_id);
    if (!running.ok()) return store_failed("finding stragglers", running.status());
    std::map<int, int> attempts_of_rank;
    for (const AttemptRecord& attempt : *running) attempts_of_rank[attempt.rank] += 1;
    const QueuedJob placement_rules = queued(job_id, job);
    for (const AttemptRecord& attempt : *running) {  // longest running first
      if (static_cast<double>(now - attempt.started_unix_ms) < kStragglerMinMs) continue;
      if (attempt.rank_count > 1 || attempts_of_rank[attempt.rank] > 1 || !sessions_.contains(attempt.worker_id)) {
        continue;
      }
      auto helper = std::find_if(idle.begin(), idle.end(), [&](const WorkerCapacity& worker) {
        return worker.free > 0 && worker.worker_id != attempt.worker_id && may_run_on(placement_rules, worker);
      });
      if (helper == idle.end()) continue;
      const double expected_ms = std::min(typical_ms(helper->worker_id), typical_ms(attempt.worker_id));
      const auto ran_ms = static_cast<double>(now - attempt.started_unix_ms);
      if (ran_ms < std::max(kStragglerMinMs, kStragglerFactor * expected_ms)) continue;
      auto started = store_->start_duplicate(job_id, attempt.rank, helper->worker_id, now);
      if (!started.ok()) return store_failed("starting a straggler's duplicate", started.status());
      send_attempt(job_id, job.spec, helper->worker_id, attempt.rank, *started);
      attempts_of_rank[attempt.rank] += 1;
      helper->free -= 1;
    }
  }
}

// Oldest first, so a younger gang never takes the slots an older one waits
// for; each waits on its own held workers, so gangs cannot deadlock.
std::set<std::string> FarmState::dispatch_gangs() {
  std::vector<std::pair<int64_t, std::string>> waiting;  // created, job id
  for (const auto& [job_id, job] : active_jobs_) {
    if (job.spec.parallel() && job.pending > 0 && !gangs_.contains(job_id)) {
      waiting.emplace_back(job.created_unix_ms, job_id);
    }
  }
  std::set<std::string> held;
  std::sort(waiting.begin(), waiting.end());
  for (const auto& [created_unix_ms, job_id] : waiting) {
    ActiveJob& job = active_jobs_.at(job_id);
    GangPlan plan = plan_gang(queued(job_id, job), idle_slots(held));
    held.insert(plan.held.begin(), plan.held.end());
    if (!plan.placements.empty()) launch_gang(job_id, job, plan.placements);
    if (resync_needed_) break;
  }
  return held;
}

// Sends every rank of the gang to its worker; they hold their slots until
// start_gang.
void FarmState::launch_gang(const std::string& job_id, ActiveJob& job, const std::vector<Placement>& placements) {
  auto ranks = store_->pending_ranks(job_id, static_cast<int>(placements.size()));
  if (!ranks.ok()) return store_failed("finding a gang's ranks", ranks.status());
  if (ranks->size() != placements.size()) return;
  GangLaunch& launch = gangs_[job_id];
  for (size_t i = 0; i < placements.size(); ++i) {
    absl::StatusOr<int64_t> attempt = assign(job_id, job, placements[i].worker_id, (*ranks)[i]);
    if (!attempt.ok()) {
      store_failed("starting a gang", attempt.status());
      std::vector<int64_t> placed;
      for (const auto& [placed_attempt, worker_id] : launch.worker_of) placed.push_back(placed_attempt);
      (void)requeue(placed);  // its failure is retried there
      gangs_.erase(job_id);  // so that the next dispatch tries again
      return;
    }
    launch.worker_of[*attempt] = placements[i].worker_id;
    launch.not_ready.insert(*attempt);
    if (i == 0) launch.master_attempt = *attempt;  // ranks come lowest first
  }
}

void FarmState::worker_gang_ready(const std::string& worker_id, const v1::GangReady& ready) {
  absl::MutexLock lock(&mutex_);
  if (auto session = sessions_.find(worker_id); session != sessions_.end()) session->second.last_heard = absl::Now();
  for (auto& [job_id, launch] : gangs_) {
    auto attempt = launch.worker_of.find(ready.attempt_id());
    if (attempt == launch.worker_of.end() || attempt->second != worker_id) continue;
    if (!launch.master_addr.empty()) {
      send_gang_start(launch, worker_id);  // it reconnected after the start; the first one is lost
      return;
    }
    launch.not_ready.erase(ready.attempt_id());
    if (ready.attempt_id() == launch.master_attempt) launch.master_port = ready.free_port();
    if (launch.not_ready.empty()) start_gang(launch);
    return;
  }
}

void FarmState::start_gang(GangLaunch& launch) {
  auto master = sessions_.find(launch.worker_of.at(launch.master_attempt));
  if (master == sessions_.end()) return;  // lost meanwhile: the gang goes back to the queue
  launch.master_addr = master->second.address;
  std::set<std::string> workers;
  for (const auto& [attempt, worker_id] : launch.worker_of) workers.insert(worker_id);
  for (const std::string& worker_id : workers) send_gang_start(launch, worker_id);
}

void FarmState::send_gang_start(const GangLaunch& launch, const std::string& worker_id) {
  auto session = sessions_.find(worker_id);
  if (session == sessions_.end() || !session->second.outbox) return;
  v1::CoordinatorMessage message;
  v1::StartGang& start = *message.mutable_start_gang();
  start.set_master_addr(launch.master_addr);
  start.set_master_port(launch.master_port);
  for (const auto& [attempt, gang_worker] : launch.worker_of) {
    if (gang_worker == worker_id) start.add_attempt_ids(attempt);
  }
  send_when_committed([outbox = session->second.outbox, message = std::move(message)]() mutable {
    outbox->push(std::move(message));
  });
}

std::vector<int64_t> FarmState::stop_gangs_of(const std::vector<int64_t>& attempts) {
  std::vector<int64_t> stopped;
  std::map<std::string, std::vector<int64_t>> cancels;
  for (auto gang = gangs_.begin(); gang != gangs_.end();) {
    const auto& worker_of = gang->second.worker_of;
    if (std::none_of(attempts.begin(), attempts.end(), [&](int64_t a) { return worker_of.contains(a); })) {
      ++gang;
      continue;
    }
    for (const auto& [attempt, worker_id] : worker_of) {
      stopped.push_back(attempt);
      cancels[worker_id].push_back(attempt);
    }
    gang = gangs_.erase(gang);
  }
  tell_to_cancel(cancels);
  return stopped;
}

std::vector<FreeGpu> FarmState::all_gpus(const Session& session) {
  std::vector<FreeGpu> gpus;
  for (const v1::Gpu& gpu : session.gpus) gpus.push_back({gpu.index(), gpu.compute_capability()});
  return gpus;
}

std::vector<FreeGpu> FarmState::free_gpus(const Session& session) {
  std::set<int> held;
  for (const auto& [attempt, indices] : session.gpus_held) {
    if (session.attempts.contains(attempt)) held.insert(indices.begin(), indices.end());
  }
  std::vector<FreeGpu> free = all_gpus(session);
  std::erase_if(free, [&](const FreeGpu& gpu) { return held.contains(gpu.index); });
  return free;
}

absl::StatusOr<int64_t> FarmState::assign(const std::string& job_id, ActiveJob& job, const std::string& worker_id,
                                          int rank, const std::vector<int>& gpus) {
  PESC_ASSIGN_OR_RETURN(JobStore::StartedAttempt started,
                        store_->start_attempt(job_id, rank, worker_id, now_unix_ms()));
  dispatched(job_id, job, started, gpus);
  return started.id;
}

void FarmState::dispatched(const std::string& job_id, ActiveJob& job, const JobStore::StartedAttempt& started,
                           const std::vector<int>& gpus) {
  job.pending -= started.rank_count;
  if (job.spec.same_machine()) job.pinned_worker = started.worker_id;
  send_attempt(job_id, job.spec, started.worker_id, started.rank, started, gpus);
}

void FarmState::send_attempt(const std::string& job_id, const v1::JobSpec& spec, const std::string& worker_id,
                             int rank, const JobStore::StartedAttempt& started, const std::vector<int>& gpus) {
  Session& session = sessions_[worker_id];
  session.attempts.insert(started.id);
  std::erase_if(session.gpus_held, [&](const auto& held) { return !session.attempts.contains(held.first); });
  std::erase_if(session.chunk_sizes, [&](const auto& chunk) { return !session.attempts.contains(chunk.first); });
  if (!gpus.empty()) session.gpus_held[started.id] = gpus;
  if (started.rank_count > 1) session.chunk_sizes[started.id] = started.rank_count;
  v1::Assignment assignment;
  if (started.rank_count > 1) assignment.set_rank_count(started.rank_count);
  *assignment.mutable_gpus() = {gpus.begin(), gpus.end()};
  assignment.set_attempt_id(started.id);
  if (!started.checkpoint.sha256().empty()) *assignment.mutable_checkpoint() = started.checkpoint;
  assignment.set_timeout_ms(spec.timeout_ms());
  assignment.set_checkpoint_interval_ms(spec.checkpoint_interval_ms());
  assignment.set_warm_runner(spec.warm_runner());
  if (spec.has_seed()) assignment.set_seed(spec.seed());
  *assignment.mutable_shared() = spec.shared();
  *assignment.mutable_limits() = spec.limits();
  // A gang's ranks meet over the network.
  assignment.set_network(spec.network() || spec.parallel());
  assignment.set_gang(spec.parallel());
  assignment.set_job_id(job_id);
  assignment.set_rank(rank);
  assignment.set_world_size(spec.repetitions());
  assignment.set_domain(spec.domain());
  assignment.set_process_kind(spec.process_kind());
  *assignment.mutable_process() = spec.process();
  assignment.set_entry(spec.entry());
  *assignment.mutable_parameters() = spec.parameters();
  // The rank contract's defaults; a gang learns its own with StartGang.
  assignment.set_master_addr("127.0.0.1");
  assignment.set_master_port(9000);
  send_when_committed([outbox = session.outbox, assignment = std::move(assignment)]() mutable {
    outbox->assign(std::move(assignment));
  });
}

void FarmState::changed() {
  queued_stale_ = true;
  events_.published();  // watchers read under mutex_, so after any open batch commits
}

bool FarmState::shutting_down() {
  absl::MutexLock lock(&mutex_);
  return shutting_down_;
}

void FarmState::shut_down() {
  absl::MutexLock lock(&mutex_);
  shutting_down_ = true;
  for (auto& [worker_id, session] : sessions_) {
    if (session.outbox) session.outbox->close();
  }
  changed();
}

}  // namespace pesc
