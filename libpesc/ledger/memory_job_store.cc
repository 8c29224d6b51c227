#include "ledger/memory_job_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "ledger/retry_rules.h"

namespace pesc {
namespace {

absl::Status no_such_job(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("no job \"", id, "\": `pesc jobs` lists the jobs there are"));
}

void add_to_counter(v1::JobProgress& progress, v1::RankState state, int count) {
  if (state == v1::RANK_STATE_PENDING) {
    progress.set_pending(progress.pending() + count);
  } else {
    progress.set_running(progress.running() + count);
  }
}

// Moves `count` ranks between the pending and the running counter.
void move_counter(v1::JobProgress& progress, v1::RankState from, v1::RankState to, int count) {
  add_to_counter(progress, from, -count);
  add_to_counter(progress, to, count);
}

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
  job.record.progress.set_total(spec.repetitions);
  job.record.progress.set_pending(spec.repetitions);
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
  std::erase_if(all, [](const JobRecord& job) { return job.state != v1::JOB_STATE_RUNNING; });
  return all;
}

absl::StatusOr<std::vector<int>> MemoryJobStore::pending_ranks(const std::string& job_id, int limit) {
  PESC_RETURN_IF_ERROR(batch_failure_);
  std::vector<int> ranks;
  const Job* job = find_job(job_id);
  if (job == nullptr) return ranks;
  for (size_t rank = 0; rank < job->ranks.size() && static_cast<int>(ranks.size()) < limit; ++rank) {
    if (job->ranks[rank].state == v1::RANK_STATE_PENDING) ranks.push_back(static_cast<int>(rank));
  }
  return ranks;
}

absl::StatusOr<JobStore::StartedAttempt> MemoryJobStore::add_attempt(const std::string& job_id, int rank,
                                                                     const std::string& worker_id, int64_t now_unix_ms,
                                                                     v1::RankState from) {
  Rank* row = find_rank(job_id, rank);
  if (row == nullptr || row->state != from) {
    return absl::FailedPreconditionError(absl::StrCat("rank ", rank, " of job ", job_id, " is not ",
                                                      from == v1::RANK_STATE_PENDING ? "pending" : "running"));
  }
  const int64_t id = ++state_.last_attempt_id;
  state_.attempts[id] = Attempt{.job_id = job_id, .rank = rank, .worker_id = worker_id, .started_unix_ms = now_unix_ms};
  if (from != v1::RANK_STATE_RUNNING) row->attempt_id = id;
  row->state = v1::RANK_STATE_RUNNING;
  row->attempts += 1;
  StartedAttempt started{.id = id, .rank = rank, .worker_id = worker_id};
  if (row->checkpoint) started.checkpoint = *row->checkpoint;
  return started;
}

absl::StatusOr<std::vector<JobStore::StartedAttempt>> MemoryJobStore::start_attempts(const std::string& job_id,
                                                                                     const std::vector<Placed>& placed,
                                                                                     int64_t now_unix_ms) {
  PESC_RETURN_IF_ERROR(writable());
  std::vector<StartedAttempt> started;
  for (const Placed& rank : placed) {
    auto attempt = add_attempt(job_id, rank.rank, rank.worker_id, now_unix_ms, v1::RANK_STATE_PENDING);
    if (attempt.ok()) started.push_back(*std::move(attempt));
  }
  if (!started.empty()) {
    move_counter(find_job(job_id)->record.progress, v1::RANK_STATE_PENDING, v1::RANK_STATE_RUNNING,
                 static_cast<int>(started.size()));
  }
  return started;
}

