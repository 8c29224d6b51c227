#ifndef PESC_WORKER_WORKER_AGENT_H_
#define PESC_WORKER_WORKER_AGENT_H_

// A worker: holds one stream to the coordinator, runs the ranks pushed to it
// in up to `slots` at a time, and reports every result until the
// coordinator acknowledges it, across reconnects.
//
// Thread-safety: start() and stop() from one owner thread.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

class RankIsolation;

struct WorkerOptions {
  int slots = 1;
  std::filesystem::path work_dir;
  // Domain or program name -> absolute interpreter path.
  std::map<std::string, std::string> interpreters;
  std::string worker_id;  // empty: kept in work_dir/worker-id, made on first start
  std::string host;       // empty: this machine's host name
  std::chrono::milliseconds kill_grace{2000};
  // Rooms it serves; empty: the public room.
  std::vector<std::string> rooms;
  // Told when the connection to the coordinator comes and goes, in words
  // for an operator; called from the worker's own thread.
  std::function<void(const std::string&)> on_status;
  // What is wrong when the coordinator cannot be reached although it
  // listens (a TLS mistake, transport/tls_diagnosis.h), for on_status;
  // null or nullopt: nothing more than gRPC's words.
  std::function<std::optional<std::string>()> diagnose_unreachable;
  // The user, sandbox and cgroups ranks run with; null: as the worker,
  // unsandboxed, under the jobs' limits (the embedded farm).
  std::shared_ptr<RankIsolation> isolation;
  // Its GPUs (worker/gpu_inventory.h), reported to the coordinator.
  std::vector<v1::Gpu> gpus;
  // Give way to the machine's people (worker/owner_watch.h): no new ranks
  // while the host is busy, throttled ranks while someone uses it.
  bool owners_first = false;
  // Their settings (worker/owner_policy.h); empty: the defaults.
  std::filesystem::path owner_config;
  // Free space kept on the work dir's filesystem: with less, the worker
  // pauses itself (worker/disk_room.h) until there is room again.
  uint64_t disk_reserve_bytes = 16 << 20;
  // When its batch allocation ends (a pilot's walltime), unix ms; 0: never.
  // This long before then it drains: it takes no new ranks and gives back
  // those it holds unstarted.
  int64_t end_unix_ms = 0;
  std::chrono::seconds drain_before{30};
};

class WorkerAgent {
 public:
  static absl::StatusOr<std::unique_ptr<WorkerAgent>> start(WorkerOptions options,
                                                            std::shared_ptr<grpc::Channel> channel);
  ~WorkerAgent();  // stops: running ranks are terminated

  const std::string& id() const;
  // How long it has run nothing, held nothing and owed no result.
  absl::Duration idle_for();
  // Draining for the end of its allocation, and nothing left to finish.
  bool drained();
  void stop();

 private:
  struct Impl;
  explicit WorkerAgent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pesc

#endif  // PESC_WORKER_WORKER_AGENT_H_
