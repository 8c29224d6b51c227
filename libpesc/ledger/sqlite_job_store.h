#ifndef PESC_LEDGER_SQLITE_JOB_STORE_H_
#define PESC_LEDGER_SQLITE_JOB_STORE_H_

// The job ledger in one SQLite file (WAL mode), what the coordinator runs
// on. A rank is a row, never an object kept in memory, so a 100 000-rank
// job costs the coordinator disk, not RAM.

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/files.h"
#include "ledger/job_store.h"

namespace SQLite {
class Database;
}

namespace pesc {

class StatementCache;

class SqliteJobStore final : public JobStore {
 public:
  // Opens (or creates, mode 0600) the database and checks it (PRAGMA
  // quick_check): a damaged file is DataLoss, found now rather than when
  // some job's results are read.
  // kVisible: no commit waits for the disk (synchronous=OFF), for a file
  // that dies with its process; a killed process still loses nothing.
  static absl::StatusOr<std::unique_ptr<JobStore>> open(const std::filesystem::path& file,
                                                        Durability durability = Durability::kSynced);
  ~SqliteJobStore() override;

  // Copies a database, while a coordinator may be using it, into a new file
  // `to` (mode 0600) with SQLite's online backup, and checks the copy.
  static absl::Status back_up(const std::filesystem::path& from, const std::filesystem::path& to);

  absl::Status create_job(const std::string& id, const JobSpec& spec, int64_t created_unix_ms) override;
  // fdatasync of the write-ahead log, which holds every commit since the
  // last checkpoint (and a checkpoint syncs what it copies).
  absl::Status wait_for_disk() override;
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
  SqliteJobStore(std::filesystem::path file, std::unique_ptr<SQLite::Database> db, Durability durability);
  bool begin_batch() override;
  absl::Status end_batch(bool keep) override;
  absl::Status migrate();
  // fn() with a SQLite exception turned into a Status that names the file
  // and what failed; no transaction is left open half done by it.
  template <typename Fn>
  auto guarded(const char* what, Fn&& fn) -> decltype(fn());
  // After a failed statement: ends the transaction it was in (the batch's,
  // which then fails as a whole), so no later call runs inside it.
  void abandon_transaction(const absl::Status& failure);
  absl::StatusOr<std::vector<AttemptRecord>> end_job(const std::string& job_id, JobState final_state,
                                                     const std::string& failure, int64_t now_unix_ms) override;
  absl::StatusOr<std::vector<int>> unsucceeded_ranks(const std::string& job_id) override;
  absl::Status reopen_ranks(const std::string& job_id, const std::vector<int>& ranks) override;
  absl::StatusOr<RankRow> rank_row(const std::string& job_id, int rank) override;
  absl::StatusOr<StartedAttempt> add_attempt(const std::string& job_id, int rank, const std::string& worker_id,
                                             int64_t now_unix_ms, RankStatus from);
  // Writes what finished ranks added to usage and to their workers' counts,
  // inside the transaction that finished them.
  void write_tally();
  // No attempt of the job covers more ranks than this (read from the store
  // once, then kept up by start_chunk), so a rank's attempts start at most
  // this far before it: results_after looks for them there, not through
  // every attempt of the job before the rank.
  int widest_chunk(const std::string& job_id);

  const std::filesystem::path file_;
  std::unique_ptr<SQLite::Database> db_;
  Durability durability_;
  // The write-ahead log, for wait_for_disk; -1 until opened there.
  std::atomic<int> wal_fd_{-1};
  std::unique_ptr<StatementCache> sql_;
  // Counts that only reports read, summed over a batch and written once at
  // its end: per rank they would cost a statement each.
  struct Tally {
    std::map<std::string, int64_t> used_ms;     // by user
    std::map<std::string, int64_t> ranks_done;  // by worker
  };
  Tally tally_;
  int batches_open_ = 0;
  // widest_chunk by job; never less than the store holds (a chunk started
  // in a transaction rolled back since only widens the look).
  std::map<std::string, int> widest_chunk_;
  // Why the open batch failed; every call until it ends returns this.
  absl::Status batch_failure_;
};

}  // namespace pesc

#endif  // PESC_LEDGER_SQLITE_JOB_STORE_H_
