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
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "pesc/v1/pesc.pb.h"
#include "registry/outbox.h"
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

  bool online() const { return outbox != nullptr; }
  // Online, healthy and not paused: it may get ranks.
  bool takes_ranks() const { return online() && quarantined.empty() && paused.empty(); }
  // Ranks it holds: one per attempt, a chunk's all.
  int ranks_held() const;
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
  void hold(int64_t attempt_id, int rank_count, const std::vector<int>& its_gpus);
  // What a finished rank tells of the worker: its health and its pace.
  void learn_from(const v1::RankResult& reported);
};

class WorkerRegistry {
 public:
  // `prefetch_per_slot`: assignments a worker holds beyond its slots until
  // its pace is known.
  explicit WorkerRegistry(int prefetch_per_slot) : prefetch_per_slot_(prefetch_per_slot) {}

  std::map<std::string, WorkerSession>& sessions() { return sessions_; }
  const std::map<std::string, WorkerSession>& sessions() const { return sessions_; }
  // Null for an id it has no session of.
  WorkerSession* find(const std::string& worker_id);
  const WorkerSession* find(const std::string& worker_id) const;

  // Workers that may get ranks, with the assignments each may take
  // (`free`: its slots and what it may prefetch, less what it holds).
  std::vector<WorkerCapacity> capacity() const;
  // Those of them not `held` for a gang, each with its idle slots as
  // `free` (gang ranks and duplicates must start at once, not queue).
  std::vector<WorkerCapacity> idle_slots(const std::set<std::string>& held) const;
  // Every online worker, all its GPUs, and why it takes no ranks (empty
  // when it does): what a waiting job is told about.
  std::vector<ConnectedWorker> connected() const;
  int online_slots() const;
  // Its typical rank time; infinite while unknown (or for an unknown worker).
  double typical_rank_ms(const std::string& worker_id) const;
  // Assignments a worker may hold beyond its slots, per slot: enough to
  // keep each slot busy for a short while once its pace is known.
  int prefetch_for(const WorkerSession& session) const;

 private:
  const int prefetch_per_slot_;
  std::map<std::string, WorkerSession> sessions_;
};

}  // namespace pesc

#endif  // PESC_REGISTRY_WORKER_REGISTRY_H_
