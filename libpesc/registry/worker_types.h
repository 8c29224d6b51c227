#ifndef PESC_REGISTRY_WORKER_TYPES_H_
#define PESC_REGISTRY_WORKER_TYPES_H_

// What workers tell the coordinator of themselves, and what it tells
// clients of them, as plain C++: the worker stream and the services convert
// the protocol's messages in registry/registry_conversion.h alone, so the
// registry and FarmState read no generated type.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/blob_id.h"
#include "common/worker_gpu.h"
#include "ledger/job_types.h"

namespace pesc {

// A worker (re)joining: who it is, what it offers, and what it still holds
// from before.
struct WorkerRegistration {
  std::string worker_id;  // stable across the worker's restarts
  std::string host;
  int slots = 0;
  // Attempts it still runs, or finished while disconnected.
  std::vector<int64_t> attempts_in_hand;
  std::vector<std::string> rooms;  // empty: the public room
  std::vector<WorkerGpu> gpus;
  std::string paused_reason;  // why it takes no ranks now; empty: it takes them
  // The GPU indices each attempt in hand holds, by attempt.
  std::map<int64_t, std::vector<int>> held_gpus;
  // Built-in domains it cannot run for its rank user, and why.
  std::map<std::string, std::string> unavailable_domains;
  int64_t end_unix_ms = 0;  // when its batch allocation ends; 0: never
  std::string version;
  std::vector<std::string> domains;  // built-in domains it runs
};

// What the coordinator answers a worker's registration with.
struct RegistrationAnswer {
  int heartbeat_ms = 0;       // how often it expects a heartbeat
  int idle_keepalive_ms = 0;  // how often an idle worker with nothing new beats
  // The coordinator's state dir, absolute: a worker on the same host hides
  // it from its ranks.
  std::string state_dir;
  std::vector<int64_t> stale_attempts;  // of those in hand, the ones no longer wanted
};

// What a worker's heartbeat says besides "alive".
struct WorkerHeartbeat {
  std::string paused_reason;     // why it takes no new ranks now; empty: it takes them
  std::string throttled_reason;  // why its ranks get little CPU now; empty: they run freely
  // Assignments it had not started and gives back (its host became busy).
  std::vector<int64_t> returned_attempts;
  double host_cpu_percent = -1;  // of all its host's CPUs; negative when not known
};

// A worker as clients are told of it: what the ledger remembers and, while
// the registry has its session, what that says.
struct WorkerView {
  WorkerRecord record;
  bool online = false;
  int running = 0;          // attempts in its slots, not those it queues
  std::string quarantined;  // why it gets no ranks
  std::string paused;       // why it takes no new ranks
  std::string throttled;    // why its ranks get little CPU
  std::vector<std::string> rooms;
  std::vector<WorkerGpu> gpus;
  std::map<std::string, std::string> unavailable_domains;  // why, by domain
  int64_t end_unix_ms = 0;
  std::string version;
  double host_cpu_percent = -1;  // negative until known
  std::vector<std::string> domains;
};

// An attempt started for a worker, as it is told of it; what every rank of
// the job runs travels apart, once per worker (the job's description).
struct AttemptOrder {
  std::string job_id;
  int64_t attempt_id = 0;
  int rank = 0;
  int rank_count = 1;                // a chunk's ranks: rank .. rank + rank_count - 1
  std::optional<BlobId> checkpoint;  // the rank's last, to resume from
  std::vector<int> gpus;             // the worker's GPUs it gets to itself, by driver index
};

// Where a gang's ranks meet, told to each of its workers with the gang's
// attempts there once every rank is placed.
struct GangStart {
  std::string master_addr;
  int master_port = 0;
  std::vector<int64_t> attempt_ids;
};

}  // namespace pesc

#endif  // PESC_REGISTRY_WORKER_TYPES_H_
