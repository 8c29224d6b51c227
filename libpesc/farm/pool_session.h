#ifndef PESC_FARM_POOL_SESSION_H_
#define PESC_FARM_POOL_SESSION_H_

// A session whose farm is a batch system's nodes (FarmOptions::pool): a
// coordinator hosted in this process that listens where the nodes reach it,
// with a generated token and TLS from certificates made for the session; a
// pool that submits pesc-worker pilots while the session's ranks wait; and,
// when asked for, a worker in this process too. stop() (or the destructor,
// or the process exiting normally) cancels the pilots, stops the
// coordinator and removes the session's directory.
//
// Thread-safety: every public method may be called from any thread.

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/coordinator.h"
#include "pesc/pesc.h"
#include "pesc/v1/admin.grpc.pb.h"
#include "transport/transport.h"
#include "worker/worker_agent.h"

namespace pesc {

class PoolSession {
 public:
  // `options.pool` must be set.
  static absl::StatusOr<std::shared_ptr<PoolSession>> start(const FarmOptions& options);
  ~PoolSession();

  // Where the coordinator listens, and what a client of the session shows
  // it: the session token and the session's CA.
  const std::string& address() const { return address_; }
  const ChannelSecurity& client_security() const { return security_; }
  std::string describe() const;

  // Why no rank of the session can run: its pool paused itself and no
  // worker is connected. Empty otherwise. Asks the coordinator at most
  // every few seconds.
  std::string stuck_reason();

  // Cancels the pilots and stops everything; again: nothing.
  void stop();

 private:
  PoolSession() = default;
  absl::Status start_coordinator(const FarmOptions& options);
  absl::Status add_pool(const PoolOptions& pool);

  std::filesystem::path dir_;
  std::string pool_name_;
  std::string description_;
  std::string address_;
  ChannelSecurity security_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<WorkerAgent> worker_;
  std::unique_ptr<v1::Admin::Stub> admin_;

  absl::Mutex mutex_;
  bool stopped_ ABSL_GUARDED_BY(mutex_) = false;
  absl::Time last_check_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  std::string stuck_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace pesc

#endif  // PESC_FARM_POOL_SESSION_H_
