#include "ledger/memory_job_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "ledger/retry_rules.h"

namespace pesc {
namespace {

absl::Status no_such_job(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("no job \"", id, "\": `pesc jobs` lists the jobs there are"));
}

void add_to_counter(Progress& progress, RankStatus state, int count) {
  (state == RankStatus::kPending ? progress.pending : progress.running) += count;
}

// Moves `count` ranks between the pending and the running counter.
void move_counter(Progress& progress, RankStatus from, RankStatus to, int count) {
  add_to_counter(progress, from, -count);
  add_to_counter(progress, to, count);
}

// A pause's end while it lasts.
constexpr std::chrono::system_clock::time_point kStillPaused{};

}  // namespace

bool MemoryJobStore::begin_batch() {
  before_batches_.push_back(state_);
  return true;
}

absl::Status MemoryJobStore::end_batch(bool keep) {
  State before = std::move(before_batches_.back());
  before_batches_.pop_back();
  if (!keep) state_ = before;
  if (!before_batches_.empty()) return batch_failure_;
  if (keep && batch_failure_.ok()) batch_failure_ = write_failure_;  // the commit's own write
  if (!batch_failure_.ok()) state_ = std::move(before);
  return std::exchange(batch_failure_, absl::OkStatus());
}

absl::Status MemoryJobStore::writable() {
  if (!batch_failure_.ok()) return batch_failure_;
  if (!before_batches_.empty()) batch_failure_ = write_failure_;
  return write_failure_;
}

MemoryJobStore::Job* MemoryJobStore::find_job(const std::string& job_id) {
  auto job = state_.jobs.find(job_id);
  return job == state_.jobs.end() ? nullptr : &job->second;
}

MemoryJobStore::Rank* MemoryJobStore::find_rank(const std::string& job_id, int rank) {
  Job* job = find_job(job_id);
  if (job == nullptr || rank < 0 || rank >= static_cast<int>(job->ranks.size())) return nullptr;
  return &job->ranks[static_cast<size_t>(rank)];
}

absl::Status MemoryJobStore::create_job(const std::string& id, const JobSpec& spec, int64_t created_unix_ms) {
  PESC_RETURN_IF_ERROR(writable());
  if (state_.jobs.contains(id)) return absl::AlreadyExistsError(absl::StrCat("job ", id, " exists already"));
  Job& job = state_.jobs[id];
  job.record.id = id;
  job.record.spec = spec;
  job.record.created_unix_ms = created_unix_ms;
  job.record.progress.total = spec.repetitions;
  job.record.progress.pending = spec.repetitions;
  job.ranks.resize(static_cast<size_t>(std::max(0, spec.repetitions)));
  job.blobs.insert(spec.process.sha256);
  for (const SharedInput& shared : spec.shared) job.blobs.insert(shared.blob.sha256);
  job.blobs.erase("");
  return absl::OkStatus();
}

absl::StatusOr<JobRecord> MemoryJobStore::job(const std::string& id) {
  PESC_RETURN_IF_ERROR(batch_failure_);
  const Job* job = find_job(id);
  if (job == nullptr) return no_such_job(id);
  return job->record;
}

absl::StatusOr<std::vector<JobRecord>> MemoryJobStore::jobs() {
  PESC_RETURN_IF_ERROR(batch_failure_);
  std::vector<JobRecord> all;
  for (const auto& [id, job] : state_.jobs) all.push_back(job.record);
  std::stable_sort(all.begin(), all.end(),
                   [](const JobRecord& a, const JobRecord& b) { return a.created_unix_ms < b.created_unix_ms; });
  return all;
}

absl::StatusOr<std::vector<JobRecord>> MemoryJobStore::running_jobs() {
  PESC_ASSIGN_OR_RETURN(std::vector<JobRecord> all, jobs());
  std::erase_if(all, [](const JobRecord& job) { return job.state != JobState::kRunning; });
  return all;
}

