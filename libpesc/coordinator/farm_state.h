#ifndef PESC_COORDINATOR_FARM_STATE_H_
#define PESC_COORDINATOR_FARM_STATE_H_

// The coordinator's wiring: the job ledger (ledger/), the worker registry
// (registry/) and the dispatcher (dispatch/) under one mutex, and the flows
// between them: submits and cancels from clients, registrations, heartbeats
// and results from workers, leases that run out. It keeps the durability
// rule: nothing is told to a worker or a client before the ledger committed
// it (send_when_committed), and after a failed ledger call memory is rebuilt
// from the ledger (store_failed, resync_if_needed). The gRPC services
// (services.cc) are thin adapters over this class.

#include <cstdint>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/coordinator.h"
#include "coordinator/job_events.h"
#include "coordinator/job_notifier.h"
#include "coordinator/output_reads.h"
#include "dispatch/dispatcher.h"
#include "ledger/job_store.h"
#include "registry/job_descriptions.h"
#include "registry/outbox.h"
#include "registry/worker_registry.h"
#include "store/blob_store.h"
#include "store/state_dir.h"

namespace pesc {

// What the coordinator has done since it started, for /metrics.
struct FarmCounters {
  std::atomic<int64_t> ranks_dispatched{0};
  std::atomic<int64_t> results_accepted{0};
};

class FarmState final : private DispatchHost {
 public:
  static absl::StatusOr<std::unique_ptr<FarmState>> open(CoordinatorOptions options);
  // On another job ledger than the state dir's SQLite database: a
  // MemoryJobStore, for tests of the wiring without SQLite.
  static absl::StatusOr<std::unique_ptr<FarmState>> open(CoordinatorOptions options,
                                                         std::unique_ptr<JobStore> ledger);
  ~FarmState() override;

  BlobStore& blobs() { return *blobs_; }
  // Why an upload could not be stored. On a full state disk a user's upload
  // is refused as a submit is (RESOURCE_EXHAUSTED, the state dir, what to
  // do); a worker's is only delayed (UNAVAILABLE): it keeps the rank's
  // output and sends it again.
  absl::Status blob_not_stored(const absl::Status& status, bool from_worker) const;
  const CoordinatorOptions& options() const { return options_; }

  // --- clients and workers: what they send is checked at the edge
  // (security/input_limits.h: check_job_spec, check_registration) before it
  // reaches these.
  absl::StatusOr<std::string> submit(JobSpec spec);
  absl::StatusOr<JobView> job(const std::string& job_id);
  // Every job, without pauses.
  absl::StatusOr<std::vector<JobRecord>> jobs();
  absl::StatusOr<JobRecord> cancel(const std::string& job_id);
  // Cancels the job if it runs, then forgets it and frees its blobs.
  absl::StatusOr<uint64_t> delete_job(const std::string& job_id);
  absl::StatusOr<std::vector<WorkerView>> workers();
  // `pesc retry`: ranks of an ended job run again (every one that did not
  // succeed when `ranks` is empty), with new attempts, and the job runs
  // again (JobStore::retry_ranks). Its end is notified again.
  struct Retried {
    std::vector<int> ranks;  // run again, ascending
    JobRecord job;           // as the retry left it
  };
  absl::StatusOr<Retried> retry(const std::string& job_id, const std::vector<int>& ranks);
  // `pesc logs`: a rank's output.txt from `offset` while it runs, asked of
  // its worker (OutputReads), or its result once it ended.
  absl::StatusOr<RankOutputNow> read_output(const std::string& job_id, int rank, int64_t offset);
  // Results after `after_seq`, in finish order, up to a batch of them.
  absl::StatusOr<std::vector<RankRecord>> results_after(const std::string& job_id, int64_t after_seq);
  // A page of the job's ranks (JobStore::ranks_page).
  absl::StatusOr<JobStore::RankPage> ranks_page(const std::string& job_id, std::optional<RankStatus> state,
                                                int64_t offset, int limit);
  const FarmCounters& counters() const { return counters_; }
  // How long job store calls took.
  const LatencyHistogram& store_latency() const { return *store_latency_; }
  // Told after every commit a job's watchers may care about.
  JobEvents& events() { return events_; }

  // --- workers
  // A worker (re)joins from `peer_ip` (the address its stream comes from;
  // empty when unknown), where ranks on other workers reach it. Its outbox
  // gets the Registered message first, which lists attempts it holds that
  // are no longer wanted. Its id stays bound to the `credential` it first
  // registered with while it is connected or within its lease (across a
  // coordinator restart too): another credential is refused with AlreadyExists.
  absl::Status connect_worker(const WorkerRegistration& registration, const std::string& peer_ip,
                              const std::string& credential, std::shared_ptr<Outbox> outbox);
  void worker_heard(const std::string& worker_id);
  // A heartbeat: the worker lives and says whether its host lets it take ranks.
  void worker_heartbeat(const std::string& worker_id, const WorkerHeartbeat& heartbeat);
  // Records a batch of results in one transaction and acknowledges them
  // once it has committed; a failed one is acknowledged never, and the
  // worker sends the results again.
  void worker_finished(const std::string& worker_id, std::vector<AttemptEnded> batch);
  void worker_checkpoint(const std::string& worker_id, int64_t attempt_id, const BlobId& checkpoint);
  // A gang attempt holds its slot and offers a port; the last of a gang to
  // say so starts them all.
  void worker_gang_ready(const std::string& worker_id, int64_t attempt_id, int free_port);
  // The answer to a read_output's ReadOutput.
  void worker_output_read(const std::string& worker_id, OutputAnswer answer) {
    output_reads_.answer(worker_id, std::move(answer));
  }
  // The stream ended; the worker's ranks wait out its lease.
  void disconnect_worker(const std::string& worker_id, const Outbox* outbox);

