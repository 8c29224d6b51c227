#ifndef PESC_COORDINATOR_FARM_STATE_H_
#define PESC_COORDINATOR_FARM_STATE_H_

// The coordinator's live state around the durable JobStore: connected
// workers, active jobs, and the dispatch of ranks to free slots. The gRPC
// services (services.cc) are thin adapters over this class.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/coordinator.h"
#include "pesc/v1/pesc.pb.h"
#include "scheduler/fair_share.h"
#include "store/blob_store.h"
#include "ledger/job_store.h"
#include "store/state_dir.h"

namespace pesc {

// Messages waiting to go down one worker's stream; the stream's writer
// thread drains it. Assignments and acknowledgements pushed while an
// earlier one still waits join it, so a busy stream carries batches.
class Outbox {
 public:
  void assign(v1::Assignment assignment);
  void acknowledge(int64_t attempt_id);
  void push(v1::CoordinatorMessage message);
  // Waits up to `timeout` for a message; nullopt on timeout or when closed.
  std::optional<v1::CoordinatorMessage> pop(absl::Duration timeout);
  bool closed();
  void close();

 private:
  // The message that is still waiting last in line, when it is of this kind
  // and has room; otherwise a new one queued behind it.
  v1::CoordinatorMessage& joinable(v1::CoordinatorMessage::MessageCase kind, size_t adding_bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  absl::Mutex mutex_;
  absl::CondVar ready_;
  std::deque<v1::CoordinatorMessage> queue_ ABSL_GUARDED_BY(mutex_);
  size_t last_bytes_ ABSL_GUARDED_BY(mutex_) = 0;  // of queue_.back(), roughly
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
};

class FarmState {
 public:
  static absl::StatusOr<std::unique_ptr<FarmState>> open(CoordinatorOptions options);
  ~FarmState();

  BlobStore& blobs() { return *blobs_; }
  // Why an upload could not be stored. On a full state disk a user's upload
  // is refused as a submit is (RESOURCE_EXHAUSTED, the state dir, what to
  // do); a worker's is only delayed (UNAVAILABLE): it keeps the rank's
  // output and sends it again.
  absl::Status blob_not_stored(const absl::Status& status, bool from_worker) const;
  const CoordinatorOptions& options() const { return options_; }

  // --- clients
  absl::StatusOr<std::string> submit(v1::JobSpec spec);
  absl::StatusOr<v1::JobInfo> job(const std::string& job_id);
  absl::StatusOr<std::vector<v1::JobInfo>> jobs();
  absl::StatusOr<v1::JobInfo> cancel(const std::string& job_id);
  // Cancels the job if it runs, then forgets it and frees its blobs.
  absl::StatusOr<uint64_t> delete_job(const std::string& job_id);
  absl::StatusOr<std::vector<v1::WorkerInfo>> workers();
  // Results after `after_seq`; when none, waits up to `wait` for news.
  absl::StatusOr<std::vector<v1::RankResult>> results_after(const std::string& job_id, int64_t after_seq,
                                                           absl::Duration wait);

  // --- workers
  // A worker (re)joins from `peer_ip` (the address its stream comes from;
  // empty when unknown), where ranks on other workers reach it. The
  // returned Registered message lists attempts it holds that are no longer
  // wanted. Its id stays bound to the `credential` it first registered with
  // while it is connected or within its lease (across a coordinator restart
  // too): another credential is refused with AlreadyExists.
  absl::StatusOr<v1::Registered> connect_worker(const v1::RegisterWorker& registration, const std::string& peer_ip,
                                                const std::string& credential, std::shared_ptr<Outbox> outbox);
  void worker_heard(const std::string& worker_id);
  // A heartbeat: the worker lives and says whether its host lets it take ranks.
  void worker_heartbeat(const std::string& worker_id, const v1::Heartbeat& heartbeat);
  // Records a batch of results in one transaction and acknowledges them
  // once it has committed; a failed one is acknowledged never, and the
  // worker sends the results again.
  void worker_finished(const std::string& worker_id, const v1::AttemptsFinished& batch);
  void worker_checkpoint(const std::string& worker_id, const v1::CheckpointSaved& saved);
  // A gang attempt holds its slot and offers a port; the last of a gang to
  // say so starts them all.
  void worker_gang_ready(const std::string& worker_id, const v1::GangReady& ready);
  // The stream ended; the worker's ranks wait out its lease.
  void disconnect_worker(const std::string& worker_id, const Outbox* outbox);
  // A connected worker silent past its lease: its stream should be cut.
  bool is_silent(const std::string& worker_id);

  bool shutting_down();
  void shut_down();