absl::StatusOr<JobStore::StartedAttempt> MemoryJobStore::start_duplicate(const std::string& job_id, int rank,
                                                                         const std::string& worker_id,
                                                                         int64_t now_unix_ms) {
  PESC_RETURN_IF_ERROR(writable());
  return add_attempt(job_id, rank, worker_id, now_unix_ms, v1::RANK_STATE_RUNNING);
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

void MemoryJobStore::record_ended_rank(Job& job, const v1::RankResult& result) {
  Rank& rank = job.ranks[static_cast<size_t>(result.rank())];
  rank.state = result.state();
  rank.finish_seq = result.finish_seq();
  job.blobs.insert(result.output_txt().blob().sha256());
  job.blobs.insert(result.files().sha256());
  job.blobs.erase("");
}

std::pair<int64_t, bool> MemoryJobStore::count_ended_ranks(Job& job, int succeeded, int failed, int requeued,
                                                           int64_t now_unix_ms) {
  v1::JobProgress& progress = job.record.progress;
  job.next_seq += succeeded + failed;
  progress.set_pending(progress.pending() + requeued);
  progress.set_running(progress.running() - succeeded - failed - requeued);
  progress.set_succeeded(progress.succeeded() + succeeded);
  progress.set_failed(progress.failed() + failed);
  if (job.record.state == v1::JOB_STATE_RUNNING && progress.pending() == 0 && progress.running() == 0) {
    job.record.state = v1::JOB_STATE_FINISHED;
    job.record.finished_unix_ms = now_unix_ms;
  }
  return {job.next_seq, job.record.state == v1::JOB_STATE_FINISHED};
}

absl::StatusOr<std::optional<JobStore::Accepted>> MemoryJobStore::finish_attempt(int64_t attempt_id,
                                                                                 v1::RankResult result,
                                                                                 int64_t now_unix_ms) {
  PESC_RETURN_IF_ERROR(writable());
  auto found = state_.attempts.find(attempt_id);
  if (found == state_.attempts.end() || found->second.state != AttemptState::kRunning) return std::nullopt;
  Attempt& attempt = found->second;
  Rank* rank = find_rank(attempt.job_id, attempt.rank);
  if (rank == nullptr || rank->state != v1::RANK_STATE_RUNNING) return std::nullopt;
  Job& job = *find_job(attempt.job_id);
  Accepted accepted;
  accepted.job_id = attempt.job_id;
  accepted.user = job.record.spec.user;
  result.set_rank(attempt.rank);
  result.set_worker(attempt.worker_id);
  result.set_attempt_id(attempt_id);
  result.set_attempts(rank->attempts);
  if (result.state() != v1::RANK_STATE_SUCCEEDED) result.set_state(v1::RANK_STATE_FAILED);
  const bool failed = result.state() == v1::RANK_STATE_FAILED;

  std::vector<AttemptRecord> others = other_running_attempts(attempt.job_id, attempt.rank, attempt_id);
  if (failed && !others.empty()) {
    attempt.state = AttemptState::kLost;
    if (rank->attempt_id == attempt_id) rank->attempt_id = others.front().id;
    return std::nullopt;
  }
  rank->attempt_id = attempt_id;
  for (const AttemptRecord& other : others) state_.attempts[other.id].state = AttemptState::kCancelled;
  accepted.superseded = std::move(others);
  accepted.requeued = goes_again(result, rank->own_failures, rank->worker_failures, attempts_allowed(job.record.spec.options.max_attempts));
  if (result.has_checkpoint()) {
    rank->checkpoint = result.checkpoint();
    if (!result.checkpoint().sha256().empty()) job.blobs.insert(result.checkpoint().sha256());
  }
  if (accepted.requeued) {
    (never_ran(result) ? rank->worker_failures : rank->own_failures) += 1;
    rank->state = v1::RANK_STATE_PENDING;
    rank->attempt_id = 0;
    move_counter(job.record.progress, v1::RANK_STATE_RUNNING, v1::RANK_STATE_PENDING, 1);
  } else {
    const bool succeeded = result.state() == v1::RANK_STATE_SUCCEEDED;
    auto [next_seq, finished] = count_ended_ranks(job, succeeded ? 1 : 0, succeeded ? 0 : 1, 0, now_unix_ms);
    result.set_finish_seq(next_seq);
    accepted.job_finished = finished;
    record_ended_rank(job, result);
    if (auto worker = state_.workers.find(result.worker()); worker != state_.workers.end()) {
      worker->second.ranks_done += 1;
    }
  }
  attempt.state = accepted.requeued ? AttemptState::kRetried : AttemptState::kAccepted;
  attempt.result = result;
  state_.usage[accepted.user] += std::max<int64_t>(0, result.end_unix_ms() - result.start_unix_ms());
  accepted.result = std::move(result);
  return accepted;
}

absl::StatusOr<JobStore::StartedAttempt> MemoryJobStore::start_chunk(const std::string& job_id, int first_rank,
                                                                     int count, const std::string& worker_id,
                                                                     int64_t now_unix_ms) {
  PESC_RETURN_IF_ERROR(writable());
  for (int rank = first_rank; rank < first_rank + count; ++rank) {
    const Rank* row = find_rank(job_id, rank);
    if (row == nullptr || row->state != v1::RANK_STATE_PENDING) {
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
    row.state = v1::RANK_STATE_RUNNING;
    row.attempt_id = id;
    row.attempts += 1;
  }
  move_counter(find_job(job_id)->record.progress, v1::RANK_STATE_PENDING, v1::RANK_STATE_RUNNING, count);
  return StartedAttempt{.id = id, .rank = first_rank, .rank_count = count, .worker_id = worker_id};
}

int MemoryJobStore::requeue_chunk_ranks(Job& job, int64_t attempt_id, int first_rank, int rank_count) {
  int requeued = 0;
  for (int rank = first_rank; rank < first_rank + rank_count && rank < static_cast<int>(job.ranks.size()); ++rank) {
    Rank& row = job.ranks[static_cast<size_t>(rank)];
    if (row.attempt_id != attempt_id || row.state != v1::RANK_STATE_RUNNING) continue;
    row.state = v1::RANK_STATE_PENDING;
    row.attempt_id = 0;
    requeued += 1;
  }
  return requeued;
}

absl::StatusOr<std::optional<JobStore::ChunkAccepted>> MemoryJobStore::finish_chunk(int64_t attempt_id,
                                                                                    std::vector<v1::RankResult> results,
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
  for (v1::RankResult& result : results) {
    if (result.rank() < attempt.rank || result.rank() >= attempt.rank + attempt.rank_count) continue;
    Rank* rank = find_rank(attempt.job_id, result.rank());
    if (rank == nullptr || rank->attempt_id != attempt_id || rank->state != v1::RANK_STATE_RUNNING) continue;
    if (result.state() != v1::RANK_STATE_SUCCEEDED) result.set_state(v1::RANK_STATE_FAILED);
    state_.usage[chunk.user] += std::max<int64_t>(0, result.end_unix_ms() - result.start_unix_ms());
    if (goes_again(result, rank->own_failures, rank->worker_failures, attempts_allowed(job->record.spec.options.max_attempts))) {
      (never_ran(result) ? rank->worker_failures : rank->own_failures) += 1;
      rank->state = v1::RANK_STATE_PENDING;
      rank->attempt_id = 0;
      chunk.requeued += 1;
      continue;
    }
    result.set_worker(attempt.worker_id);
    result.set_attempt_id(attempt_id);
    result.set_attempts(rank->attempts);
    result.set_finish_seq(++finish_seq);
    record_ended_rank(*job, result);
    rank->chunk_result = result;
    (result.state() == v1::RANK_STATE_SUCCEEDED ? succeeded : failed) += 1;
    chunk.results.push_back(std::move(result));
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

absl::Status MemoryJobStore::keep_cancelled_output(int64_t attempt_id, v1::RankResult result) {
  PESC_RETURN_IF_ERROR(writable());
  auto found = state_.attempts.find(attempt_id);
  if (found == state_.attempts.end() || found->second.state != AttemptState::kCancelled ||
      found->second.rank_count != 1) {
    return absl::OkStatus();
  }
  Attempt& attempt = found->second;
  Rank* rank = find_rank(attempt.job_id, attempt.rank);
  if (rank == nullptr || rank->attempt_id != attempt_id || rank->state != v1::RANK_STATE_CANCELLED) {
    return absl::OkStatus();
  }
  Job& job = *find_job(attempt.job_id);
  result.set_rank(attempt.rank);
  result.set_attempts(rank->attempts);
  result.set_attempt_id(attempt_id);
  result.set_state(v1::RANK_STATE_CANCELLED);
  result.set_finish_seq(++job.next_seq);
  attempt.state = AttemptState::kAccepted;
  attempt.result = result;
  record_ended_rank(job, result);
  return absl::OkStatus();
}

absl::Status MemoryJobStore::save_checkpoint(int64_t attempt_id, const v1::BlobRef& checkpoint) {
  PESC_RETURN_IF_ERROR(writable());
  auto found = state_.attempts.find(attempt_id);
  if (found == state_.attempts.end()) return absl::OkStatus();
  Rank* rank = find_rank(found->second.job_id, found->second.rank);
  if (rank == nullptr || rank->attempt_id != attempt_id || rank->state != v1::RANK_STATE_RUNNING) {
    return absl::OkStatus();
  }
  rank->checkpoint = checkpoint;
  if (!checkpoint.sha256().empty()) find_job(found->second.job_id)->blobs.insert(checkpoint.sha256());
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
      move_counter(job->record.progress, v1::RANK_STATE_RUNNING, v1::RANK_STATE_PENDING, requeued);
      continue;
    }
    Rank& rank = job->ranks[static_cast<size_t>(attempt.rank)];
    if (auto others = other_running_attempts(attempt.job_id, attempt.rank, attempt_id); !others.empty()) {
      // A duplicate runs on: the rank follows it instead of queueing again.
      if (rank.attempt_id == attempt_id) rank.attempt_id = others.front().id;
      continue;
    }
    if (rank.attempt_id != attempt_id || rank.state != v1::RANK_STATE_RUNNING) continue;
    rank.state = v1::RANK_STATE_PENDING;
    rank.attempt_id = 0;
    move_counter(job->record.progress, v1::RANK_STATE_RUNNING, v1::RANK_STATE_PENDING, 1);
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

absl::StatusOr<std::vector<AttemptRecord>> MemoryJobStore::end_job(const std::string& job_id, v1::JobState final_state,
                                                                   const std::string& failure, int64_t now_unix_ms) {
  PESC_RETURN_IF_ERROR(writable());
  std::vector<AttemptRecord> to_stop;
  Job* job = find_job(job_id);
  if (job == nullptr) return to_stop;
  int64_t finish_seq = job->next_seq;
  for (size_t r = 0; r < job->ranks.size(); ++r) {
    Rank& rank = job->ranks[r];
    if (rank.state != v1::RANK_STATE_PENDING && rank.state != v1::RANK_STATE_RUNNING) continue;
    // A chunk's ranks share their attempt: stopped once.
    if (rank.state == v1::RANK_STATE_RUNNING && (to_stop.empty() || to_stop.back().id != rank.attempt_id)) {
      Attempt& attempt = state_.attempts[rank.attempt_id];
      to_stop.push_back({rank.attempt_id, job_id, static_cast<int>(r), attempt.worker_id});
      attempt.state = AttemptState::kCancelled;
    }
    rank.state = v1::RANK_STATE_CANCELLED;
    rank.finish_seq = ++finish_seq;
  }
  // Stragglers' duplicates still run beside the attempts stopped above.
  for (auto& [id, attempt] : state_.attempts) {
    if (attempt.state != AttemptState::kRunning || attempt.job_id != job_id) continue;
    attempt.state = AttemptState::kCancelled;
    to_stop.push_back({id, job_id, attempt.rank, attempt.worker_id});
  }
  // A failed job may have failed with its last ranks, which finished it.
  const v1::JobState state = job->record.state;
  if (state == v1::JOB_STATE_RUNNING || (final_state == v1::JOB_STATE_FAILED && state == v1::JOB_STATE_FINISHED)) {
    v1::JobProgress& progress = job->record.progress;
    job->record.state = final_state;
    job->record.failure = failure;
    job->record.finished_unix_ms = now_unix_ms;
    progress.set_cancelled(progress.cancelled() + progress.pending() + progress.running());
    progress.set_pending(0);
    progress.set_running(0);
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
    if (job->ranks[r].state != v1::RANK_STATE_SUCCEEDED) ranks.push_back(static_cast<int>(r));
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
  v1::JobProgress& progress = job->record.progress;
  for (int r : ranks) {
    Rank& rank = job->ranks[static_cast<size_t>(r)];
    switch (rank.state) {
      case v1::RANK_STATE_SUCCEEDED: progress.set_succeeded(progress.succeeded() - 1); break;
      case v1::RANK_STATE_FAILED: progress.set_failed(progress.failed() - 1); break;
      case v1::RANK_STATE_CANCELLED: progress.set_cancelled(progress.cancelled() - 1); break;
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
    progress.set_pending(progress.pending() + 1);
  }
  job->record.state = v1::JOB_STATE_RUNNING;
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

absl::StatusOr<JobStore::RankPage> MemoryJobStore::ranks_page(const std::string& job_id, v1::RankState state,
                                                             int64_t offset, int limit) {
  PESC_RETURN_IF_ERROR(batch_failure_);
  RankPage page;
  const Job* job = find_job(job_id);
  if (job == nullptr) return page;
  for (size_t r = 0; r < job->ranks.size(); ++r) {
    const Rank& rank = job->ranks[r];
    if (state != v1::RANK_STATE_UNSPECIFIED && rank.state != state) continue;
    if (page.total++ < offset || static_cast<int>(page.ranks.size()) >= limit) continue;
    v1::RankResult result;
    auto attempt = state_.attempts.find(rank.attempt_id);
    if (rank.chunk_result) {
      result = *rank.chunk_result;
    } else if (attempt != state_.attempts.end() && attempt->second.state == AttemptState::kAccepted &&
               attempt->second.result) {
      result = *attempt->second.result;
    } else if (attempt != state_.attempts.end() && attempt->second.state == AttemptState::kRunning) {
      result.set_worker(attempt->second.worker_id);
      result.set_start_unix_ms(attempt->second.started_unix_ms);
    }
    result.set_rank(static_cast<int>(r));
    result.set_state(rank.state);
    result.set_finish_seq(rank.finish_seq);
    result.set_attempts(rank.attempts);
    page.ranks.push_back(std::move(result));
  }
  return page;
}

absl::StatusOr<std::vector<v1::RankResult>> MemoryJobStore::results_after(const std::string& job_id, int64_t after_seq,
                                                                          int limit) {
  PESC_RETURN_IF_ERROR(batch_failure_);
  std::vector<v1::RankResult> results;
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
    v1::RankResult result;
    if (rank.chunk_result) {
      result = *rank.chunk_result;
    } else if (auto attempt = state_.attempts.find(rank.attempt_id); attempt != state_.attempts.end() &&
                                                                     attempt->second.state == AttemptState::kAccepted &&
                                                                     attempt->second.result) {
      result = *attempt->second.result;
    }
    result.set_rank(r);
    result.set_state(rank.state);
    result.set_finish_seq(finish_seq);
    if (result.attempts() > 1) {
      for (const auto& [id, attempt] : state_.attempts) {
        if (attempt.job_id == job_id && attempt.rank <= r && attempt.rank + attempt.rank_count > r &&
            id != result.attempt_id()) {
          result.add_other_attempt_workers(attempt.worker_id);
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

absl::StatusOr<std::vector<v1::WorkerInfo>> MemoryJobStore::workers() {
  PESC_RETURN_IF_ERROR(batch_failure_);
  std::vector<v1::WorkerInfo> all;
  for (const auto& [id, worker] : state_.workers) {
    v1::WorkerInfo info;
    info.set_id(id);
    info.set_host(worker.host);
    info.set_slots(worker.slots);
    info.set_last_seen_unix_ms(worker.last_seen_unix_ms);
    info.set_ranks_done(worker.ranks_done);
    all.push_back(std::move(info));
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
  std::vector<v1::WorkerPause>& pauses = state_.pauses[worker_id];
  const bool open = !pauses.empty() && pauses.back().end_unix_ms() == 0;
  if ((open ? pauses.back().reason() : "") == reason) return absl::OkStatus();
  if (open) pauses.back().set_end_unix_ms(now_unix_ms);
  if (!reason.empty()) {
    v1::WorkerPause& pause = pauses.emplace_back();
    pause.set_worker_id(worker_id);
    pause.set_start_unix_ms(now_unix_ms);
    pause.set_reason(reason);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::WorkerPause>> MemoryJobStore::pauses_between(int64_t from_unix_ms,
                                                                           int64_t to_unix_ms) {
  PESC_RETURN_IF_ERROR(batch_failure_);
  std::vector<v1::WorkerPause> overlapping;
  for (const auto& [worker_id, pauses] : state_.pauses) {
    for (const v1::WorkerPause& pause : pauses) {
      if (pause.start_unix_ms() < to_unix_ms && (pause.end_unix_ms() == 0 || pause.end_unix_ms() > from_unix_ms)) {
        overlapping.push_back(pause);
      }
    }
  }
  return overlapping;
}

}  // namespace pesc
