#ifndef PESC_COORDINATOR_ADMINISTRATION_H_
#define PESC_COORDINATOR_ADMINISTRATION_H_

// What the admin does to users, workers' tokens and rooms, the same from
// `pesc admin` (gRPC, AdminService) and from the web dashboard.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/access.h"
#include "security/token_store.h"

namespace pesc {

struct IssuedToken {
  std::string name;
  std::string token;  // shown once; the store keeps its hash
};

// A token for a user, or for a worker (an empty name takes the next
// worker-N). The admin token is not issued here.
absl::StatusOr<IssuedToken> issue_token(TokenStore& tokens, std::string name, Role role);
// Revokes every token of `name` and cuts its open streams; NotFound when it
// held none.
absl::StatusOr<int> revoke_tokens(TokenStore& tokens, Access& access, const std::string& name);

}  // namespace pesc

#endif  // PESC_COORDINATOR_ADMINISTRATION_H_
