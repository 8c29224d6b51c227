#ifndef PESC_FARM_CONNECTION_H_
#define PESC_FARM_CONNECTION_H_

// How a Farm reaches its coordinator: a running one named by address, or an
// embedded one (coordinator and worker inside this process, joined by an
// in-process gRPC channel: the same code, no network port).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/client.h"
#include "pesc/pesc.h"

namespace pesc {

class Connection {
 public:
  // Resolves FarmOptions::coordinator, then PESC_COORDINATOR, then embedded.
  static absl::StatusOr<std::shared_ptr<Connection>> open(const FarmOptions& options);

  Client& client() { return *client_; }
  std::shared_ptr<Client> shared_client() { return client_; }

 private:
  explicit Connection(std::shared_ptr<Client> client) : client_(std::move(client)) {}
  std::shared_ptr<Client> client_;
};

// $USER, or "unknown".
std::string current_user();

// The coordinator address the options and environment name; empty means
// the embedded farm.
std::string coordinator_address(const FarmOptions& options);

}  // namespace pesc

#endif  // PESC_FARM_CONNECTION_H_
