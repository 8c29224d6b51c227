#include "farm/connection.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "farm/embedded_farm.h"
#include "farm/pool_session.h"
#include "security/client_credentials.h"

namespace pesc {

std::string current_user() {
  const char* user = std::getenv("USER");
  if (user != nullptr && *user != '\0') return user;
  if (const passwd* entry = ::getpwuid(::getuid())) return entry->pw_name;
  return "unknown";
}

std::string coordinator_address(const FarmOptions& options) {
  if (!options.coordinator.empty()) return options.coordinator;
  const char* from_environment = std::getenv("PESC_COORDINATOR");
  return from_environment != nullptr ? from_environment : "";
}

absl::StatusOr<std::shared_ptr<Connection>> Connection::open(const FarmOptions& options) {
  if (options.pool && !options.coordinator.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a farm with a pool starts its own coordinator for the session; give either the pool or coordinator ",
        options.coordinator, ", not both"));
  }
  if (options.pool) {
    PESC_ASSIGN_OR_RETURN(std::shared_ptr<PoolSession> session, PoolSession::start(options));
    PESC_ASSIGN_OR_RETURN(std::shared_ptr<Client> client,
                          Client::connect(session->address(), session->client_security()));
    return std::shared_ptr<Connection>(new Connection(std::move(client), std::move(session)));
  }
  std::string address = coordinator_address(options);
  if (!address.empty()) {
    PESC_ASSIGN_OR_RETURN(ChannelSecurity security,
                          resolve_client_security({.token = options.token,
                                                   .token_file = options.token_file,
                                                   .tls_ca = options.tls_ca,
                                                   .tls_cert = options.tls_cert,
                                                   .tls_key = options.tls_key}));
    PESC_ASSIGN_OR_RETURN(std::shared_ptr<Client> client, Client::connect(address, security));
    return std::shared_ptr<Connection>(new Connection(std::move(client)));
  }
  PESC_ASSIGN_OR_RETURN(std::shared_ptr<EmbeddedFarm> farm, EmbeddedFarm::start(options.state_dir, options.slots));
  std::string description = absl::StrCat("embedded local farm (", farm->slots(), " slots)");
  auto channel = farm->channel();
  return std::shared_ptr<Connection>(new Connection(Client::over_channel(channel, farm, description)));
}

std::string Connection::describe() const {
  return session_ ? session_->describe() : client_->description();
}

std::string Connection::stuck_reason() { return session_ ? session_->stuck_reason() : ""; }

void Connection::close() {
  if (session_) session_->stop();
}

}  // namespace pesc