absl::StatusOr<std::vector<int>> MemoryJobStore::pending_ranks(const std::string& job_id, int limit) {
  PESC_RETURN_IF_ERROR(batch_failure_);
  std::vector<int> ranks;
  const Job* job = find_job(job_id);
  if (job == nullptr) return ranks;
  for (size_t rank = 0; rank < job->ranks.size() && static_cast<int>(ranks.size()) < limit; ++rank) {
    if (job->ranks[rank].state == RankStatus::kPending) ranks.push_back(static_cast<int>(rank));
  }
  return ranks;
}

absl::StatusOr<JobStore::StartedAttempt> MemoryJobStore::add_attempt(const std::string& job_id, int rank,
                                                                     const std::string& worker_id, int64_t now_unix_ms,
                                                                     RankStatus from) {
  Rank* row = find_rank(job_id, rank);
  if (row == nullptr || row->state != from) {
    return absl::FailedPreconditionError(absl::StrCat("rank ", rank, " of job ", job_id, " is not ",
                                                      from == RankStatus::kPending ? "pending" : "running"));
  }
  const int64_t id = ++state_.last_attempt_id;
  state_.attempts[id] = Attempt{.job_id = job_id, .rank = rank, .worker_id = worker_id, .started_unix_ms = now_unix_ms};
  if (from != RankStatus::kRunning) row->attempt_id = id;
  row->state = RankStatus::kRunning;
  row->attempts += 1;
  StartedAttempt started{.id = id, .rank = rank, .worker_id = worker_id};
  started.checkpoint = row->checkpoint;
  return started;
}

absl::StatusOr<std::vector<JobStore::StartedAttempt>> MemoryJobStore::start_attempts(const std::string& job_id,
                                                                                     const std::vector<Placed>& placed,
                                                                                     int64_t now_unix_ms) {
  PESC_RETURN_IF_ERROR(writable());
  std::vector<StartedAttempt> started;
  for (const Placed& rank : placed) {
    auto attempt = add_attempt(job_id, rank.rank, rank.worker_id, now_unix_ms, RankStatus::kPending);
    if (attempt.ok()) started.push_back(*std::move(attempt));
  }
  if (!started.empty()) {
    move_counter(find_job(job_id)->record.progress, RankStatus::kPending, RankStatus::kRunning,
                 static_cast<int>(started.size()));
  }
  return started;
}

absl::StatusOr<JobStore::StartedAttempt> MemoryJobStore::start_duplicate(const std::string& job_id, int rank,
                                                                         const std::string& worker_id,
                                                                         int64_t now_unix_ms) {
  PESC_RETURN_IF_ERROR(writable());
  return add_attempt(job_id, rank, worker_id, now_unix_ms, RankStatus::kRunning);
}

std::vector<AttemptRecord> MemoryJobStore::other_running_attempts(const std::string& job_id, int rank,
                                                                  int64_t except) const {
  std::vector<AttemptRecord> others;
  for (const auto& [id, attempt] : state_.attempts) {
    if (id == except || attempt.state != AttemptState::kRunning || attempt.job_id != job_id || attempt.rank != rank) {
      continue;
    }
    others.push_back({id, job_id, rank, attempt.worker_id, attempt.started_unix_ms});
  }
  return others;
}

void MemoryJobStore::record_ended_rank(Job& job, const RankRecord& ended) {
  Rank& rank = job.ranks[static_cast<size_t>(ended.result.rank)];
  rank.state = ended.result.status;
  rank.finish_seq = ended.finish_seq;
  if (ended.output.blob) job.blobs.insert(ended.output.blob->sha256);
  if (ended.files.blob) job.blobs.insert(ended.files.blob->sha256);
  job.blobs.erase("");
}

