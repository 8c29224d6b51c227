#ifndef PESC_LEDGER_JOB_STORE_H_
#define PESC_LEDGER_JOB_STORE_H_

// The job ledger: the coordinator's durable state (jobs, their ranks, every
// attempt at a rank, workers and per-user usage) behind one interface with
// two backends: SqliteJobStore (sqlite_job_store.h), what the coordinator
// runs on, and MemoryJobStore (memory_job_store.h), for unit tests of what
// sits above the ledger. Both pass one conformance suite
// (tests/cpp/job_store_conformance_test.cc); its tests are this contract's
// examples.
//
// The durability rule every caller keeps: nothing a call returned is told to
// anyone (a worker, a client) before the call, or the Batch around it, has
// committed; a failed call has changed nothing.
//
// Not thread-safe: the coordinator serialises access under its own mutex.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/latency_histogram.h"
#include "ledger/job_types.h"

namespace pesc {

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Groups the calls made while it lives into one transaction, all or
  // nothing: the disk sees one write for all of them at commit(). When any
  // call inside fails on SQLite (a full disk, say) the whole batch is rolled
  // back, the calls after it fail the same way, and commit() returns that
  // error. Without commit() it is rolled back. Nothing the calls returned
  // may be told to anyone before commit() succeeded. Batches nest: only the
  // outermost one reaches the disk.
  class Batch {
   public:
    explicit Batch(JobStore& store);
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    ~Batch();
    absl::Status commit();

   private:
    JobStore& store_;
    bool open_ = false;
  };

