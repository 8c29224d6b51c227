#include "ledger/job_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace pesc {
namespace {

absl::Status no_such_rank(const std::string& job_id, int total, int rank) {
  return absl::OutOfRangeError(absl::StrCat("job ", job_id, " has ranks 0 to ", total - 1, "; there is no rank ", rank));
}

}  // namespace

JobStore::Batch::Batch(JobStore& store) : store_(store), open_(store.begin_batch()) {}

JobStore::Batch::~Batch() {
  if (open_) (void)store_.end_batch(false);  // not committed: nothing of it stays
}

absl::Status JobStore::Batch::commit() {
  if (!open_) return absl::OkStatus();  // without a batch every call committed on its own
  open_ = false;
  return store_.end_batch(true);
}

absl::StatusOr<JobStore::StartedAttempt> JobStore::start_attempt(const std::string& job_id, int rank,
                                                                 const std::string& worker_id, int64_t now_unix_ms) {
  PESC_ASSIGN_OR_RETURN(std::vector<StartedAttempt> started,
                        start_attempts(job_id, {{.rank = rank, .worker_id = worker_id}}, now_unix_ms));
  if (started.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("rank ", rank, " of job ", job_id, " is not pending"));
  }
  return started.front();
}

absl::StatusOr<std::vector<AttemptRecord>> JobStore::cancel_job(const std::string& job_id, int64_t now_unix_ms) {
  return end_job(job_id, JobState::kCancelled, "", now_unix_ms);
}

absl::StatusOr<std::vector<AttemptRecord>> JobStore::fail_job(const std::string& job_id, const std::string& failure,
                                                              int64_t now_unix_ms) {
  return end_job(job_id, JobState::kFailed, failure, now_unix_ms);
}

absl::StatusOr<RankRecord> JobStore::rank_now(const std::string& job_id, int rank) {
  PESC_ASSIGN_OR_RETURN(JobRecord job, this->job(job_id));
  if (rank < 0 || rank >= job.progress.total) return no_such_rank(job_id, job.progress.total, rank);
  PESC_ASSIGN_OR_RETURN(RankRow row, rank_row(job_id, rank));
  if (row.finish_seq > 0) {
    // finish_seqs are the job's own, one per ended rank.
    PESC_ASSIGN_OR_RETURN(std::vector<RankRecord> ended, results_after(job_id, row.finish_seq - 1, 1));
    if (!ended.empty() && ended.front().result.rank == rank) return ended.front();
  }
  RankRecord now;
  now.result.rank = rank;
  now.result.status = row.state;
  if (row.state != RankStatus::kRunning) return now;
  PESC_ASSIGN_OR_RETURN(std::vector<AttemptRecord> running, running_attempts(job_id));
  for (const AttemptRecord& attempt : running) {
    if (attempt.rank <= rank && rank < attempt.rank + attempt.rank_count) {
      now.result.attempt = attempt.id;
      now.result.worker = attempt.worker_id;
      break;
    }
  }
  return now;
}

absl::StatusOr<std::vector<int>> JobStore::retry_ranks(const std::string& job_id, std::vector<int> ranks) {
  PESC_ASSIGN_OR_RETURN(JobRecord job, this->job(job_id));
  if (job.state == JobState::kRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " is still running (", job.progress.pending + job.progress.running,
                     " ranks pending or running): retry its ranks once it has ended, or cancel it first"));
  }
  if (ranks.empty()) {
    PESC_ASSIGN_OR_RETURN(ranks, unsucceeded_ranks(job_id));
    if (ranks.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("every rank of job ", job_id,
                                                        " succeeded: nothing to retry (name the ranks to run "
                                                        "again, e.g. --ranks 3,7-9)"));
    }
  }
  const int total = job.progress.total;
  for (int rank : ranks) {
    if (rank < 0 || rank >= total) return no_such_rank(job_id, total, rank);
  }
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  PESC_RETURN_IF_ERROR(reopen_ranks(job_id, ranks));
  return ranks;
}

}  // namespace pesc