std::pair<int64_t, bool> MemoryJobStore::count_ended_ranks(Job& job, int succeeded, int failed, int requeued,
                                                           int64_t now_unix_ms) {
  Progress& progress = job.record.progress;
  job.next_seq += succeeded + failed;
  progress.pending += requeued;
  progress.running -= succeeded + failed + requeued;
  progress.succeeded += succeeded;
  progress.failed += failed;
  if (job.record.state == JobState::kRunning && progress.pending == 0 && progress.running == 0) {
    job.record.state = JobState::kFinished;
    job.record.finished_unix_ms = now_unix_ms;
  }
  return {job.next_seq, job.record.state == JobState::kFinished};
}

absl::StatusOr<std::optional<JobStore::Accepted>> MemoryJobStore::finish_attempt(int64_t attempt_id,
                                                                                 RankRecord ended,
                                                                                 int64_t now_unix_ms) {
  PESC_RETURN_IF_ERROR(writable());
  auto found = state_.attempts.find(attempt_id);
  if (found == state_.attempts.end() || found->second.state != AttemptState::kRunning) return std::nullopt;
  Attempt& attempt = found->second;
  Rank* rank = find_rank(attempt.job_id, attempt.rank);
  if (rank == nullptr || rank->state != RankStatus::kRunning) return std::nullopt;
  Job& job = *find_job(attempt.job_id);
  Accepted accepted;
  accepted.job_id = attempt.job_id;
  accepted.user = job.record.spec.user;
  RankResult& result = ended.result;
  result.rank = attempt.rank;
  result.worker = attempt.worker_id;
  result.attempt = attempt_id;
  result.attempts = rank->attempts;
  if (result.status != RankStatus::kSucceeded) result.status = RankStatus::kFailed;
  const bool failed = result.status == RankStatus::kFailed;

  std::vector<AttemptRecord> others = other_running_attempts(attempt.job_id, attempt.rank, attempt_id);
  if (failed && !others.empty()) {
    attempt.state = AttemptState::kLost;
    if (rank->attempt_id == attempt_id) rank->attempt_id = others.front().id;
    return std::nullopt;
  }
  rank->attempt_id = attempt_id;
  for (const AttemptRecord& other : others) state_.attempts[other.id].state = AttemptState::kCancelled;
  accepted.superseded = std::move(others);
  accepted.requeued = goes_again(result, rank->own_failures, rank->worker_failures,
                                 attempts_allowed(job.record.spec.options.max_attempts));
  if (ended.checkpoint) {
    rank->checkpoint = ended.checkpoint;
    job.blobs.insert(ended.checkpoint->sha256);
  }
  if (accepted.requeued) {
    (never_ran(result) ? rank->worker_failures : rank->own_failures) += 1;
    rank->state = RankStatus::kPending;
    rank->attempt_id = 0;
    move_counter(job.record.progress, RankStatus::kRunning, RankStatus::kPending, 1);
  } else {
    const bool succeeded = result.status == RankStatus::kSucceeded;
    auto [next_seq, finished] = count_ended_ranks(job, succeeded ? 1 : 0, succeeded ? 0 : 1, 0, now_unix_ms);
    ended.finish_seq = next_seq;
    accepted.job_finished = finished;
    record_ended_rank(job, ended);
    if (auto worker = state_.workers.find(result.worker); worker != state_.workers.end()) {
      worker->second.ranks_done += 1;
    }
  }
  attempt.state = accepted.requeued ? AttemptState::kRetried : AttemptState::kAccepted;
  attempt.result = ended;
  state_.usage[accepted.user] += run_time_ms(result);
  accepted.result = std::move(ended);
  return accepted;
}

