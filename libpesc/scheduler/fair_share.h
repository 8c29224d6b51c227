#ifndef PESC_SCHEDULER_FAIR_SHARE_H_
#define PESC_SCHEDULER_FAIR_SHARE_H_

// Decides which job's next rank goes to which worker. Pure logic: it knows
// nothing of SQLite or gRPC, so it is tested on its own.
//
// Policy: the worker with the most free capacity is filled first; the rank
// comes from the user whose ranks have used the least time so far (the
// Warwick toolkit's fair share), each rank placed in this round counting as
// that user's typical rank time so users alternate; within a user, the
// oldest job first. A job only goes to workers sharing one of its rooms, and
// a same-machine job only to the worker it was first placed on (the most
// free one when it is placed first). A job that asks for GPUs only goes to
// a worker with that many free GPUs of its capability, and gets the least
// capable of them, so stronger ones stay for jobs that need them. Ranks
// queue at a worker beyond its slots only behind slots that free soon.

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pesc {

inline constexpr const char* kPublicRoom = "public";
// A worker in this room serves every room (the embedded farm's one worker).
inline constexpr const char* kEveryRoom = "*";

struct FreeGpu {
  int index = 0;  // the driver's
  double compute_capability = 0;
};

struct WorkerCapacity {
  std::string worker_id;
  int free = 0;  // assignments it can take now
  std::vector<std::string> rooms = {kPublicRoom};
  int slots = 0;  // ranks it runs at once; a gang needs them free, not queued behind
  std::vector<FreeGpu> free_gpus;  // held by no attempt
  // Domains it cannot run ranks of, with why (its interpreter is missing,
  // or the rank user cannot execute it).
  std::map<std::string, std::string> unavailable_domains;
  std::map<std::string, int> held_by_job;  // ranks it holds now, running or queued
  // Its slots that free soon: idle, or held by ranks known to be short. A
  // rank that may be long (of unknown or long pace) holds its slot, and
  // ranks queued behind it would wait as long: only these slots make room
  // beyond the slots, `prefetch_per_slot` ranks each.
  int slots_freeing_soon = 0;
  int prefetch_per_slot = 0;
};

struct QueuedJob {
  std::string job_id;
  std::string user;
  int64_t created_unix_ms = 0;
  int pending = 0;  // ranks waiting for a slot
  std::vector<std::string> rooms = {kPublicRoom};  // where it may run
  // Same-machine jobs: the worker that has them, once chosen.
  bool same_machine = false;
  std::string pinned_worker;
  int gpus_per_rank = 0;
  double min_capability = 0;
  std::string domain;  // goes only to workers that can run it
  // Ranks of it a worker may hold beyond each slot that frees soon, as its
  // own pace allows (a worker's earlier jobs may have been quicker); -1:
  // as many as the worker takes. 0: its ranks are not known to be short, so
  // each may hold its slot for hours: it gets a slot that frees soon, and
  // that slot's room beyond it goes with it.
  int prefetch_per_slot = -1;

  bool holds_its_slot() const { return prefetch_per_slot == 0; }
};

struct Placement {
  std::string job_id;
  std::string worker_id;
  std::vector<int> gpus;  // the rank's, by driver index
};

// The GPUs a rank of `job` would get on `worker`: the least capable free
// ones good enough; nullopt when there are too few.
std::optional<std::vector<FreeGpu>> gpus_for(const QueuedJob& job, const WorkerCapacity& worker);

// Whether the job's domain, rooms and pin let it run on this worker.
bool may_run_on(const QueuedJob& job, const WorkerCapacity& worker);

// A connected worker as far as a waiting job cares: all its GPUs (as
// capacity.free_gpus), and why it takes no ranks at all (quarantined,
// paused), empty when it does.
struct ConnectedWorker {
  WorkerCapacity capacity;
  std::string unavailable;
};

// Why none of the job's pending ranks can start on any of these workers, in
// words for its user; empty when some worker may run them, busy or not.
std::string why_waiting(const QueuedJob& job, const std::vector<ConnectedWorker>& workers);

// Where a gang (a parallel job, whose ranks must all run at once) goes.
struct GangPlan {
  // One per pending rank when the gang fits in free slots now; else empty.
  std::vector<Placement> placements;
  // When it does not fit now but could: the workers kept from other jobs
  // so that their slots drain for it instead of refilling.
  std::vector<std::string> held;
};

// Plans a gang of `job.pending` ranks on the workers it may use, most free
// slots first (`free` counts slots, not queued assignments). A gang larger
// than those workers' slots together gets neither placements nor holds.
GangPlan plan_gang(const QueuedJob& job, std::vector<WorkerCapacity> workers);

class FairShareScheduler {
 public:
  // Adds a finished rank's run time to its user's account.
  void charge(const std::string& user, int64_t rank_ms);
  void set_usage(std::map<std::string, int64_t> used_ms_by_user);

  // One placement per rank to start, in the order they should be sent.
  std::vector<Placement> place(std::vector<QueuedJob> jobs, std::vector<WorkerCapacity> workers) const;

 private:
  struct Account {
    int64_t used_ms = 0;
    int64_t ranks = 0;
    int64_t typical_ms() const { return ranks == 0 ? 1 : std::max<int64_t>(1, used_ms / ranks); }
  };
  std::map<std::string, Account> accounts_;
};

}  // namespace pesc

#endif  // PESC_SCHEDULER_FAIR_SHARE_H_
