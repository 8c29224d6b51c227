#ifndef PESC_LEDGER_MEMORY_JOB_STORE_H_
#define PESC_LEDGER_MEMORY_JOB_STORE_H_

// The job ledger in memory: what unit tests of the dispatcher and the
// coordinator run on, with no file and no SQLite. It keeps the SQLite
// store's contract call for call (the conformance suite runs against both),
// batches included: a batch not committed, or failed, leaves nothing.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ledger/job_store.h"

namespace pesc {

class MemoryJobStore final : public JobStore {
 public:
  MemoryJobStore() = default;
  ~MemoryJobStore() override = default;

  // Every call that writes fails with `failure`, as on a full disk, until
  // it is given OkStatus again: for tests of what callers do then.
  void fail_writes(absl::Status failure) { write_failure_ = std::move(failure); }

  absl::Status create_job(const std::string& id, const JobSpec& spec, int64_t created_unix_ms) override;
  absl::Status wait_for_disk() override { return absl::OkStatus(); }
  absl::StatusOr<JobRecord> job(const std::string& id) override;
  absl::StatusOr<std::vector<JobRecord>> jobs() override;
  absl::StatusOr<std::vector<JobRecord>> running_jobs() override;
  absl::StatusOr<std::vector<int>> pending_ranks(const std::string& job_id, int limit) override;
  absl::StatusOr<std::vector<StartedAttempt>> start_attempts(const std::string& job_id,
                                                             const std::vector<Placed>& placed,
                                                             int64_t now_unix_ms) override;
  absl::StatusOr<StartedAttempt> start_duplicate(const std::string& job_id, int rank, const std::string& worker_id,
                                                 int64_t now_unix_ms) override;
  absl::StatusOr<std::optional<Accepted>> finish_attempt(int64_t attempt_id, RankRecord result,
                                                         int64_t now_unix_ms) override;
  absl::StatusOr<StartedAttempt> start_chunk(const std::string& job_id, int first_rank, int count,
                                             const std::string& worker_id, int64_t now_unix_ms) override;
  absl::StatusOr<std::optional<ChunkAccepted>> finish_chunk(int64_t attempt_id, std::vector<RankRecord> results,
                                                            int64_t now_unix_ms) override;
  absl::Status keep_cancelled_output(int64_t attempt_id, RankRecord result) override;
  absl::Status save_checkpoint(int64_t attempt_id, const BlobId& checkpoint) override;
  absl::Status requeue_attempts(const std::vector<int64_t>& attempt_ids) override;
  absl::StatusOr<std::string> latest_worker(const std::string& job_id) override;
  absl::StatusOr<std::vector<AttemptRecord>> running_attempts(const std::string& job_id) override;
  absl::StatusOr<std::vector<std::string>> delete_job(const std::string& job_id) override;
  absl::StatusOr<RankPage> ranks_page(const std::string& job_id, std::optional<RankStatus> state,
                                      int64_t offset, int limit) override;
  absl::StatusOr<std::vector<RankRecord>> results_after(const std::string& job_id, int64_t after_seq,
                                                            int limit) override;
  absl::StatusOr<std::map<std::string, int64_t>> usage_by_user() override;
  absl::Status record_worker(const std::string& id, const std::string& host, int slots, const std::string& credential,
                             int64_t now_unix_ms) override;
  absl::StatusOr<std::vector<WorkerRecord>> workers() override;
  absl::StatusOr<std::map<std::string, std::string>> worker_credentials() override;
  absl::Status record_pause(const std::string& worker_id, const std::string& reason, int64_t now_unix_ms) override;
  absl::StatusOr<std::vector<WorkerPause>> pauses_between(int64_t from_unix_ms, int64_t to_unix_ms) override;

 private:
  enum class AttemptState { kRunning, kAccepted, kLost, kCancelled, kRetried };
  struct Rank {
    RankStatus state = RankStatus::kPending;
    int64_t attempt_id = 0;  // the attempt its result hangs on
    int64_t finish_seq = 0;
    int attempts = 0;
    int own_failures = 0;
    int worker_failures = 0;
    std::optional<BlobId> checkpoint;
    std::optional<RankRecord> chunk_result;  // accepted from a chunk's attempt
  };
  struct Job {
    JobRecord record;
    int64_t next_seq = 0;
    std::vector<Rank> ranks;
    std::set<std::string> blobs;  // the blobs it refers to
  };
  struct Attempt {
    std::string job_id;
    int rank = 0;
    std::string worker_id;
    AttemptState state = AttemptState::kRunning;
    int64_t started_unix_ms = 0;
    std::optional<RankRecord> result;
    int rank_count = 1;
  };
  struct Worker {
    std::string host;
    int slots = 0;
    int64_t last_seen_unix_ms = 0;
    int64_t ranks_done = 0;
    std::string credential;
  };
  struct State {
    std::map<std::string, Job> jobs;
    std::map<int64_t, Attempt> attempts;
    std::map<std::string, Worker> workers;
    std::map<std::string, int64_t> usage;
    // By worker, in start order; one ends at the epoch while it lasts.
    std::map<std::string, std::vector<WorkerPause>> pauses;
    int64_t last_attempt_id = 0;
  };

  bool begin_batch() override;
  absl::Status end_batch(bool keep) override;
  // OkStatus when a call may write now; otherwise why not (and the open
  // batch fails with it).
  absl::Status writable();
  Job* find_job(const std::string& job_id);
  Rank* find_rank(const std::string& job_id, int rank);
  absl::StatusOr<StartedAttempt> add_attempt(const std::string& job_id, int rank, const std::string& worker_id,
                                             int64_t now_unix_ms, RankStatus from);
  // The rank's running attempts besides `except`, oldest first.
  std::vector<AttemptRecord> other_running_attempts(const std::string& job_id, int rank, int64_t except) const;
  // Puts a chunk's ranks still running under it back to pending; returns how many.
  int requeue_chunk_ranks(Job& job, int64_t attempt_id, int first_rank, int rank_count);
  void record_ended_rank(Job& job, const RankRecord& ended);
  // Counts running ranks as ended or requeued; closes the job when none is
  // left. Returns the job's last finish_seq and whether it finished now.
  std::pair<int64_t, bool> count_ended_ranks(Job& job, int succeeded, int failed, int requeued, int64_t now_unix_ms);
  absl::StatusOr<std::vector<AttemptRecord>> end_job(const std::string& job_id, JobState final_state,
                                                     const std::string& failure, int64_t now_unix_ms) override;
  absl::StatusOr<std::vector<int>> unsucceeded_ranks(const std::string& job_id) override;
  absl::Status reopen_ranks(const std::string& job_id, const std::vector<int>& ranks) override;
  absl::StatusOr<RankRow> rank_row(const std::string& job_id, int rank) override;

  State state_;
  std::vector<State> before_batches_;  // one per open batch, innermost last
  absl::Status batch_failure_;
  absl::Status write_failure_;
};

}  // namespace pesc

#endif  // PESC_LEDGER_MEMORY_JOB_STORE_H_