absl::StatusOr<JobStore::StartedAttempt> MemoryJobStore::start_chunk(const std::string& job_id, int first_rank,
                                                                     int count, const std::string& worker_id,
                                                                     int64_t now_unix_ms) {
  PESC_RETURN_IF_ERROR(writable());
  for (int rank = first_rank; rank < first_rank + count; ++rank) {
    const Rank* row = find_rank(job_id, rank);
    if (row == nullptr || row->state != RankStatus::kPending) {
      return absl::FailedPreconditionError(
          absl::StrCat("ranks ", first_rank, "..", first_rank + count - 1, " of job ", job_id, " are not all pending"));
    }
  }
  const int64_t id = ++state_.last_attempt_id;
  state_.attempts[id] = Attempt{.job_id = job_id,
                                .rank = first_rank,
                                .worker_id = worker_id,
                                .started_unix_ms = now_unix_ms,
                                .rank_count = count};
  for (int rank = first_rank; rank < first_rank + count; ++rank) {
    Rank& row = *find_rank(job_id, rank);
    row.state = RankStatus::kRunning;
    row.attempt_id = id;
    row.attempts += 1;
  }
  move_counter(find_job(job_id)->record.progress, RankStatus::kPending, RankStatus::kRunning, count);
  return StartedAttempt{.id = id, .rank = first_rank, .rank_count = count, .worker_id = worker_id};
}

int MemoryJobStore::requeue_chunk_ranks(Job& job, int64_t attempt_id, int first_rank, int rank_count) {
  int requeued = 0;
  for (int rank = first_rank; rank < first_rank + rank_count && rank < static_cast<int>(job.ranks.size()); ++rank) {
    Rank& row = job.ranks[static_cast<size_t>(rank)];
    if (row.attempt_id != attempt_id || row.state != RankStatus::kRunning) continue;
    row.state = RankStatus::kPending;
    row.attempt_id = 0;
    requeued += 1;
  }
  return requeued;
}

absl::StatusOr<std::optional<JobStore::ChunkAccepted>> MemoryJobStore::finish_chunk(int64_t attempt_id,
                                                                                    std::vector<RankRecord> results,
                                                                                    int64_t now_unix_ms) {
  PESC_RETURN_IF_ERROR(writable());
  auto found = state_.attempts.find(attempt_id);
  if (found == state_.attempts.end() || found->second.state != AttemptState::kRunning) return std::nullopt;
  Attempt& attempt = found->second;
  Job* job = find_job(attempt.job_id);
  if (job == nullptr) return std::nullopt;
  ChunkAccepted chunk;
  chunk.job_id = attempt.job_id;
  chunk.user = job->record.spec.user;
  int64_t finish_seq = job->next_seq;
  int succeeded = 0;
  int failed = 0;
  for (RankRecord& ended : results) {
    RankResult& result = ended.result;
    if (result.rank < attempt.rank || result.rank >= attempt.rank + attempt.rank_count) continue;
    Rank* rank = find_rank(attempt.job_id, result.rank);
    if (rank == nullptr || rank->attempt_id != attempt_id || rank->state != RankStatus::kRunning) continue;
    if (result.status != RankStatus::kSucceeded) result.status = RankStatus::kFailed;
    state_.usage[chunk.user] += run_time_ms(result);
    if (goes_again(result, rank->own_failures, rank->worker_failures,
                   attempts_allowed(job->record.spec.options.max_attempts))) {
      (never_ran(result) ? rank->worker_failures : rank->own_failures) += 1;
      rank->state = RankStatus::kPending;
      rank->attempt_id = 0;
      chunk.requeued += 1;
      continue;
    }
    result.worker = attempt.worker_id;
    result.attempt = attempt_id;
    result.attempts = rank->attempts;
    ended.finish_seq = ++finish_seq;
    record_ended_rank(*job, ended);
    rank->chunk_result = ended;
    (result.status == RankStatus::kSucceeded ? succeeded : failed) += 1;
    chunk.results.push_back(std::move(ended));
  }
  // Ranks the worker did not report (it stopped short) go again.
  chunk.requeued += requeue_chunk_ranks(*job, attempt_id, attempt.rank, attempt.rank_count);
  chunk.job_finished = count_ended_ranks(*job, succeeded, failed, chunk.requeued, now_unix_ms).second;
  attempt.state = AttemptState::kAccepted;
  if (auto worker = state_.workers.find(attempt.worker_id); worker != state_.workers.end()) {
    worker->second.ranks_done += succeeded + failed;
  }
  return chunk;
}

