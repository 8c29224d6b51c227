#include "coordinator/farm_state.h"

#include <algorithm>
#include <limits>
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

}  // namespace

void Outbox::assign(v1::Assignment assignment) {
  absl::MutexLock lock(&mutex_);
  if (closed_) return;
  const size_t bytes = assignment.ByteSizeLong();
  *joinable(v1::CoordinatorMessage::kAssignBatch, bytes).mutable_assign_batch()->add_assignments() =
      std::move(assignment);
}

void Outbox::acknowledge(int64_t attempt_id) {
  absl::MutexLock lock(&mutex_);
  if (closed_) return;
  joinable(v1::CoordinatorMessage::kAck, sizeof attempt_id).mutable_ack()->add_attempt_ids(attempt_id);
}

v1::CoordinatorMessage& Outbox::joinable(v1::CoordinatorMessage::MessageCase kind, size_t adding_bytes) {
  if (queue_.empty() || queue_.back().message_case() != kind || last_bytes_ + adding_bytes > kBatchBytes) {
    queue_.emplace_back();
    last_bytes_ = 0;
    ready_.Signal();
  }
  last_bytes_ += adding_bytes;
  return queue_.back();
}

void Outbox::push(v1::CoordinatorMessage message) {
  absl::MutexLock lock(&mutex_);
  if (closed_) return;
  queue_.push_back(std::move(message));
  last_bytes_ = kBatchBytes;  // nothing joins a message of another kind
  ready_.Signal();
}

std::optional<v1::CoordinatorMessage> Outbox::pop(absl::Duration timeout) {
  absl::MutexLock lock(&mutex_);
  absl::Time deadline = absl::Now() + timeout;
  while (!closed_ && queue_.empty()) {
    if (ready_.WaitWithDeadline(&mutex_, deadline)) break;
  }
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
  absl::MutexLock lock(&mutex_);
  closed_ = true;
  ready_.SignalAll();
}

absl::StatusOr<std::unique_ptr<FarmState>> FarmState::open(CoordinatorOptions options) {
  std::error_code error;
  options.state_dir = std::filesystem::absolute(options.state_dir, error);
  std::filesystem::create_directories(options.state_dir, error);
  if (error) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create the state directory ", options.state_dir.string(), ": ", error.message()));
  }
  PESC_ASSIGN_OR_RETURN(auto store, JobStore::open(options.state_dir / "pesc.sqlite"));
  PESC_ASSIGN_OR_RETURN(auto blobs, BlobStore::open(options.state_dir / "blobs"));
  auto state = std::unique_ptr<FarmState>(new FarmState(options, std::move(store), std::move(blobs)));
  {
    absl::MutexLock lock(&state->mutex_);
    PESC_RETURN_IF_ERROR(state->recover());
  }
  state->reaper_ = std::make_unique<std::thread>([raw = state.get()] { raw->reaper_loop(); });
  return state;
}

FarmState::FarmState(CoordinatorOptions options, std::unique_ptr<JobStore> store, std::unique_ptr<BlobStore> blobs)
    : options_(std::move(options)), blobs_(std::move(blobs)), store_(std::move(store)) {}

FarmState::~FarmState() {
  shut_down();
  if (reaper_ && reaper_->joinable()) reaper_->join();
}

// After a restart the running attempts belong to workers that have not
// reconnected yet; they get one lease to come back and claim them.
absl::Status FarmState::recover() {
  PESC_ASSIGN_OR_RETURN(auto usage, store_->usage_by_user());
  scheduler_.set_usage(std::move(usage));
  PESC_RETURN_IF_ERROR(restart_recovered_gangs());
  PESC_ASSIGN_OR_RETURN(auto running, store_->running_jobs());
  for (JobRecord& job : running) {
    ActiveJob& active = active_jobs_[job.id] = ActiveJob{std::move(job.spec), job.created_unix_ms, job.progress.pending()};
    if (!active.spec.same_machine()) continue;
    PESC_ASSIGN_OR_RETURN(active.pinned_worker, store_->latest_worker(job.id));
    // Its worker gets a lease to come back, like one holding attempts;
    // past it the pin goes (requeue_expired).
    if (!active.pinned_worker.empty()) sessions_[active.pinned_worker].last_heard = absl::Now();
  }
  PESC_ASSIGN_OR_RETURN(auto attempts, store_->running_attempts());
  for (const AttemptRecord& attempt : attempts) {
    Session& session = sessions_[attempt.worker_id];
    session.attempts.insert(attempt.id);
    if (attempt.rank_count > 1) session.chunk_sizes[attempt.id] = attempt.rank_count;
    session.last_heard = absl::Now();
  }
  return absl::OkStatus();
}