  bool shutting_down();
  void shut_down();

  // --- pools (pool/pool_manager.h)
  // Ranks queued for the public room, without GPUs, that no worker holds:
  // what pilots would take.
  int ranks_for_pilots();
  std::set<std::string> online_workers();
  // Added to the reason a job waits (what the pools do about it).
  void set_waiting_note(std::function<std::string()> note);

 private:
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
  absl::StatusOr<JobRecord> cancel_locked(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Before the job leaves active_jobs_: its notify targets hear of its end
  // once the ledger committed it.
  void notify_end(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // An ended job and all its results, for its notices.
  absl::StatusOr<JobNotifier::EndedJob> ended_job(const std::string& job_id);
  // The job leaves memory: nothing more is dispatched for it, and workers
  // that hold its description drop it.
  void job_ended(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // A job the store has ended: its running attempts stop, nothing more is dispatched for it.
  void forget_ended_job(const std::string& job_id, const std::vector<AttemptRecord>& to_stop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Ends the job FAILED, with the rank's error, once its first ranks have all
  // failed for the job's own fault and none succeeded: every other rank would
  // fail the same way, and the user should hear it in seconds.
  void fail_fast(const std::string& job_id, const RankResult& result) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Ends the job JOB_STATE_FAILED with `failure`; its other ranks never run.
  void fail_job(const std::string& job_id, const std::string& failure) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Why the job's pending ranks cannot start anywhere; empty when they can.
  std::string why_waiting(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The record with what memory knows of its progress: why it waits, and
  // how many of its ranks wait at workers.
  JobRecord told(JobRecord record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Keeps the worker's pause (reason) or its end (empty) for job reports.
  void record_pause(const std::string& worker_id, const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Ranks of the job that workers hold but have not started.
  int queued_at_workers(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void count_queued_at_workers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // One dispatch round; after a failed ledger call the reaper tries again.
  void dispatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // DispatchHost: what the dispatcher tells workers goes out once the
  // ledger committed it.
  void assign(const std::string& worker_id, AttemptOrder order, const JobSpec& spec) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void start_gang(const std::string& worker_id, GangStart start) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void cancel(const std::string& worker_id, const std::vector<int64_t>& attempts) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void ledger_failed(std::string_view what, const absl::Status& status) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void take_back(const std::vector<int64_t>& attempts) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void tell_to_cancel(const std::map<std::string, std::vector<int64_t>>& attempts_by_worker)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void requeue_expired() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Connected workers silent past their lease: their streams end (their
  // outboxes close), and their ranks wait out the lease.
  void cut_silent_workers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Requeues the attempts whose requeue the store failed to take.
  void retry_requeue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Puts these attempts' ranks back in the queue and the job counts with
  // them, with every rank of their gangs; workers holding any are told to
  // drop them. When the store fails, the reaper tries again.
  absl::Status requeue(const std::vector<int64_t>& attempts) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void changed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void finish_attempt(WorkerSession& session, AttemptEnded& ended) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Tells the worker its result is stored, so it may forget it.
  void acknowledge(const WorkerSession& session, int64_t attempt_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void finish_chunk(WorkerSession& session, AttemptEnded& ended) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // What a rank stopped for a cancel had written stays with it.
  void keep_cancelled_output(WorkerSession& session, AttemptEnded& ended) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void reaper_loop();
  struct ReaperWait {
    FarmState* state;
    absl::Time due;
  };
  static bool reaper_woken(ReaperWait* wait);
  // When the reaper has something to do next, from what memory holds now.
  absl::Time next_reap() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Wakes the reaper no later than `at`.
  void reap_by(absl::Time at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // When a worker last heard of at `session.last_heard` is lost.
  absl::Time lease_end(const WorkerSession& session) const;

  const CoordinatorOptions options_;
  // Held for the coordinator's life; declared first, so it goes last.
  std::unique_ptr<StateDirLock> lock_;
  std::unique_ptr<BlobStore> blobs_;

  absl::Mutex mutex_;
  std::unique_ptr<JobStore> store_ ABSL_GUARDED_BY(mutex_);
  WorkerRegistry workers_ ABSL_GUARDED_BY(mutex_);
  ActiveJobs active_jobs_ ABSL_GUARDED_BY(mutex_);
  Dispatcher dispatcher_ ABSL_GUARDED_BY(mutex_);
  JobDescriptions job_descriptions_ ABSL_GUARDED_BY(mutex_);
  bool shutting_down_ ABSL_GUARDED_BY(mutex_) = false;
  std::function<std::string()> waiting_note_ ABSL_GUARDED_BY(mutex_);
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
  // Something changed since that count: a watcher served it gets woken to
  // read it again once it may be recounted.
  bool queued_stale_ ABSL_GUARDED_BY(mutex_) = false;
  std::unique_ptr<std::thread> reaper_;
  absl::Time reaper_due_ ABSL_GUARDED_BY(mutex_) = absl::InfiniteFuture();
  OutputReads output_reads_;
  FarmCounters counters_;
  const LatencyHistogram* store_latency_;
  // Last, so its thread, which calls into watchers that read this state,
  // stops first.
  JobEvents events_;
  // After events_, so its thread, which reads jobs back, stops before anything.
  std::unique_ptr<JobNotifier> notifier_;
};

}  // namespace pesc

#endif  // PESC_COORDINATOR_FARM_STATE_H_