absl::Status MemoryJobStore::keep_cancelled_output(int64_t attempt_id, RankRecord result) {
  PESC_RETURN_IF_ERROR(writable());
  auto found = state_.attempts.find(attempt_id);
  if (found == state_.attempts.end() || found->second.state != AttemptState::kCancelled ||
      found->second.rank_count != 1) {
    return absl::OkStatus();
  }
  Attempt& attempt = found->second;
  Rank* rank = find_rank(attempt.job_id, attempt.rank);
  if (rank == nullptr || rank->attempt_id != attempt_id || rank->state != RankStatus::kCancelled) {
    return absl::OkStatus();
  }
  Job& job = *find_job(attempt.job_id);
  result.result.rank = attempt.rank;
  result.result.attempts = rank->attempts;
  result.result.attempt = attempt_id;
  result.result.status = RankStatus::kCancelled;
  result.finish_seq = ++job.next_seq;
  attempt.state = AttemptState::kAccepted;
  attempt.result = result;
  record_ended_rank(job, result);
  return absl::OkStatus();
}

absl::Status MemoryJobStore::save_checkpoint(int64_t attempt_id, const BlobId& checkpoint) {
  PESC_RETURN_IF_ERROR(writable());
  auto found = state_.attempts.find(attempt_id);
  if (found == state_.attempts.end()) return absl::OkStatus();
  Rank* rank = find_rank(found->second.job_id, found->second.rank);
  if (rank == nullptr || rank->attempt_id != attempt_id || rank->state != RankStatus::kRunning) {
    return absl::OkStatus();
  }
  rank->checkpoint = checkpoint;
  if (!checkpoint.sha256.empty()) find_job(found->second.job_id)->blobs.insert(checkpoint.sha256);
  return absl::OkStatus();
}