// Whether a gang had started died with the last coordinator's memory (its
// ranks may still be waiting for the start), so every gang starts over.
absl::Status FarmState::restart_recovered_gangs() {
  PESC_ASSIGN_OR_RETURN(auto running, store_->running_jobs());
  std::set<std::string> gang_jobs;
  for (const JobRecord& job : running) {
    if (job.spec.parallel()) gang_jobs.insert(job.id);
  }
  if (gang_jobs.empty()) return absl::OkStatus();
  PESC_ASSIGN_OR_RETURN(auto attempts, store_->running_attempts());
  std::vector<int64_t> gang_attempts;
  for (const AttemptRecord& attempt : attempts) {
    if (gang_jobs.contains(attempt.job_id)) gang_attempts.push_back(attempt.id);
  }
  return store_->requeue_attempts(gang_attempts);
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
  absl::MutexLock lock(&mutex_);
  if (shutting_down_) return absl::UnavailableError("the coordinator is shutting down");
  std::string job_id = random_hex(6);
  int64_t now = now_unix_ms();
  PESC_RETURN_IF_ERROR(store_->create_job(job_id, spec, now));
  int repetitions = spec.repetitions();
  active_jobs_[job_id] = ActiveJob{std::move(spec), now, repetitions};
  dispatch();
  changed();
  return job_id;
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
  return info_of(record);
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
  if (!to_stop.ok()) return;  // the job runs on and its ranks fail one by one
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
    if (session->second.outbox) session->second.outbox->push(std::move(message));
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
    worker.set_running(static_cast<int>(session->second.attempts.size()));
  }
  return known;
}

absl::StatusOr<std::vector<v1::RankResult>> FarmState::results_after(const std::string& job_id, int64_t after_seq,
                                                                    absl::Duration wait) {
  absl::MutexLock lock(&mutex_);
  PESC_ASSIGN_OR_RETURN(auto results, store_->results_after(job_id, after_seq, kResultsPerBatch));
  if (!results.empty() || wait <= absl::ZeroDuration()) return results;
  if (!active_jobs_.contains(job_id)) return results;  // final: nothing more will come
  uint64_t seen = generation_;
  absl::Time deadline = absl::Now() + wait;
  while (generation_ == seen && !shutting_down_) {
    if (changed_.WaitWithDeadline(&mutex_, deadline)) break;
  }
  return store_->results_after(job_id, after_seq, kResultsPerBatch);
}

absl::StatusOr<v1::Registered> FarmState::connect_worker(const v1::RegisterWorker& registration,
                                                         const std::string& peer_ip, std::shared_ptr<Outbox> outbox) {
  if (registration.worker_id().empty()) return absl::InvalidArgumentError("a worker must say its id");
  if (registration.slots() < 1) return absl::InvalidArgumentError("a worker needs at least one slot");
  absl::MutexLock lock(&mutex_);
  if (shutting_down_) return absl::UnavailableError("the coordinator is shutting down");
  PESC_RETURN_IF_ERROR(
      store_->record_worker(registration.worker_id(), registration.host(), registration.slots(), now_unix_ms()));
  Session& session = sessions_[registration.worker_id()];
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
  if (requeue(returned).ok()) dispatch();
  changed();
}

void FarmState::worker_finished(const std::string& worker_id, const v1::AttemptsFinished& batch) {
  absl::MutexLock lock(&mutex_);
  auto session = sessions_.find(worker_id);
  if (session == sessions_.end()) return;
  session->second.last_heard = absl::Now();
  {
    // The results and the assignments they free room for reach the disk
    // together, in one transaction.
    JobStore::Batch transaction(*store_);
    for (const v1::RankFinished& finished : batch.finished()) {
      if (finished.chunk_size() > 0) {
        finish_chunk(session->second, finished);
      } else {
        finish_attempt(session->second, finished);
      }
    }
    dispatch();
  }
  changed();
}

void FarmState::learn_from(Session& session, const v1::RankResult& reported) {
  note_worker_health(session, reported);
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
  if (!accepted.ok()) return;  // not acknowledged: the worker sends it again
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
  if (session.outbox) session.outbox->acknowledge(finished.attempt_id());
}

void FarmState::finish_attempt(Session& session, const v1::RankFinished& finished) {
  session.attempts.erase(finished.attempt_id());
  const v1::RankResult& reported = finished.result();
  learn_from(session, reported);
  auto accepted = store_->finish_attempt(finished.attempt_id(), reported, now_unix_ms());
  if (!accepted.ok()) return;  // not acknowledged: the worker sends it again
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
        (void)requeue({finished.attempt_id()});
      } else if (result.failure_class() == v1::FAILURE_CLASS_JOB) {
        fail_job((*accepted)->job_id, result.error());  // every restart would fail the same way
      } else {
        (void)cancel_locked((*accepted)->job_id);
      }
    }
  }
  if (session.outbox) session.outbox->acknowledge(finished.attempt_id());
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
  (void)store_->save_checkpoint(saved.attempt_id(), saved.checkpoint());
}