  // Inserts the job and one pending row per rank in one transaction, which
  // may not have reached the disk yet: wait_for_disk() before telling the
  // submitter.
  virtual absl::Status create_job(const std::string& id, const JobSpec& spec, int64_t created_unix_ms) = 0;
  // Returns once every transaction committed so far would outlive a power
  // cut (at once for a store that keeps nothing). Unlike the other calls it
  // may run beside them, so the caller need not hold its lock meanwhile.
  virtual absl::Status wait_for_disk() = 0;
  virtual absl::StatusOr<JobRecord> job(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<JobRecord>> jobs() = 0;
  virtual absl::StatusOr<std::vector<JobRecord>> running_jobs() = 0;

  // The lowest pending ranks of a job, at most `limit`.
  virtual absl::StatusOr<std::vector<int>> pending_ranks(const std::string& job_id, int limit) = 0;

  // Marks the rank running under a new attempt on `worker_id`; returns the
  // attempt and the rank's last checkpoint.
  struct StartedAttempt {
    int64_t id = 0;
    int rank = 0;
    int rank_count = 1;
    std::string worker_id;
    std::optional<BlobId> checkpoint;  // the rank's last, none when it has none
  };
  absl::StatusOr<StartedAttempt> start_attempt(const std::string& job_id, int rank, const std::string& worker_id,
                                               int64_t now_unix_ms);
  // start_attempt for several ranks of a job at once, skipping those that
  // are not pending; the job's counters move once for all.
  struct Placed {
    int rank = 0;
    std::string worker_id;
  };
  virtual absl::StatusOr<std::vector<StartedAttempt>> start_attempts(const std::string& job_id,
                                                                     const std::vector<Placed>& placed,
                                                                     int64_t now_unix_ms) = 0;
  // A second attempt at a running rank (a straggler's duplicate); the first
  // of its attempts to succeed is the rank's result.
  virtual absl::StatusOr<StartedAttempt> start_duplicate(const std::string& job_id, int rank,
                                                         const std::string& worker_id, int64_t now_unix_ms) = 0;

  // Records how an attempt ended. Taken only while the attempt still runs
  // for its running rank; returns nullopt for stale or unknown attempts, so
  // a rank never has two accepted results. A failed attempt while another
  // attempt of its rank runs is set aside (nullopt): that one decides. A
  // failed attempt with attempts left puts its rank back in the queue
  // (`requeued`); otherwise the result is the rank's, with its finish_seq,
  // and the rank's other attempts are `superseded`, for the workers to stop.
  struct Accepted {
    RankRecord result;
    std::string job_id;
    std::string user;
    bool requeued = false;
    bool job_finished = false;
    std::vector<AttemptRecord> superseded;
  };
  virtual absl::StatusOr<std::optional<Accepted>> finish_attempt(int64_t attempt_id, RankRecord result,
                                                                 int64_t now_unix_ms) = 0;

  // One attempt for `count` consecutive pending ranks from `first_rank` (a
  // chunk of short ranks); FailedPrecondition unless all are pending.
  virtual absl::StatusOr<StartedAttempt> start_chunk(const std::string& job_id, int first_rank, int count,
                                                     const std::string& worker_id, int64_t now_unix_ms) = 0;
  // Records a chunk's results as finish_attempt does for one rank each
  // (failed ranks with attempts left queue again, as do ranks it has no
  // result for), in one transaction; nullopt for a stale attempt.
  struct ChunkAccepted {
    std::vector<RankRecord> results;  // accepted, with their finish_seq
    std::string job_id;
    std::string user;
    int requeued = 0;
    bool job_finished = false;
  };
  virtual absl::StatusOr<std::optional<ChunkAccepted>> finish_chunk(int64_t attempt_id,
                                                                    std::vector<RankRecord> results,
                                                                    int64_t now_unix_ms) = 0;

  // Keeps what an attempt stopped by its job's cancel reports (the output
  // its rank had written) with the cancelled rank, under a new finish_seq
  // so that watchers get the rank again; ignored for any other attempt (a
  // straggler's duplicate that lost, a stale one).
  virtual absl::Status keep_cancelled_output(int64_t attempt_id, RankRecord result) = 0;

  // Keeps a running attempt's checkpoint as its rank's latest; ignored for
  // attempts that are no longer current.
  virtual absl::Status save_checkpoint(int64_t attempt_id, const BlobId& checkpoint) = 0;

  // Puts the ranks of these attempts back to pending (their worker was
  // lost), unless another attempt of the rank still runs.
  virtual absl::Status requeue_attempts(const std::vector<int64_t>& attempt_ids) = 0;

  // The worker of the job's latest attempt not lost with its worker (for a
  // same-machine job: the worker it is pinned to); empty when none.
  virtual absl::StatusOr<std::string> latest_worker(const std::string& job_id) = 0;

  // Attempts still running (a rank's duplicates too), oldest first; of one
  // job when `job_id` is not empty.
  virtual absl::StatusOr<std::vector<AttemptRecord>> running_attempts(const std::string& job_id = "") = 0;

  // Cancels every unfinished rank of a job; returns the running attempts the
  // workers must stop. Cancelled ranks get a finish_seq like finished ones.
  absl::StatusOr<std::vector<AttemptRecord>> cancel_job(const std::string& job_id, int64_t now_unix_ms);
  // Ends a job that cannot work (its first ranks all failed for what it
  // holds) as cancel_job does, but JobState::kFailed with `failure`, also
  // when those ranks were its last.
  absl::StatusOr<std::vector<AttemptRecord>> fail_job(const std::string& job_id, const std::string& failure,
                                                      int64_t now_unix_ms);

  // Runs ranks of an ended job again (`pesc retry`): each goes back to
  // pending with no result and a fresh attempt budget, and the job runs
  // again; its other ranks keep their results, and the retried ones get new
  // finish_seqs when they end. `ranks` empty: every rank that did not
  // succeed; a succeeded rank named is run again too. Returns the ranks
  // reopened, ascending. NotFound for an unknown job, FailedPrecondition
  // while it runs or when no rank is left to retry, OutOfRange for a rank
  // it does not have.
  absl::StatusOr<std::vector<int>> retry_ranks(const std::string& job_id, std::vector<int> ranks);

  // A rank as it is now (`pesc logs`): once it ended, its result as
  // results_after gives it; before, its state and, while it runs, the
  // attempt_id and worker of its oldest running attempt. NotFound for an
  // unknown job, OutOfRange for a rank it does not have.
  absl::StatusOr<RankRecord> rank_now(const std::string& job_id, int rank);

  // Removes a job and all its rows; returns the blobs no job refers to any
  // more, for the caller to delete. NotFound for an unknown job.
  virtual absl::StatusOr<std::vector<std::string>> delete_job(const std::string& job_id) = 0;

  // Finished (or cancelled) ranks of a job with finish_seq > after_seq, in
  // finish order, at most `limit`.
  virtual absl::StatusOr<std::vector<RankRecord>> results_after(const std::string& job_id, int64_t after_seq,
                                                                 int limit) = 0;

  // A page of a job's ranks in rank order, of one state unless `state` is
  // none, and how many ranks match: each with its accepted
  // result or, while it runs, its attempt's worker and start. Pages through
  // a big job without reading it whole.
  struct RankPage {
    int64_t total = 0;
    std::vector<RankRecord> ranks;
  };
  virtual absl::StatusOr<RankPage> ranks_page(const std::string& job_id, std::optional<RankStatus> state,
                                              int64_t offset, int limit) = 0;

  // Run time of finished ranks per user, for fair share.
  virtual absl::StatusOr<std::map<std::string, int64_t>> usage_by_user() = 0;

  // `credential`: what the worker registered with, kept so that its id
  // stays bound to it across a coordinator restart.
  virtual absl::Status record_worker(const std::string& id, const std::string& host, int slots,
                                     const std::string& credential, int64_t now_unix_ms) = 0;
  virtual absl::StatusOr<std::vector<WorkerRecord>> workers() = 0;
  // Worker id -> the credential it last registered with.
  virtual absl::StatusOr<std::map<std::string, std::string>> worker_credentials() = 0;

  // What the worker says of its pausing now: a reason other than the one
  // it paused for ends that pause, a non-empty one starts a new pause;
  // the same one changes nothing. Empty: it is not paused (or gone).
  virtual absl::Status record_pause(const std::string& worker_id, const std::string& reason,
                                    int64_t now_unix_ms) = 0;
  // Workers' pauses that overlap [from, to), by worker then start; one still
  // going ends at the epoch.
  virtual absl::StatusOr<std::vector<WorkerPause>> pauses_between(int64_t from_unix_ms, int64_t to_unix_ms) = 0;

  // How long the backend's calls took (SqliteJobStore times them), for
  // the coordinator's /metrics; read from any thread.
  const LatencyHistogram& call_latency() const { return call_latency_; }

 protected:
  LatencyHistogram call_latency_;

  // Batch's two ends. begin_batch() is false when no batch could be opened
  // (every call then commits on its own); end_batch(false) rolls back.
  virtual bool begin_batch() = 0;
  virtual absl::Status end_batch(bool keep) = 0;
  // cancel_job and fail_job: unfinished ranks cancelled, the job in `final_state`.
  virtual absl::StatusOr<std::vector<AttemptRecord>> end_job(const std::string& job_id, JobState final_state,
                                                             const std::string& failure, int64_t now_unix_ms) = 0;
  // retry_ranks: the ranks of a job that did not succeed, ascending.
  virtual absl::StatusOr<std::vector<int>> unsucceeded_ranks(const std::string& job_id) = 0;
  // rank_now: the rank's state and finish_seq (0 until it ends).
  struct RankRow {
    RankStatus state = RankStatus::kPending;
    int64_t finish_seq = 0;
  };
  virtual absl::StatusOr<RankRow> rank_row(const std::string& job_id, int rank) = 0;
  // retry_ranks once checked: these ended ranks pending again, the job running, in one transaction.
  virtual absl::Status reopen_ranks(const std::string& job_id, const std::vector<int>& ranks) = 0;
};

}  // namespace pesc

#endif  // PESC_LEDGER_JOB_STORE_H_