absl::Status MemoryJobStore::requeue_attempts(const std::vector<int64_t>& attempt_ids) {
  PESC_RETURN_IF_ERROR(writable());
  for (int64_t attempt_id : attempt_ids) {
    auto found = state_.attempts.find(attempt_id);
    if (found == state_.attempts.end() || found->second.state != AttemptState::kRunning) continue;
    Attempt& attempt = found->second;
    attempt.state = AttemptState::kLost;
    Job* job = find_job(attempt.job_id);
    if (job == nullptr) continue;
    if (attempt.rank_count > 1) {  // a chunk: its ranks not yet finished queue again
      const int requeued = requeue_chunk_ranks(*job, attempt_id, attempt.rank, attempt.rank_count);
      move_counter(job->record.progress, RankStatus::kRunning, RankStatus::kPending, requeued);
      continue;
    }
    Rank& rank = job->ranks[static_cast<size_t>(attempt.rank)];
    if (auto others = other_running_attempts(attempt.job_id, attempt.rank, attempt_id); !others.empty()) {
      // A duplicate runs on: the rank follows it instead of queueing again.
      if (rank.attempt_id == attempt_id) rank.attempt_id = others.front().id;
      continue;
    }
    if (rank.attempt_id != attempt_id || rank.state != RankStatus::kRunning) continue;
    rank.state = RankStatus::kPending;
    rank.attempt_id = 0;
    move_counter(job->record.progress, RankStatus::kRunning, RankStatus::kPending, 1);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MemoryJobStore::latest_worker(const std::string& job_id) {
  PESC_RETURN_IF_ERROR(batch_failure_);
  for (auto attempt = state_.attempts.rbegin(); attempt != state_.attempts.rend(); ++attempt) {
    if (attempt->second.job_id == job_id && attempt->second.state != AttemptState::kLost) {
      return attempt->second.worker_id;
    }
  }
  return std::string();
}

absl::StatusOr<std::vector<AttemptRecord>> MemoryJobStore::running_attempts(const std::string& job_id) {
  PESC_RETURN_IF_ERROR(batch_failure_);
  std::vector<AttemptRecord> running;
  for (const auto& [id, attempt] : state_.attempts) {
    if (attempt.state != AttemptState::kRunning || (!job_id.empty() && attempt.job_id != job_id)) continue;
    running.push_back(
        {id, attempt.job_id, attempt.rank, attempt.worker_id, attempt.started_unix_ms, attempt.rank_count});
  }
  return running;
}

absl::StatusOr<std::vector<AttemptRecord>> MemoryJobStore::end_job(const std::string& job_id, JobState final_state,
                                                                   const std::string& failure, int64_t now_unix_ms) {
  PESC_RETURN_IF_ERROR(writable());
  std::vector<AttemptRecord> to_stop;
  Job* job = find_job(job_id);
  if (job == nullptr) return to_stop;
  int64_t finish_seq = job->next_seq;
  for (size_t r = 0; r < job->ranks.size(); ++r) {
    Rank& rank = job->ranks[r];
    if (rank.state != RankStatus::kPending && rank.state != RankStatus::kRunning) continue;
    // A chunk's ranks share their attempt: stopped once.
    if (rank.state == RankStatus::kRunning && (to_stop.empty() || to_stop.back().id != rank.attempt_id)) {
      Attempt& attempt = state_.attempts[rank.attempt_id];
      to_stop.push_back({rank.attempt_id, job_id, static_cast<int>(r), attempt.worker_id});
      attempt.state = AttemptState::kCancelled;
    }
    rank.state = RankStatus::kCancelled;
    rank.finish_seq = ++finish_seq;
  }
  // Stragglers' duplicates still run beside the attempts stopped above.
  for (auto& [id, attempt] : state_.attempts) {
    if (attempt.state != AttemptState::kRunning || attempt.job_id != job_id) continue;
    attempt.state = AttemptState::kCancelled;
    to_stop.push_back({id, job_id, attempt.rank, attempt.worker_id});
  }
  // A failed job may have failed with its last ranks, which finished it.
  const JobState state = job->record.state;
  if (state == JobState::kRunning || (final_state == JobState::kFailed && state == JobState::kFinished)) {
    Progress& progress = job->record.progress;
    job->record.state = final_state;
    job->record.failure = failure;
    job->record.finished_unix_ms = now_unix_ms;
    progress.cancelled += progress.pending + progress.running;
    progress.pending = 0;
    progress.running = 0;
    job->next_seq = finish_seq;
  }
  return to_stop;
}

absl::StatusOr<std::vector<int>> MemoryJobStore::unsucceeded_ranks(const std::string& job_id) {
  PESC_RETURN_IF_ERROR(batch_failure_);
  std::vector<int> ranks;
  const Job* job = find_job(job_id);
  if (job == nullptr) return no_such_job(job_id);
  for (size_t r = 0; r < job->ranks.size(); ++r) {
    if (job->ranks[r].state != RankStatus::kSucceeded) ranks.push_back(static_cast<int>(r));
  }
  return ranks;
}

absl::StatusOr<JobStore::RankRow> MemoryJobStore::rank_row(const std::string& job_id, int rank) {
  PESC_RETURN_IF_ERROR(batch_failure_);
  const Rank* row = find_rank(job_id, rank);
  if (row == nullptr) return absl::NotFoundError(absl::StrCat("job ", job_id, " has no rank ", rank));
  return RankRow{.state = row->state, .finish_seq = row->finish_seq};
}

absl::Status MemoryJobStore::reopen_ranks(const std::string& job_id, const std::vector<int>& ranks) {
  PESC_RETURN_IF_ERROR(writable());
  Job* job = find_job(job_id);
  if (job == nullptr) return no_such_job(job_id);
  Progress& progress = job->record.progress;
  for (int r : ranks) {
    Rank& rank = job->ranks[static_cast<size_t>(r)];
    switch (rank.state) {
      case RankStatus::kSucceeded: progress.succeeded -= 1; break;
      case RankStatus::kFailed: progress.failed -= 1; break;
      case RankStatus::kCancelled: progress.cancelled -= 1; break;
      default: continue;  // an ended job has no other
    }
    // The result it had stays with its attempt, as a retried one's does
    // (a chunk's attempt holds its other ranks' results: it stays).
    if (auto attempt = state_.attempts.find(rank.attempt_id);
        attempt != state_.attempts.end() && attempt->second.state == AttemptState::kAccepted &&
        attempt->second.rank_count == 1) {
      attempt->second.state = AttemptState::kRetried;
    }
    rank = Rank{.attempts = rank.attempts, .checkpoint = rank.checkpoint};
    progress.pending += 1;
  }
  job->record.state = JobState::kRunning;
  job->record.finished_unix_ms = 0;
  job->record.failure.clear();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> MemoryJobStore::delete_job(const std::string& job_id) {
  PESC_RETURN_IF_ERROR(writable());
  auto job = state_.jobs.find(job_id);
  if (job == state_.jobs.end()) return no_such_job(job_id);
  const std::set<std::string> released = std::move(job->second.blobs);
  state_.jobs.erase(job);
  std::erase_if(state_.attempts, [&](const auto& attempt) { return attempt.second.job_id == job_id; });
  std::vector<std::string> unused;
  for (const std::string& sha256 : released) {
    if (std::none_of(state_.jobs.begin(), state_.jobs.end(),
                     [&](const auto& other) { return other.second.blobs.contains(sha256); })) {
      unused.push_back(sha256);
    }
  }
  return unused;
}

absl::StatusOr<JobStore::RankPage> MemoryJobStore::ranks_page(const std::string& job_id,
                                                             std::optional<RankStatus> state, int64_t offset,
                                                             int limit) {
  PESC_RETURN_IF_ERROR(batch_failure_);
  RankPage page;
  const Job* job = find_job(job_id);
  if (job == nullptr) return page;
  for (size_t r = 0; r < job->ranks.size(); ++r) {
    const Rank& rank = job->ranks[r];
    if (state && rank.state != *state) continue;
    if (page.total++ < offset || static_cast<int>(page.ranks.size()) >= limit) continue;
    RankRecord result;
    auto attempt = state_.attempts.find(rank.attempt_id);
    if (rank.chunk_result) {
      result = *rank.chunk_result;
    } else if (attempt != state_.attempts.end() && attempt->second.state == AttemptState::kAccepted &&
               attempt->second.result) {
      result = *attempt->second.result;
    } else if (attempt != state_.attempts.end() && attempt->second.state == AttemptState::kRunning) {
      result.result.worker = attempt->second.worker_id;
      result.result.start = from_unix_ms(attempt->second.started_unix_ms);
    }
    result.result.rank = static_cast<int>(r);
    result.result.status = rank.state;
    result.finish_seq = rank.finish_seq;
    result.result.attempts = rank.attempts;
    page.ranks.push_back(std::move(result));
  }
  return page;
}

absl::StatusOr<std::vector<RankRecord>> MemoryJobStore::results_after(const std::string& job_id, int64_t after_seq,
                                                                      int limit) {
  PESC_RETURN_IF_ERROR(batch_failure_);
  std::vector<RankRecord> results;
  const Job* job = find_job(job_id);
  if (job == nullptr) return results;
  std::vector<std::pair<int64_t, int>> ended;  // finish_seq, rank
  for (size_t rank = 0; rank < job->ranks.size(); ++rank) {
    if (job->ranks[rank].finish_seq > after_seq) ended.emplace_back(job->ranks[rank].finish_seq, rank);
  }
  std::sort(ended.begin(), ended.end());
  if (static_cast<int>(ended.size()) > limit) ended.resize(static_cast<size_t>(std::max(0, limit)));
  for (const auto& [finish_seq, r] : ended) {
    const Rank& rank = job->ranks[static_cast<size_t>(r)];
    RankRecord result;
    if (rank.chunk_result) {
      result = *rank.chunk_result;
    } else if (auto attempt = state_.attempts.find(rank.attempt_id); attempt != state_.attempts.end() &&
                                                                     attempt->second.state == AttemptState::kAccepted &&
                                                                     attempt->second.result) {
      result = *attempt->second.result;
    }
    result.result.rank = r;
    result.result.status = rank.state;
    result.finish_seq = finish_seq;
    if (result.result.attempts > 1) {
      for (const auto& [id, attempt] : state_.attempts) {
        if (attempt.job_id == job_id && attempt.rank <= r && attempt.rank + attempt.rank_count > r &&
            id != result.result.attempt) {
          result.result.other_attempt_workers.push_back(attempt.worker_id);
        }
      }
    }
    results.push_back(std::move(result));
  }
  return results;
}

absl::StatusOr<std::map<std::string, int64_t>> MemoryJobStore::usage_by_user() {
  PESC_RETURN_IF_ERROR(batch_failure_);
  return state_.usage;
}

absl::Status MemoryJobStore::record_worker(const std::string& id, const std::string& host, int slots,
                                           const std::string& credential, int64_t now_unix_ms) {
  PESC_RETURN_IF_ERROR(writable());
  Worker& worker = state_.workers[id];
  worker.host = host;
  worker.slots = slots;
  worker.last_seen_unix_ms = now_unix_ms;
  worker.credential = credential;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<WorkerRecord>> MemoryJobStore::workers() {
  PESC_RETURN_IF_ERROR(batch_failure_);
  std::vector<WorkerRecord> all;
  for (const auto& [id, worker] : state_.workers) {
    all.push_back({.id = id,
                   .host = worker.host,
                   .slots = worker.slots,
                   .last_seen_unix_ms = worker.last_seen_unix_ms,
                   .ranks_done = worker.ranks_done});
  }
  return all;
}

absl::StatusOr<std::map<std::string, std::string>> MemoryJobStore::worker_credentials() {
  PESC_RETURN_IF_ERROR(batch_failure_);
  std::map<std::string, std::string> credentials;
  for (const auto& [id, worker] : state_.workers) credentials[id] = worker.credential;
  return credentials;
}

absl::Status MemoryJobStore::record_pause(const std::string& worker_id, const std::string& reason,
                                          int64_t now_unix_ms) {
  PESC_RETURN_IF_ERROR(writable());
  std::vector<WorkerPause>& pauses = state_.pauses[worker_id];
  const bool open = !pauses.empty() && pauses.back().end == kStillPaused;
  if ((open ? pauses.back().reason : "") == reason) return absl::OkStatus();
  if (open) pauses.back().end = from_unix_ms(now_unix_ms);
  if (!reason.empty()) {
    pauses.push_back({.worker = worker_id, .start = from_unix_ms(now_unix_ms), .end = kStillPaused, .reason = reason});
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<WorkerPause>> MemoryJobStore::pauses_between(int64_t from_ms, int64_t to_ms) {
  PESC_RETURN_IF_ERROR(batch_failure_);
  std::vector<WorkerPause> overlapping;
  for (const auto& [worker_id, pauses] : state_.pauses) {
    for (const WorkerPause& pause : pauses) {
      if (pause.start < from_unix_ms(to_ms) && (pause.end == kStillPaused || pause.end > from_unix_ms(from_ms))) {
        overlapping.push_back(pause);
      }
    }
  }
  return overlapping;
}

}  // namespace pesc
