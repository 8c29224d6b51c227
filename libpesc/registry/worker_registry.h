#ifndef PESC_REGISTRY_WORKER_REGISTRY_H_
#define PESC_REGISTRY_WORKER_REGISTRY_H_

// The coordinator's worker registry: a session for every worker id it has
// heard of, connected or within its lease (after its stream ended, or after
// a coordinator restart, for the attempts the ledger says it holds). A
// session keeps what the worker offers (slots, rooms, GPUs, the domains it
// serves), what it holds (attempts, their GPUs and chunk sizes), its health
// (quarantine), pause and throttle, and its pace. The dispatcher reads
// capacity from here; the coordinator keeps it in step with the streams.
//
// Not thread-safe: the coordinator serialises access under its own mutex.

#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ledger/job_store.h"
#include "registry/outbox.h"
#include "registry/worker_types.h"
#include "scheduler/fair_share.h"

namespace pesc {

struct WorkerSession {
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
  std::vector<WorkerGpu> gpus;
  // GPU indices of the attempts that hold some; entries of attempts
  // gone from `attempts` are dropped when next looked at.
  std::map<int64_t, std::vector<int>> gpus_held;
  // Domains it cannot run for its rank user, and why: it gets no jobs of them.
  std::map<std::string, std::string> unavailable_domains;
  std::string version;
  std::vector<std::string> domains;  // built-in domains it runs
  double host_cpu_percent = -1;      // from its last heartbeat; negative until known
  std::string paused;     // why it takes no ranks now (its host is busy)
  std::string throttled;  // why its ranks get little CPU now (its owner is at it)
  // The job and the ranks (more than one for a chunk) of each attempt it
  // holds; entries of attempts gone from `attempts` are dropped when next
  // looked at.
  struct HeldRanks {
    std::string job_id;
    int count = 1;
  };
  std::map<int64_t, HeldRanks> held_ranks;
  // When its batch allocation ends (a pilot's walltime); 0: never.
  int64_t end_unix_ms = 0;

  bool online() const { return outbox != nullptr; }
  // Online, healthy and not paused: it may get ranks.
  bool takes_ranks() const { return online() && quarantined.empty() && paused.empty(); }
  // A rank of its typical time started at `now_unix_ms` would not end before
  // its allocation does (a worker of unknown pace gets ranks, and drains).
  bool ends_too_soon(int64_t now_unix_ms) const;
  // The job and ranks of an attempt it holds.
  HeldRanks held(int64_t attempt) const;
  // Ranks it holds: one per attempt, a chunk's all.
  int ranks_held() const;
  // The same, by job.
  std::map<std::string, int> ranks_held_by_job() const;
  // The attempts it has started: it runs what it holds in the order it
  // got it (attempt ids grow with time), one attempt per slot, so the
  // oldest ones, as many as its slots. A chunk's ranks run one after
  // another in its slot.
  std::set<int64_t> started_attempts() const;
  std::vector<FreeGpu> all_gpus() const;
  // Its GPUs that no attempt of it holds.
  std::vector<FreeGpu> free_gpus() const;
  // A started attempt is its now, with the GPUs it gets to itself and its
  // ranks (more than one for a chunk).
  void hold(int64_t attempt_id, const std::string& job_id, int rank_count, const std::vector<int>& its_gpus);
  // What a finished rank tells of the worker: its health and its pace.
  void learn_from(const RankResult& reported);
};

class WorkerRegistry {
 public:
  // `prefetch_per_slot`: the least a worker holds beyond each slot that
  // frees soon, of a job whose ranks are known to be short.
  explicit WorkerRegistry(int prefetch_per_slot) : prefetch_per_slot_(prefetch_per_slot) {}

  // --- the streams
  // Whether a worker registering with `credential` may take this id: no
  // while another credential holds it (connected, or within its lease).
  absl::Status may_join(const std::string& worker_id, const std::string& credential) const;
  // A worker (re)joins from `peer_ip` (empty when unknown) on `outbox`: its
  // session takes what it registered with, a stale stream of the same id
  // is closed, and a quarantine is lifted (rejoining, after a fix, say,
  // earns a new chance). What it holds is weighed against what its session
  // holds: `vanished`, the session's attempts the worker no longer has
  // (they go back to the queue); `stale`, those the worker has and the
  // coordinator no longer wants.
  struct Joined {
    std::vector<int64_t> vanished;
    std::vector<int64_t> stale;
  };
  Joined join(const WorkerRegistration& registration, const std::string& peer_ip, const std::string& credential,
              std::shared_ptr<Outbox> outbox, absl::Time now);
  // Sessions whose stream ended before `cutoff` and that were not heard of
  // since leave the registry: their ids, and the attempts they held.
  struct Expired {
    std::vector<std::string> workers;
    std::vector<int64_t> attempts;
  };
  Expired expire(absl::Time cutoff);
  // Memory follows the ledger: each session holds the running attempts the
  // ledger gives its worker, and a worker the ledger knows but the registry
  // does not gets a session, heard of `now`, to come back within its lease;
  // ids stay bound to the credentials the ledger remembers.
  void reload(const std::vector<AttemptRecord>& running, const std::map<std::string, std::string>& credentials,
              absl::Time now);

  // --- what clients are told
  // A worker the ledger lists, with what the registry knows of it.
  WorkerView describe(WorkerRecord worker) const;
  // Ranks of each job that workers hold but have not started.
  std::map<std::string, int> queued_by_job() const;

  std::map<std::string, WorkerSession>& sessions() { return sessions_; }
  const std::map<std::string, WorkerSession>& sessions() const { return sessions_; }
  // Null for an id it has no session of.
  WorkerSession* find(const std::string& worker_id);
  const WorkerSession* find(const std::string& worker_id) const;

  // Workers that may get ranks, with the assignments each may take
  // (`free`: its slots, and what it may prefetch for its slots that free
  // soon, less what it holds). Ranks are held beyond the slots only where
  // they start soon: a slot that holds a rank not known to be short
  // (`rank_ms_by_job`: how long each job's ranks take; a job not in it or
  // at -1 is not known yet) makes no room beyond it.
  std::vector<WorkerCapacity> capacity(const std::map<std::string, double>& rank_ms_by_job = {}) const;
  // Those of them not `held` for a gang, each with its idle slots as
  // `free` (gang ranks and duplicates must start at once, not queue).
  std::vector<WorkerCapacity> idle_slots(const std::set<std::string>& held) const;
  // Every online worker, all its GPUs, and why it takes no ranks (empty
  // when it does): what a waiting job is told about.
  std::vector<ConnectedWorker> connected() const;
  int online_slots() const;
  // Its typical rank time; infinite while unknown (or for an unknown worker).
  double typical_rank_ms(const std::string& worker_id) const;
  // Ranks a worker may hold beyond each slot that frees soon, when they
  // take `typical_rank_ms` each (-1: not known yet): enough to keep the
  // slot busy for a short while when they are known to be short, and none
  // when they may be long: they would wait behind the slot's rank.
  int prefetch_per_slot_at(double typical_rank_ms) const;

 private:
  const int prefetch_per_slot_;
  std::map<std::string, WorkerSession> sessions_;
};

}  // namespace pesc

#endif  // PESC_REGISTRY_WORKER_REGISTRY_H_
