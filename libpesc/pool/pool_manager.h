#ifndef PESC_POOL_POOL_MANAGER_H_
#define PESC_POOL_POOL_MANAGER_H_

// Pools of pilot workers: while ranks wait that a pool's workers could run,
// the manager submits pilots (pesc-worker as a batch job, several as one
// array) up to the pool's maximum, with a bounded backlog of pending ones;
// it cancels pending pilots no longer needed and every pilot at shutdown.
// A refused submit, a pilot that ends before its worker joined, or one that
// never leaves the queue is a failure: shown in the pool's status and the
// waiting reason of jobs, and after a few in a row the pool pauses itself
// instead of submitting in a loop.
//
// Thread-safety: every public method may be called from any thread. It
// calls its host without holding its own lock, and waiting_note() takes
// no lock the host could be waiting on.

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pool/batch_system.h"
#include "pool/pool_store.h"
#include "pool/pool_types.h"

namespace pesc {

// What the manager asks of the coordinator.
struct PoolHost {
  // Ranks queued for the public room that no worker has taken yet.
  std::function<int()> waiting_ranks;
  // Ids of the workers connected now.
  std::function<std::set<std::string>()> online_workers;
  // A new join token for the pool's pilots; "" when the coordinator checks
  // no tokens (then pilots go without one).
  std::function<absl::StatusOr<std::string>(const std::string& pool)> issue_token;
  std::function<void(const std::string& pool)> revoke_tokens;
};

// How pilots reach the coordinator.
struct PilotSetup {
  std::string coordinator_address;
  std::string worker_program = "pesc-worker";
  // --tls-ca and the like, given to every pilot.
  std::vector<std::string> connection_args;
};

// InvalidArgument saying what to change in a pool's spec (its name, its
// batch system or template, its numbers); what `add` checks first.
absl::Status check_pool_spec(const PoolSpec& spec);

class PoolManager {
 public:
  // Pools' scripts, tokens and pilot logs go under `pools_dir`.
  static absl::StatusOr<std::unique_ptr<PoolManager>> open(const std::filesystem::path& database_file,
                                                           std::filesystem::path pools_dir, PoolHost host);
  ~PoolManager();  // shut_down()

  // Starts looking after the pools.
  void start(PilotSetup setup);
  // Cancels every pilot and stops.
  void shut_down();

  // A spec with a template (batch_template) is stored with the template's
  // name as its batch_system.
  absl::Status add(PoolSpec spec);
  // Adds the pool, or replaces the one of that name (cancelling its pilots)
  // unless its spec is the same: the pools of a config file at each start.
  absl::Status put(PoolSpec spec);
  // The pilots it cancelled.
  absl::StatusOr<int> remove(const std::string& name);
  absl::Status resume(const std::string& name);
  std::vector<PoolStatus> list();
  // What the pools do about waiting ranks, for a waiting job's reason;
  // empty without pools.
  std::string waiting_note();

 private:
  struct Pilot {
    absl::Time submitted;
    absl::Time running_since = absl::InfiniteFuture();
    bool running = false;
    bool joined = false;
    std::string reason;  // why it waits, in the batch system's words
  };
  struct Pool {
    PoolSpec spec;
    BatchSystem batch;
    std::filesystem::path dir;
    std::filesystem::path token_file;  // empty: pilots go without a token
    std::map<std::string, Pilot> pilots;  // by the batch system's id
    int submitted = 0;
    int failures_in_a_row = 0;
    std::string paused;
    std::string last_failure;
    absl::Time next_submit = absl::InfinitePast();
    absl::Time last_demand = absl::Now();
    // A restarted coordinator takes over the pilots the batch system still
    // lists for the pool, at its first look.
    bool adopt_listed = false;
  };

  PoolManager(std::unique_ptr<PoolStore> store, std::filesystem::path pools_dir, PoolHost host);
  // `added`: new, not reopened at a restart.
  absl::Status open_pool(PoolSpec spec, bool added) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Status add_checked(PoolSpec spec) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::StatusOr<int> remove_locked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void loop();
  void tick(Pool& pool, int waiting, const std::set<std::string>& online) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void follow_pilots(Pool& pool, const std::set<std::string>& online) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void submit(Pool& pool, int count) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  std::string pilot_script(const Pool& pool) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Cancels these pilots and forgets them; the number cancelled.
  int cancel(Pool& pool, const std::vector<std::string>& ids) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  int cancel_waiting(Pool& pool) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void failed(Pool& pool, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  PoolStatus status_of(const Pool& pool) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void update_note() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::filesystem::path pools_dir_;
  const PoolHost host_;

  absl::Mutex mutex_;
  std::unique_ptr<PoolStore> store_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, Pool> pools_ ABSL_GUARDED_BY(mutex_);
  PilotSetup setup_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  bool wake_ ABSL_GUARDED_BY(mutex_) = false;
  std::unique_ptr<std::thread> thread_;

  absl::Mutex note_mutex_;
  std::string note_ ABSL_GUARDED_BY(note_mutex_);
};

// What an admin does once a paused pool's trouble is fixed.
std::string resume_advice(const std::string& pool_name);


}  // namespace pesc

#endif  // PESC_POOL_POOL_MANAGER_H_