 private:
  struct Session {
    std::string credential;  // what the worker holding this id registered with
    std::string host;
    // Where ranks on other workers reach its ranks: the address its stream
    // comes from, else the host name it gave.
    std::string address;
    int slots = 0;
    std::vector<std::string> rooms;
    std::shared_ptr<Outbox> outbox;  // null while disconnected
    std::set<int64_t> attempts;
    absl::Time last_heard;
    // Ranks in a row that could not even start here (a missing interpreter,
    // a failed fetch); past a few the worker gets no more until it rejoins.
    int failures_in_a_row = 0;
    std::string quarantined;  // why, when it is
    // How long its ranks take lately (moving average); negative until known.
    double typical_rank_ms = -1;
    std::vector<v1::Gpu> gpus;
    // GPU indices of the attempts that hold some; entries of attempts
    // gone from `attempts` are dropped when next looked at.
    std::map<int64_t, std::vector<int>> gpus_held;
    // Domains it cannot run for its rank user, and why: it gets no jobs of them.
    std::map<std::string, std::string> unavailable_domains;
    std::string paused;     // why it takes no ranks now (its host is busy)
    std::string throttled;  // why its ranks get little CPU now (its owner is at it)
    // Ranks of its chunk attempts (those of more than one rank); entries of
    // attempts gone from `attempts` are dropped when next looked at.
    std::map<int64_t, int> chunk_sizes;
    // Ranks it holds: one per attempt, a chunk's all.
    int ranks_held() const;
    // The attempts it has started: it runs what it holds in the order it
    // got it (attempt ids grow with time), one attempt per slot, so the
    // oldest ones, as many as its slots. A chunk's ranks run one after
    // another in its slot.
    std::set<int64_t> started_attempts() const;
  };
  // What a job's first results say of the job itself (fail_fast).
  struct FaultWatch {
    int job_faults = 0;  // ranks failed for the job's own fault
    bool any_succeeded = false;
  };
  struct ActiveJob {
    v1::JobSpec spec;
    int64_t created_unix_ms = 0;
    int pending = 0;
    std::string pinned_worker;  // same-machine jobs, once placed; recovered from the store
    FaultWatch fault_watch;
  };
  // A gang placed whole, from the moment its attempts are sent until they
  // end; it starts once every attempt has said GangReady.
  struct GangLaunch {
    std::map<int64_t, std::string> worker_of;  // attempt -> worker
    std::set<int64_t> not_ready;
    int64_t master_attempt = 0;  // the gang's lowest rank (rank 0 but after a partial restart)
    int master_port = 0;
    std::string master_addr;  // set once started
  };

