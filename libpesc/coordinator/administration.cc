#include "coordinator/administration.h"

#include "absl/strings/str_cat.h"

namespace pesc {

absl::StatusOr<IssuedToken> issue_token(TokenStore& tokens, std::string name, Role role) {
  if (role == Role::kAdmin) {
    return absl::InvalidArgumentError("tokens are issued for users and workers; there is one admin token");
  }
  if (name.empty() && role == Role::kWorker) {
    auto next = tokens.next_worker_name();
    if (!next.ok()) return next.status();
    name = *next;
  }
  if (name == kAdminName) return absl::InvalidArgumentError("\"admin\" is the admin's name; pick another");
  auto token = tokens.issue(name, role);
  if (!token.ok()) return token.status();
  return IssuedToken{name, *token};
}

absl::StatusOr<int> revoke_tokens(TokenStore& tokens, Access& access, const std::string& name) {
  if (name == kAdminName) {
    return absl::InvalidArgumentError(
        "the admin token cannot be revoked here; stop the coordinator and remove its admin.token and the token "
        "rows to make a new one");
  }
  auto revoked = tokens.revoke(name);
  if (!revoked.ok()) return revoked.status();
  if (*revoked == 0) return absl::NotFoundError(absl::StrCat("\"", name, "\" holds no valid token"));
  access.cut_sessions(name);
  return *revoked;
}

}  // namespace pesc
