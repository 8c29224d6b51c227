#include "coordinator/farm_state.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/status_macros.h"

namespace pesc {
namespace {

constexpr int kResultsPerBatch = 512;
// How long a new job's ranks may have nowhere to go before its clients are told why.
constexpr absl::Duration kWaitingGrace = absl::Seconds(2);
// A job whose first this many ranks (or all, when it has fewer) failed for
// the job's own fault, none succeeding, ends FAILED at once.
constexpr int kFailFastAfter = 3;
// How stale the count of ranks queued at workers may be: a progress display
// needs no better, and a count costs a look at every running attempt.
constexpr absl::Duration kQueuedRecount = absl::Milliseconds(250);
// After a failed store call, how soon the reaper reads the state back and
// tries again what failed.
constexpr absl::Duration kRetryAfterStoreFailure = absl::Milliseconds(250);
// Points of a worker's host CPU figure that wake the dashboard's streams.
constexpr double kBusyPercentWorthTelling = 10;

// Room a job needs on the state disk: its rows and results, and slack for
// the write-ahead log. Refused below it, rather than taken and then stuck.
constexpr uint64_t kStateHeadroomBytes = uint64_t{2} << 20;
constexpr uint64_t kStateBytesPerRank = 512;
// How often the same store failure is logged while it lasts (a full disk).
constexpr absl::Duration kStoreFailureLogInterval = absl::Seconds(10);
// A follower's read of a running rank's output: at most this much at once,
// and its worker's answer waited for this long (a follower asks again).
constexpr int kOutputReadBytes = 1 << 20;
constexpr absl::Duration kOutputReadWait = absl::Seconds(5);

absl::Status state_disk_full(const std::filesystem::path& state_dir, absl::string_view detail) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "the coordinator's state disk is full, so it takes no new jobs: ", state_dir.string(), " (", detail,
      "). Free space on that disk (or move the state dir to a larger one); running jobs go on by themselves "
      "when space returns"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<FarmState>> FarmState::open(CoordinatorOptions options) {
  return open(std::move(options), nullptr);
}

absl::StatusOr<std::unique_ptr<FarmState>> FarmState::open(CoordinatorOptions options,
                                                           std::unique_ptr<JobStore> store) {
  std::error_code error;
  options.state_dir = std::filesystem::absolute(options.state_dir, error);
  PESC_RETURN_IF_ERROR(make_private_dir(options.state_dir));
  PESC_ASSIGN_OR_RETURN(auto dir_lock, StateDirLock::take(options.state_dir));
  if (!store) {
    PESC_ASSIGN_OR_RETURN(store, open_state_database(options.state_dir, options.survive_power_cut
                                                                            ? Durability::kSynced
                                                                            : Durability::kVisible));
  }
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
    : options_(std::move(options)), lock_(std::move(lock)), blobs_(std::move(blobs)),
      store_(std::move(store)),
      workers_(options_.prefetch_per_slot),
      store_latency_(&store_->call_latency()),
      notifier_(std::make_unique<JobNotifier>(
          NotifierSettings{.smtp_url = options_.smtp_url, .smtp_from = options_.smtp_from},
          [this](const std::string& job_id) { return ended_job(job_id); })) {}

FarmState::~FarmState() {
  shut_down();
  if (reaper_ && reaper_->joinable()) reaper_->join();
}

// After a restart the running attempts belong to workers that have not
// reconnected yet; they get one lease to come back and claim them.
absl::Status FarmState::recover() { return resync(); }

void FarmState::store_failed(std::string_view what, const absl::Status& status) {
  resync_needed_ = true;
  reap_by(absl::Now() + kRetryAfterStoreFailure);
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
  ActiveJobs jobs;
  for (JobRecord& record : running_jobs) {
    ActiveJob& job = jobs[record.id] =
        ActiveJob{.spec = std::move(record.spec),
                  .created_unix_ms = record.created_unix_ms,
                  .pending = record.progress.pending};
    auto known = active_jobs_.find(record.id);
    if (known != active_jobs_.end()) job.fault_watch = known->second.fault_watch;
    if (!job.spec.options.same_machine) continue;
    if (known != active_jobs_.end()) {
      job.pinned_worker = known->second.pinned_worker;
      continue;
    }
    PESC_ASSIGN_OR_RETURN(job.pinned_worker, store_->latest_worker(record.id));
    // Its worker gets a lease to come back, like one holding attempts;
    // past it the pin goes (requeue_expired).
    if (!job.pinned_worker.empty() && !workers_.sessions().contains(job.pinned_worker)) {
      workers_.sessions()[job.pinned_worker].last_heard = absl::Now();
    }
  }
  // Workers given a lease to come back keep their ids bound to them.
  PESC_ASSIGN_OR_RETURN(auto credentials, store_->worker_credentials());
  dispatcher_.scheduler().set_usage(std::move(usage));
  active_jobs_ = std::move(jobs);
  workers_.reload(running, credentials, absl::Now());
  reap_by(absl::Now() + absl::FromChrono(options_.worker_lease));  // the leases just given
  return restart_gangs_unlike_the_store(running);
}

// Whether a gang had started is known to memory only (its ranks may still
// wait for their start), so a gang that memory and the store see
// differently starts over.
absl::Status FarmState::restart_gangs_unlike_the_store(const std::vector<AttemptRecord>& running) {
  return requeue(dispatcher_.gangs().unlike_the_ledger(running, active_jobs_));
}

void FarmState::send_when_committed(std::function<void()> send) {
  if (held_sends_) {
    held_sends_->push_back(std::move(send));
  } else {
    send();
  }
}

absl::StatusOr<std::string> FarmState::submit(JobSpec spec) {
  if (!blobs_->contains(spec.process.sha256)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the process blob ", spec.process.sha256, " was never uploaded"));
  }
  for (const SharedInput& shared : spec.shared) {
    if (shared.url.empty() && !blobs_->contains(shared.blob.sha256)) {
      return absl::FailedPreconditionError(absl::StrCat("the shared file ", shared.name, " was never uploaded"));
    }
  }
  PESC_RETURN_IF_ERROR(check_state_disk(spec.repetitions));
  const std::string job_id = random_hex(6);
  {
    absl::MutexLock lock(&mutex_);
    if (shutting_down_) return absl::UnavailableError("the coordinator is shutting down");
    int64_t now = now_unix_ms();
    if (absl::Status created = store_->create_job(job_id, spec, now); !created.ok()) {
      if (absl::IsResourceExhausted(created)) return state_disk_full(options_.state_dir, created.message());
      return created;
    }
    int repetitions = spec.repetitions;
    active_jobs_[job_id] = ActiveJob{.spec = std::move(spec), .created_unix_ms = now, .pending = repetitions};
    dispatch();
    changed();
    events_.published_at(absl::FromUnixMillis(now) + kWaitingGrace);  // why it waits shows after the grace
  }
  // Its ranks may start while the disk syncs; the submitter hears of the
  // job only once it would outlive a power cut. A power cut before that
  // loses the job with every result of it, which commit after it.
  if (absl::Status durable = store_->wait_for_disk(); !durable.ok()) {
    std::cerr << "pesc coordinator: job " << job_id << " runs, but its state disk failed to sync it: "
              << durable.message() << std::endl;
    return absl::DataLossError(absl::StrCat("the coordinator's state disk failed to sync job ", job_id,
                                            " (it runs, but may not outlive a power cut; `pesc jobs` shows it): ",
                                            durable.message()));
  }
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

absl::StatusOr<JobView> FarmState::job(const std::string& job_id) {
  absl::MutexLock lock(&mutex_);
  PESC_ASSIGN_OR_RETURN(JobRecord record, store_->job(job_id));
  const int64_t until = record.finished_unix_ms > 0 ? record.finished_unix_ms : now_unix_ms();
  PESC_ASSIGN_OR_RETURN(std::vector<WorkerPause> pauses, store_->pauses_between(record.created_unix_ms, until));
  return JobView{.record = told(std::move(record)), .pauses = std::move(pauses)};
}

absl::StatusOr<std::vector<JobRecord>> FarmState::jobs() {
  absl::MutexLock lock(&mutex_);
  PESC_ASSIGN_OR_RETURN(std::vector<JobRecord> records, store_->jobs());
  for (JobRecord& record : records) record = told(std::move(record));
  return records;
}

absl::StatusOr<JobRecord> FarmState::cancel(const std::string& job_id) {
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

absl::StatusOr<JobRecord> FarmState::cancel_locked(const std::string& job_id) {
  PESC_ASSIGN_OR_RETURN(auto to_stop, store_->cancel_job(job_id, now_unix_ms()));
  notify_end(job_id);
  forget_ended_job(job_id, to_stop);
  return store_->job(job_id);
}

void FarmState::notify_end(const std::string& job_id) {
  auto job = active_jobs_.find(job_id);
  if (job == active_jobs_.end() || job->second.spec.options.notify.empty()) return;
  send_when_committed([notifier = notifier_.get(), job_id] { notifier->job_ended(job_id); });
}

absl::StatusOr<JobNotifier::EndedJob> FarmState::ended_job(const std::string& job_id) {
  JobNotifier::EndedJob ended;
  PESC_ASSIGN_OR_RETURN(JobView view, job(job_id));
  ended.job = std::move(view.record);
  for (int64_t after_seq = 0;;) {
    PESC_ASSIGN_OR_RETURN(std::vector<RankRecord> batch, results_after(job_id, after_seq));
    if (batch.empty()) return ended;
    after_seq = batch.back().finish_seq;
    for (const RankRecord& ended_rank : batch) ended.rank_time_ms += run_time_ms(ended_rank.result);
  }
}

void FarmState::job_ended(const std::string& job_id) {
  active_jobs_.erase(job_id);
  job_descriptions_.forget(job_id);
  std::vector<std::shared_ptr<Outbox>> outboxes;
  for (const auto& [worker_id, session] : workers_.sessions()) {
    if (session.outbox) outboxes.push_back(session.outbox);
  }
  send_when_committed([outboxes = std::move(outboxes), job_id] {
    for (const std::shared_ptr<Outbox>& outbox : outboxes) outbox->forget(job_id);
  });
}

void FarmState::forget_ended_job(const std::string& job_id, const std::vector<AttemptRecord>& to_stop) {
  job_ended(job_id);
  dispatcher_.gangs().forget(job_id);
  std::map<std::string, std::vector<int64_t>> cancels;
  for (const AttemptRecord& attempt : to_stop) cancels[attempt.worker_id].push_back(attempt.id);
  tell_to_cancel(cancels);
  changed();
  dispatch();
}

void FarmState::fail_fast(const std::string& job_id, const RankResult& result) {
  auto job = active_jobs_.find(job_id);
  if (job == active_jobs_.end()) return;
  FaultWatch& watch = job->second.fault_watch;
  if (result.status == RankStatus::kSucceeded) watch.any_succeeded = true;
  if (watch.any_succeeded || result.failure_class != FailureClass::kJob) return;
  if (++watch.job_faults < std::min(job->second.spec.repetitions, kFailFastAfter)) return;
  fail_job(job_id, result.error);
}

void FarmState::fail_job(const std::string& job_id, const std::string& failure) {
  auto to_stop = store_->fail_job(job_id, failure, now_unix_ms());
  if (!to_stop.ok()) {
    store_failed("failing a job for its own fault", to_stop.status());
    return;  // the job's next failed rank tries again
  }
  notify_end(job_id);
  forget_ended_job(job_id, *to_stop);
}

// The workers also forget these attempts.
void FarmState::tell_to_cancel(const std::map<std::string, std::vector<int64_t>>& attempts_by_worker) {
  for (const auto& [worker_id, attempts] : attempts_by_worker) {
    auto session = workers_.sessions().find(worker_id);
    if (session == workers_.sessions().end()) continue;
    for (int64_t attempt : attempts) session->second.attempts.erase(attempt);
    if (session->second.outbox) {
      send_when_committed([outbox = session->second.outbox, attempts] { outbox->cancel(attempts); });
    }
  }
}

absl::StatusOr<FarmState::Retried> FarmState::retry(const std::string& job_id, const std::vector<int>& ranks) {
  absl::MutexLock lock(&mutex_);
  if (shutting_down_) return absl::UnavailableError("the coordinator is shutting down");
  if (!resync_if_needed()) return absl::UnavailableError("the coordinator cannot read its state store; try again");
  // One transaction: a failure leaves memory as it was, with the store.
  PESC_ASSIGN_OR_RETURN(std::vector<int> reopened, store_->retry_ranks(job_id, ranks));
  PESC_ASSIGN_OR_RETURN(JobRecord record, store_->job(job_id));
  Retried response{.ranks = std::move(reopened), .job = record};
  active_jobs_[job_id] = ActiveJob{.spec = std::move(record.spec),
                                   .created_unix_ms = record.created_unix_ms,
                                   .pending = record.progress.pending};
  dispatch();
  changed();
  return response;
}

absl::StatusOr<RankOutputNow> FarmState::read_output(const std::string& job_id, int rank, int64_t offset) {
  RankOutputNow output;
  int64_t request_id = 0;
  std::shared_ptr<OutputReads::Pending> pending;
  {
    absl::MutexLock lock(&mutex_);
    PESC_ASSIGN_OR_RETURN(RankRecord now, store_->rank_now(job_id, rank));
    output.state = now.result.status;
    if (now.finish_seq > 0) output.result = now;
    if (now.result.status != RankStatus::kRunning) return output;
    output.attempt_id = now.result.attempt;
    const WorkerSession* session = workers_.find(now.result.worker);
    if (session == nullptr || !session->outbox) return output;  // away: nothing to read now
    std::tie(request_id, pending) = output_reads_.open(now.result.worker);
    session->outbox->read_output(request_id, now.result.attempt, offset, kOutputReadBytes);
  }
  if (pending->answered.WaitForNotificationWithTimeout(kOutputReadWait) && !pending->answer.gone) {
    output.data = std::move(pending->answer.data);
  }
  output_reads_.close(request_id);
  return output;
}

absl::StatusOr<std::vector<WorkerView>> FarmState::workers() {
  absl::MutexLock lock(&mutex_);
  PESC_ASSIGN_OR_RETURN(std::vector<WorkerRecord> known, store_->workers());
  std::vector<WorkerView> views;
  views.reserve(known.size());
  for (WorkerRecord& worker : known) views.push_back(workers_.describe(std::move(worker)));
  return views;
}

absl::StatusOr<std::vector<RankRecord>> FarmState::results_after(const std::string& job_id, int64_t after_seq) {
  absl::MutexLock lock(&mutex_);
  return store_->results_after(job_id, after_seq, kResultsPerBatch);
}

absl::StatusOr<JobStore::RankPage> FarmState::ranks_page(const std::string& job_id,
                                                        std::optional<RankStatus> state, int64_t offset, int limit) {
  absl::MutexLock lock(&mutex_);
  return store_->ranks_page(job_id, state, offset, limit);
}

absl::Status FarmState::connect_worker(const WorkerRegistration& registration, const std::string& peer_ip,
                                       const std::string& credential, std::shared_ptr<Outbox> outbox) {
  absl::MutexLock lock(&mutex_);
  if (shutting_down_) return absl::UnavailableError("the coordinator is shutting down");
  // What it holds is weighed against what the store says it holds.
  if (!resync_if_needed()) return absl::UnavailableError("the coordinator cannot read its state store; try again");
  PESC_RETURN_IF_ERROR(workers_.may_join(registration.worker_id, credential));
  PESC_RETURN_IF_ERROR(
      store_->record_worker(registration.worker_id, registration.host, registration.slots, credential, now_unix_ms()));
  // What the worker holds and the coordinator still wants stays; the rest
  // is stale on one side or the other.
  auto [vanished, stale] = workers_.join(registration, peer_ip, credential, outbox, absl::Now());
  reap_by(absl::Now() + absl::FromChrono(options_.worker_lease));
  record_pause(registration.worker_id, registration.paused_reason);
  std::error_code error;
  const RegistrationAnswer answer{
      // Several heartbeats per lease, so one late beat does not lose a worker.
      .heartbeat_ms = static_cast<int>(std::min(options_.heartbeat_interval, options_.worker_lease / 4).count()),
      .idle_keepalive_ms = static_cast<int>(std::min(options_.idle_keepalive, options_.worker_lease / 3).count()),
      .state_dir = std::filesystem::absolute(options_.state_dir, error).string(),
      .stale_attempts = std::move(stale)};
  PESC_RETURN_IF_ERROR(requeue(vanished));
  outbox->answer_registration(answer);
  dispatch();
  changed();
  return absl::OkStatus();
}

void FarmState::worker_heard(const std::string& worker_id) {
  absl::MutexLock lock(&mutex_);
  if (auto session = workers_.sessions().find(worker_id); session != workers_.sessions().end())
    session->second.last_heard = absl::Now();
}

void FarmState::worker_heartbeat(const std::string& worker_id, const WorkerHeartbeat& heartbeat) {
  absl::MutexLock lock(&mutex_);
  auto session = workers_.sessions().find(worker_id);
  if (session == workers_.sessions().end()) return;
  session->second.last_heard = absl::Now();
  session->second.throttled = heartbeat.throttled_reason;
  // The dashboard's figure: a big move wakes its watchers, a small one waits for other news.
  const double before = session->second.host_cpu_percent;
  session->second.host_cpu_percent = heartbeat.host_cpu_percent;
  if ((before < 0) != (heartbeat.host_cpu_percent < 0) ||
      std::abs(before - heartbeat.host_cpu_percent) >= kBusyPercentWorthTelling) {
    events_.published();
  }
  std::vector<int64_t> returned;
  for (int64_t attempt : heartbeat.returned_attempts) {
    if (session->second.attempts.erase(attempt) > 0) returned.push_back(attempt);
  }
  if (session->second.paused == heartbeat.paused_reason && returned.empty()) return;
  session->second.paused = heartbeat.paused_reason;
  record_pause(worker_id, session->second.paused);
  if (requeue(returned).ok()) dispatch();
  changed();
}

void FarmState::worker_finished(const std::string& worker_id, std::vector<AttemptEnded> batch) {
  absl::MutexLock lock(&mutex_);
  auto session = workers_.sessions().find(worker_id);
  if (session == workers_.sessions().end()) return;
  session->second.last_heard = absl::Now();
  if (!resync_if_needed()) return;  // not acknowledged: the worker sends them again
  {
    // The results and the assignments they free room for reach the disk
    // together, in one transaction; acknowledgements and assignments go out
    // once it has committed.
    JobStore::Batch transaction(*store_);
    held_sends_.emplace();
    for (AttemptEnded& ended : batch) {
      if (!ended.chunk.empty()) {
        finish_chunk(session->second, ended);
      } else if (ended.result.result.status == RankStatus::kCancelled) {
        keep_cancelled_output(session->second, ended);
      } else {
        finish_attempt(session->second, ended);
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

void FarmState::finish_chunk(WorkerSession& session, AttemptEnded& ended) {
  session.attempts.erase(ended.attempt_id);
  for (const RankRecord& reported : ended.chunk) session.learn_from(reported.result);
  auto accepted = store_->finish_chunk(ended.attempt_id, std::move(ended.chunk), now_unix_ms());
  if (!accepted.ok()) {
    store_failed("recording a chunk's results", accepted.status());
    return;  // not acknowledged: the worker sends it again
  }
  if (*accepted) {
    counters_.results_accepted.fetch_add(static_cast<int64_t>((*accepted)->results.size()), std::memory_order_relaxed);
    for (const RankRecord& rank : (*accepted)->results) {
      dispatcher_.scheduler().charge((*accepted)->user, run_time_ms(rank.result));
    }
    if (auto job = active_jobs_.find((*accepted)->job_id); job != active_jobs_.end()) {
      job->second.pending += (*accepted)->requeued;
      for (const RankRecord& rank : (*accepted)->results) job->second.learn_pace(rank.result);
    }
    for (const RankRecord& rank : (*accepted)->results) fail_fast((*accepted)->job_id, rank.result);
    if ((*accepted)->job_finished) {
      notify_end((*accepted)->job_id);
      job_ended((*accepted)->job_id);
    }
  }
  acknowledge(session, ended.attempt_id);
}

void FarmState::keep_cancelled_output(WorkerSession& session, AttemptEnded& ended) {
  session.attempts.erase(ended.attempt_id);
  if (absl::Status kept = store_->keep_cancelled_output(ended.attempt_id, std::move(ended.result)); !kept.ok()) {
    store_failed("keeping a cancelled rank's output", kept);
    return;  // not acknowledged: the worker sends it again
  }
  acknowledge(session, ended.attempt_id);
}

void FarmState::finish_attempt(WorkerSession& session, AttemptEnded& ended) {
  session.attempts.erase(ended.attempt_id);
  session.learn_from(ended.result.result);
  auto accepted = store_->finish_attempt(ended.attempt_id, std::move(ended.result), now_unix_ms());
  if (!accepted.ok()) {
    store_failed("recording a result", accepted.status());
    return;  // not acknowledged: the worker sends it again
  }
  if (*accepted) {
    counters_.results_accepted.fetch_add(1, std::memory_order_relaxed);
    const RankResult& result = (*accepted)->result.result;
    std::map<std::string, std::vector<int64_t>> losers;  // a straggler's other attempts
    for (const AttemptRecord& superseded : (*accepted)->superseded)
      losers[superseded.worker_id].push_back(superseded.id);
    tell_to_cancel(losers);
    dispatcher_.scheduler().charge((*accepted)->user, run_time_ms(result));
    if (auto job = active_jobs_.find((*accepted)->job_id); job != active_jobs_.end()) {
      job->second.learn_pace(result);
      if ((*accepted)->requeued) job->second.pending += 1;
    }
    fail_fast((*accepted)->job_id, result);
    if ((*accepted)->job_finished) {
      notify_end((*accepted)->job_id);
      job_ended((*accepted)->job_id);
      dispatcher_.gangs().forget((*accepted)->job_id);
    } else if (result.status != RankStatus::kSucceeded && dispatcher_.gangs().launched((*accepted)->job_id)) {
      // Its partners cannot finish without it: all go again together, or,
      // when it has no attempts left, the gang ends.
      if ((*accepted)->requeued) {
        (void)requeue({ended.attempt_id});  // a failure is logged and retried there
      } else if (result.failure_class == FailureClass::kJob) {
        fail_job((*accepted)->job_id, result.error);  // every restart would fail the same way
      } else if (auto cancelled = cancel_locked((*accepted)->job_id); !cancelled.ok()) {
        store_failed("cancelling a gang that failed for good", cancelled.status());
      }
    }
  }
  acknowledge(session, ended.attempt_id);
}

void FarmState::acknowledge(const WorkerSession& session, int64_t attempt_id) {
  if (!session.outbox) return;
  send_when_committed([outbox = session.outbox, attempt_id] { outbox->acknowledge(attempt_id); });
}

void FarmState::worker_checkpoint(const std::string& worker_id, int64_t attempt_id, const BlobId& checkpoint) {
  absl::MutexLock lock(&mutex_);
  if (auto session = workers_.sessions().find(worker_id); session != workers_.sessions().end())
    session->second.last_heard = absl::Now();
  // Lost to a failure, it is saved again at the next interval.
  if (absl::Status saved = store_->save_checkpoint(attempt_id, checkpoint); !saved.ok()) {
    store_failed("saving a checkpoint", saved);
  }
}

void FarmState::disconnect_worker(const std::string& worker_id, const Outbox* outbox) {
  absl::MutexLock lock(&mutex_);
  auto session = workers_.sessions().find(worker_id);
  if (session == workers_.sessions().end() || session->second.outbox.get() != outbox) return;  // already replaced
  session->second.outbox->close();
  session->second.outbox.reset();
  reap_by(lease_end(session->second));  // its ranks wait out the lease
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
  for (auto& [worker_id, session] : workers_.sessions()) {
    if (session.outbox && session.last_heard < cutoff) session.outbox->close();
  }
}

absl::Status FarmState::requeue(const std::vector<int64_t>& attempts) {
  if (attempts.empty()) return absl::OkStatus();
  std::vector<int64_t> with_gangs = dispatcher_.gangs().stop_gangs_of(attempts, *this);
  with_gangs.insert(with_gangs.end(), attempts.begin(), attempts.end());
  if (absl::Status requeued = store_->requeue_attempts(with_gangs); !requeued.ok()) {
    requeue_later_.insert(with_gangs.begin(), with_gangs.end());
    store_failed("putting ranks back in the queue", requeued);
    return requeued;
  }
  // Workers that still hold any of them let go.
  const std::set<int64_t> requeued(with_gangs.begin(), with_gangs.end());
  std::map<std::string, std::vector<int64_t>> taken_back;
  for (const auto& [worker_id, session] : workers_.sessions()) {
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
      job->second.pending = record.progress.pending;
    }
  }
  return absl::OkStatus();
}

// Ranks of workers that stayed away past their lease go back to the queue.
void FarmState::requeue_expired() {
  absl::Time cutoff = absl::Now() - absl::FromChrono(options_.worker_lease);
  WorkerRegistry::Expired expired = workers_.expire(cutoff);
  // Same-machine jobs on a lost worker start over on another one.
  for (const std::string& worker_id : expired.workers) {
    for (auto& [job_id, job] : active_jobs_) {
      if (job.pinned_worker == worker_id) job.pinned_worker.clear();
    }
  }
  const std::vector<int64_t>& lost = expired.attempts;
  if (lost.empty() || !requeue(lost).ok()) return;  // a failed requeue is retried by the reaper
  dispatch();
  changed();
}

void FarmState::retry_requeue() {
  if (requeue_later_.empty()) return;
  const std::set<int64_t> attempts = std::exchange(requeue_later_, {});
  if (requeue({attempts.begin(), attempts.end()}).ok()) changed();
}

// The reaper is a timer, not a poll: it sleeps until the first thing time
// alone changes (a worker's lease runs out, a look for stragglers, a retry
// after a store failure), or until reap_by() moves that time earlier.
void FarmState::reaper_loop() {
  absl::MutexLock lock(&mutex_);
  while (true) {
    reaper_due_ = next_reap();
    ReaperWait wait{this, reaper_due_};
    mutex_.AwaitWithDeadline(absl::Condition(&FarmState::reaper_woken, &wait), wait.due);
    if (shutting_down_) return;
    if (absl::Now() < reaper_due_) continue;  // woken to sleep less
    if (!resync_if_needed()) continue;
    retry_requeue();
    cut_silent_workers();
    requeue_expired();
    dispatch();
  }
}

bool FarmState::reaper_woken(ReaperWait* wait) {
  return wait->state->shutting_down_ || wait->state->reaper_due_ < wait->due;
}

absl::Time FarmState::next_reap() {
  const absl::Time now = absl::Now();
  // A failing store stops everything else; it is tried again first.
  if (resync_needed_ || !requeue_later_.empty()) return now + kRetryAfterStoreFailure;
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [worker_id, session] : workers_.sessions()) {
    // A stream already cut waits for its end (disconnect_worker).
    if (session.outbox && session.outbox->closed()) continue;
    next = std::min(next, lease_end(session));
  }
  if (std::optional<int64_t> round = dispatcher_.next_round_unix_ms(active_jobs_, absl::ToUnixMillis(now))) {
    next = std::min(next, absl::FromUnixMillis(*round));
  }
  return next;
}

void FarmState::reap_by(absl::Time at) { reaper_due_ = std::min(reaper_due_, at); }

absl::Time FarmState::lease_end(const WorkerSession& session) const {
  return session.last_heard + absl::FromChrono(options_.worker_lease) + absl::Milliseconds(1);
}

std::string FarmState::why_waiting(const std::string& job_id) {
  auto job = active_jobs_.find(job_id);
  if (job == active_jobs_.end() || job->second.pending <= 0) return "";
  // A worker started together with the job may still be joining.
  if (now_unix_ms() - job->second.created_unix_ms < absl::ToInt64Milliseconds(kWaitingGrace)) return "";
  std::string why = pesc::why_waiting(job->second.queued(job_id), workers_.connected());
  if (why.empty() && job->second.spec.options.parallel) why = GangPolicy::shortfall(job_id, job->second, workers_);
  if (!why.empty() && waiting_note_) {
    if (const std::string note = waiting_note_(); !note.empty()) why = absl::StrCat(why, "; ", note);
  }
  return why;
}

JobRecord FarmState::told(JobRecord record) {
  Progress& progress = record.progress;
  progress.waiting = why_waiting(record.id);
  if (record.state == JobState::kRunning) {
    // Counted a moment ago, so never more than the ranks running now.
    progress.queued_at_workers = std::min(queued_at_workers(record.id), progress.running);
    progress.running -= progress.queued_at_workers;
  }
  return record;
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
  queued_by_job_ = workers_.queued_by_job();
}

// After a store failure the round stops; the reaper tries again shortly.
void FarmState::dispatch() {
  if (!resync_if_needed()) return;
  dispatcher_.dispatch(*store_, active_jobs_, workers_, *this, now_unix_ms());
}

void FarmState::assign(const std::string& worker_id, AttemptOrder order, const JobSpec& spec) {
  const WorkerSession* session = workers_.find(worker_id);
  if (session == nullptr || !session->outbox) return;
  counters_.ranks_dispatched.fetch_add(std::max(1, order.rank_count), std::memory_order_relaxed);
  auto job = job_descriptions_.of(order.job_id, spec);
  send_when_committed([outbox = session->outbox, order = std::move(order), job = std::move(job)] {
    outbox->assign(order, job);
  });
}

void FarmState::start_gang(const std::string& worker_id, GangStart start) {
  const WorkerSession* session = workers_.find(worker_id);
  if (session == nullptr || !session->outbox) return;
  send_when_committed([outbox = session->outbox, start = std::move(start)] { outbox->start_gang(start); });
}

void FarmState::cancel(const std::string& worker_id, const std::vector<int64_t>& attempts) {
  tell_to_cancel({{worker_id, attempts}});
}

void FarmState::ledger_failed(std::string_view what, const absl::Status& status) { store_failed(what, status); }

// A failure is logged and retried there.
void FarmState::take_back(const std::vector<int64_t>& attempts) { (void)requeue(attempts); }

void FarmState::worker_gang_ready(const std::string& worker_id, int64_t attempt_id, int free_port) {
  absl::MutexLock lock(&mutex_);
  if (WorkerSession* session = workers_.find(worker_id)) session->last_heard = absl::Now();
  dispatcher_.gangs().ready(worker_id, attempt_id, free_port, workers_, *this);
}

void FarmState::changed() {
  queued_stale_ = true;
  // A job whose last ranks went out may now have stragglers to look for.
  if (std::optional<int64_t> round = dispatcher_.next_round_unix_ms(active_jobs_, now_unix_ms())) {
    reap_by(absl::FromUnixMillis(*round));
  }
  events_.published();  // watchers read under mutex_, so after any open batch commits
}

bool FarmState::shutting_down() {
  absl::MutexLock lock(&mutex_);
  return shutting_down_;
}

void FarmState::shut_down() {
  absl::MutexLock lock(&mutex_);
  shutting_down_ = true;
  for (auto& [worker_id, session] : workers_.sessions()) {
    if (session.outbox) session.outbox->close();
  }
  changed();
}

int FarmState::ranks_for_pilots() {
  absl::MutexLock lock(&mutex_);
  int waiting = 0;
  for (const auto& [job_id, job] : active_jobs_) {
    const QueuedJob queued = job.queued(job_id);
    const bool public_room = std::find(queued.rooms.begin(), queued.rooms.end(), kPublicRoom) != queued.rooms.end();
    if (public_room && queued.gpus_per_rank == 0 && job.pending > 0) waiting += job.pending;
  }
  return waiting;
}

std::set<std::string> FarmState::online_workers() {
  absl::MutexLock lock(&mutex_);
  std::set<std::string> online;
  for (const auto& [worker_id, session] : workers_.sessions()) {
    if (session.online()) online.insert(worker_id);
  }
  return online;
}

void FarmState::set_waiting_note(std::function<std::string()> note) {
  absl::MutexLock lock(&mutex_);
  waiting_note_ = std::move(note);
}

}  // namespace pesc