  FarmState(CoordinatorOptions options, std::unique_ptr<StateDirLock> lock, std::unique_ptr<JobStore> store,
            std::unique_ptr<BlobStore> blobs);
  absl::Status recover() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Every failed store call ends here: the store rolled back, so memory may
  // be ahead of it. Logs what failed, and has memory rebuilt from the store
  // before its next use; what failed is retried (dispatch by the reaper,
  // results by their worker, which sends them until they are acknowledged).
  void store_failed(std::string_view what, const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Logs, once after failures, that a batch of results committed again.
  void store_writes_again() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Rebuilds what memory mirrors of the store when a store call failed;
  // false while the store cannot even be read.
  bool resync_if_needed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Status resync() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Gangs whose attempts in memory and in the store differ start over.
  absl::Status restart_gangs_unlike_the_store(const std::vector<AttemptRecord>& running)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Sends to a worker now or, while a store batch is open, once it has
  // committed: no worker acts on (or forgets a result for) what the store
  // may still lose.
  void send_when_committed(std::function<void()> send) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Refuses a job the state disk has no room for.
  absl::Status check_state_disk(int repetitions) const;
  absl::StatusOr<v1::JobInfo> cancel_locked(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // A job the store has ended: its running attempts stop, nothing more is dispatched for it.
  void forget_ended_job(const std::string& job_id, const std::vector<AttemptRecord>& to_stop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Ends the job FAILED, with the rank's error, once its first ranks have all
  // failed for the job's own fault and none succeeded: every other rank would
  // fail the same way, and the user should hear it in seconds.
  void fail_fast(const std::string& job_id, const v1::RankResult& result) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Ends the job JOB_STATE_FAILED with `failure`; its other ranks never run.
  void fail_job(const std::string& job_id, const std::string& failure) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Why the job's pending ranks cannot start anywhere; empty when they can.
  std::string why_waiting(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  v1::JobInfo info_of(const JobRecord& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Ranks of the job that workers hold but have not started.
  int queued_at_workers(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void count_queued_at_workers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void dispatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Places waiting gangs, oldest first; returns the workers held for gangs
  // that must wait for slots to drain.
  std::set<std::string> dispatch_gangs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void launch_gang(const std::string& job_id, ActiveJob& job, const std::vector<Placement>& placements)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void start_gang(GangLaunch& launch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Tells one worker to start its attempts of a started gang.
  void send_gang_start(const GangLaunch& launch, const std::string& worker_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Why a gang cannot run whole on the online workers of its rooms; empty
  // when their slots suffice.
  std::string gang_shortfall(const std::string& job_id, const ActiveJob& job) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Every attempt of the gangs these attempts belong to, since a gang cannot
  // go on without one of its ranks: each is told to stop and forgotten with
  // its gang.
  std::vector<int64_t> stop_gangs_of(const std::vector<int64_t>& attempts) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void tell_to_cancel(const std::map<std::string, std::vector<int64_t>>& attempts_by_worker)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  std::vector<WorkerCapacity> worker_capacity() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  static QueuedJob queued(const std::string& job_id, const ActiveJob& job);
  // Returns the new attempt's id. `gpus`: the worker's GPUs it gets to itself.
  absl::StatusOr<int64_t> assign(const std::string& job_id, ActiveJob& job, const std::string& worker_id, int rank,
                                 const std::vector<int>& gpus = {}) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void send_attempt(const std::string& job_id, const v1::JobSpec& spec, const std::string& worker_id, int rank,
                    const JobStore::StartedAttempt& started, const std::vector<int>& gpus = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  static std::vector<FreeGpu> all_gpus(const Session& session);
  // The worker's GPUs that no attempt of it holds.
  static std::vector<FreeGpu> free_gpus(const Session& session);
  // Fair-share placement of every job but gangs, on workers not held.
  void dispatch_queued(const std::set<std::string>& held) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void dispatch_duplicates(const std::set<std::string>& held) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  std::vector<WorkerCapacity> idle_slots(const std::set<std::string>& held) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void requeue_expired() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Requeues the attempts whose requeue the store failed to take.
  void retry_requeue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Puts these attempts' ranks back in the queue and the job counts with
  // them, with every rank of their gangs; workers holding any are told to
  // drop them. When the store fails, the reaper tries again.
  absl::Status requeue(const std::vector<int64_t>& attempts) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void changed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void finish_attempt(Session& session, const v1::RankFinished& finished) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Tells the worker its result is stored, so it may forget it.
  void acknowledge(const Session& session, int64_t attempt_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void finish_chunk(Session& session, const v1::RankFinished& finished) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // What a rank stopped for a cancel had written stays with it.
  void keep_cancelled_output(Session& session, const v1::RankFinished& finished)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // What a finished rank tells of its worker: its health and its pace.
  void learn_from(Session& session, const v1::RankResult& reported) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Ranks of the job one attempt on this worker may run: more than one for
  // short function-mode ranks, so they share a message and a transaction.
  static int chunk_size(const Session& session, const ActiveJob& job, int online_slots);
  // Starts one job's share of a dispatch: chunks are started and sent here,
  // one-rank attempts started and left in `started_at` (by placement index)
  // for the caller to send in the scheduler's order.
  void start_placed(const std::string& job_id, const std::vector<Placement>& placements,
                    const std::vector<size_t>& indices, int online_slots,
                    std::map<size_t, JobStore::StartedAttempt>& started_at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // A started attempt of a queued job: off the job's pending count, pinned
  // for a same-machine job, and sent to its worker.
  void dispatched(const std::string& job_id, ActiveJob& job, const JobStore::StartedAttempt& started,
                  const std::vector<int>& gpus = {}) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Starts a job's placed ranks on a worker in chunks of consecutive ranks.
  void assign_chunks(const std::string& job_id, ActiveJob& job, const std::string& worker_id, std::vector<int> ranks,
                     int chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void note_worker_health(Session& session, const v1::RankResult& result) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Assignments a worker may hold beyond its slots.
  int prefetch_for(const Session& session) const;
  void reaper_loop();

  const CoordinatorOptions options_;
  // Held for the coordinator's life; declared first, so it goes last.
  std::unique_ptr<StateDirLock> lock_;
  std::unique_ptr<BlobStore> blobs_;

  absl::Mutex mutex_;
  std::unique_ptr<JobStore> store_ ABSL_GUARDED_BY(mutex_);
  FairShareScheduler scheduler_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, Session> sessions_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, ActiveJob> active_jobs_ ABSL_GUARDED_BY(mutex_);
  // By job id. Not persisted: a restarted coordinator restarts its gangs.
  std::map<std::string, GangLaunch> gangs_ ABSL_GUARDED_BY(mutex_);
  // Bumped on every change a watcher may care about.
  uint64_t generation_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::CondVar changed_;
  bool shutting_down_ ABSL_GUARDED_BY(mutex_) = false;
  // A store call failed since memory was last read back from the store.
  bool resync_needed_ ABSL_GUARDED_BY(mutex_) = false;
  // Attempts whose requeue the store failed to take; the reaper retries.
  std::set<int64_t> requeue_later_ ABSL_GUARDED_BY(mutex_);
  // Messages for workers held while a batch is open (send_when_committed).
  std::optional<std::vector<std::function<void()>>> held_sends_ ABSL_GUARDED_BY(mutex_);
  // The last store failure logged, and when: a full disk fails every call
  // until space returns, and the log gets it once in a while.
  std::string last_store_failure_ ABSL_GUARDED_BY(mutex_);
  absl::Time last_store_failure_logged_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  // queued_at_workers() by job, counted over every running attempt at most
  // every kQueuedRecount: watchers ask after every batch of results.
  std::map<std::string, int> queued_by_job_ ABSL_GUARDED_BY(mutex_);
  absl::Time queued_counted_at_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  std::unique_ptr<std::thread> reaper_;
};

}  // namespace pesc

#endif  // PESC_COORDINATOR_FARM_STATE_H_
