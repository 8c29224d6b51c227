#ifndef PESC_FARM_CONNECTION_H_
#define PESC_FARM_CONNECTION_H_

// How a Farm reaches its coordinator: a running one named by address, an
// embedded one (coordinator and worker inside this process, joined by an
// in-process gRPC channel: the same code, no network port), or a pool's
// session (a coordinator inside this process that batch-system pilots join).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/client.h"
#include "pesc/pesc.h"

namespace pesc {

class PoolSession;

class Connection {
 public:
  // Resolves FarmOptions::coordinator, then the pool's session, then
  // PESC_COORDINATOR, then embedded.
  static absl::StatusOr<std::shared_ptr<Connection>> open(const FarmOptions& options);

  Client& client() { return *client_; }
  std::shared_ptr<Client> shared_client() { return client_; }

  // Why none of the farm's ranks can run now, when the farm knows it will
  // not change by itself (a pool's session whose pool paused); empty
  // otherwise.
  std::string stuck_reason();
  bool may_get_stuck() const { return session_ != nullptr; }
  std::string describe() const;
  // Ends a pool's session; nothing for other farms.
  void close();

 private:
  explicit Connection(std::shared_ptr<Client> client, std::shared_ptr<PoolSession> session = nullptr)
      : client_(std::move(client)), session_(std::move(session)) {}
  std::shared_ptr<Client> client_;
  std::shared_ptr<PoolSession> session_;
};

// $USER, or "unknown".
std::string current_user();

// The coordinator address the options and environment name; empty means
// the embedded farm.
std::string coordinator_address(const FarmOptions& options);

}  // namespace pesc

#endif  // PESC_FARM_CONNECTION_H_