void FarmState::disconnect_worker(const std::string& worker_id, const Outbox* outbox) {
  absl::MutexLock lock(&mutex_);
  auto session = sessions_.find(worker_id);
  if (session == sessions_.end() || session->second.outbox.get() != outbox) return;  // already replaced
  session->second.outbox->close();
  session->second.outbox.reset();
  changed();
}

bool FarmState::is_silent(const std::string& worker_id) {
  absl::MutexLock lock(&mutex_);
  auto session = sessions_.find(worker_id);
  return session != sessions_.end() &&
         session->second.last_heard < absl::Now() - absl::FromChrono(options_.worker_lease);
}

absl::Status FarmState::requeue(const std::vector<int64_t>& attempts) {
  if (attempts.empty()) return absl::OkStatus();
  std::vector<int64_t> with_gangs = stop_gangs_of(attempts);
  with_gangs.insert(with_gangs.end(), attempts.begin(), attempts.end());
  PESC_RETURN_IF_ERROR(store_->requeue_attempts(with_gangs));
  // The store knows which jobs got ranks back; take its counts.
  PESC_ASSIGN_OR_RETURN(auto running, store_->running_jobs());
  for (const JobRecord& record : running) {
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
  if (lost.empty() || !requeue(lost).ok()) return;
  dispatch();
  changed();
}

void FarmState::reaper_loop() {
  while (true) {
    absl::MutexLock lock(&mutex_);
    mutex_.AwaitWithTimeout(absl::Condition(&shutting_down_), absl::Milliseconds(250));
    if (shutting_down_) return;
    requeue_expired();
    dispatch();  // ranks become stragglers with time alone
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
  info.mutable_progress()->set_waiting(why_waiting(record.id));
  return info;
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

void FarmState::dispatch() {
  const std::set<std::string> held = dispatch_gangs();
  dispatch_queued(held);
  dispatch_duplicates(held);
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
    start_placed(job_id, placements, indices, online_slots, started_at);
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
  if (!pending.ok()) return;
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
  if (!started.ok()) return;
  for (JobStore::StartedAttempt& attempt : *started) started_at[placement_of_rank[attempt.rank]] = std::move(attempt);
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
    if (count == 1) {
      (void)assign(job_id, job, worker_id, ranks[first]);
    } else if (auto started = store_->start_chunk(job_id, ranks[first], count, worker_id, now_unix_ms());
               started.ok()) {
      dispatched(job_id, job, *started);
    }
    first = end;
  }
}

// Uneven desktops must not hold a job's tail: with the job's queue empty, a
// rank running well past the typical rank time of its worker or of an idle
// one (the shorter) also starts on that idle worker, fastest worker first,
// and the first success wins (finish_attempt stops the other).
void FarmState::dispatch_duplicates(const std::set<std::string>& held) {
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
  const int64_t now = now_unix_ms();
  for (const auto& [job_id, job] : active_jobs_) {
    // A GPU rank's duplicate would need GPUs of its own; not worth holding them.
    if (job.pending > 0 || job.spec.no_duplicates() || job.spec.parallel() || job.spec.same_machine() ||
        job.spec.gpus_per_rank() > 0) {
      continue;
    }
    auto running = store_->running_attempts(job_id);
    if (!running.ok()) continue;
    std::map<int, int> attempts_of_rank;
    for (const AttemptRecord& attempt : *running) attempts_of_rank[attempt.rank] += 1;
    const QueuedJob placement_rules = queued(job_id, job);
    for (const AttemptRecord& attempt : *running) {  // longest running first
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
      if (!started.ok()) continue;
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
  }
  return held;
}

// Sends every rank of the gang to its worker; they hold their slots until
// start_gang.
void FarmState::launch_gang(const std::string& job_id, ActiveJob& job, const std::vector<Placement>& placements) {
  auto ranks = store_->pending_ranks(job_id, static_cast<int>(placements.size()));
  if (!ranks.ok() || ranks->size() != placements.size()) return;
  GangLaunch& launch = gangs_[job_id];
  for (size_t i = 0; i < placements.size(); ++i) {
    absl::StatusOr<int64_t> attempt = assign(job_id, job, placements[i].worker_id, (*ranks)[i]);
    if (!attempt.ok()) {
      std::vector<int64_t> placed;
      for (const auto& [placed_attempt, worker_id] : launch.worker_of) placed.push_back(placed_attempt);
      (void)requeue(placed);
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
  session->second.outbox->push(std::move(message));
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
  session.outbox->assign(std::move(assignment));
}

void FarmState::changed() {
  ++generation_;
  changed_.SignalAll();
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
