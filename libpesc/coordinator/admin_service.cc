#include "coordinator/admin_service.h"

#include "absl/strings/str_cat.h"
#include "coordinator/administration.h"
#include "pool/pool_conversion.h"
#include "transport/transport.h"

namespace pesc {

v1::Role to_proto(Role role) {
  switch (role) {
    case Role::kAdmin: return v1::ROLE_ADMIN;
    case Role::kUser: return v1::ROLE_USER;
    case Role::kWorker: return v1::ROLE_WORKER;
  }
  return v1::ROLE_UNSPECIFIED;
}

absl::StatusOr<Caller> AdminService::authenticate(grpc::ServerContext* context, Needs needs) const {
  if (tokens_ == nullptr) {
    return absl::FailedPreconditionError("this farm has no users or tokens: it is embedded and listens on no port");
  }
  return access_.authenticate(*context, needs);
}

grpc::Status AdminService::IssueToken(grpc::ServerContext* context, const v1::IssueTokenRequest* request,
                                      v1::IssueTokenResponse* response) {
  if (auto caller = authenticate(context, Needs::kAdmin); !caller.ok()) return to_grpc(caller.status());
  Role role = Role::kUser;
  if (request->role() == v1::ROLE_WORKER) {
    role = Role::kWorker;
  } else if (request->role() != v1::ROLE_USER) {
    role = Role::kAdmin;  // refused by issue_token
  }
  auto issued = issue_token(*tokens_, request->name(), role);
  if (!issued.ok()) return to_grpc(issued.status());
  response->set_name(issued->name);
  response->set_token(issued->token);
  return grpc::Status::OK;
}

grpc::Status AdminService::RevokeTokens(grpc::ServerContext* context, const v1::RevokeTokensRequest* request,
                                        v1::RevokeTokensResponse* response) {
  if (auto caller = authenticate(context, Needs::kAdmin); !caller.ok()) return to_grpc(caller.status());
  auto revoked = revoke_tokens(*tokens_, access_, request->name());
  if (!revoked.ok()) return to_grpc(revoked.status());
  response->set_revoked(*revoked);
  return grpc::Status::OK;
}

grpc::Status AdminService::ListTokens(grpc::ServerContext* context, const v1::ListTokensRequest*,
                                      v1::ListTokensResponse* response) {
  if (auto caller = authenticate(context, Needs::kAdmin); !caller.ok()) return to_grpc(caller.status());
  auto records = tokens_->list();
  if (!records.ok()) return to_grpc(records.status());
  for (const TokenRecord& record : *records) {
    v1::TokenInfo& info = *response->add_tokens();
    info.set_name(record.name);
    info.set_role(to_proto(record.role));
    info.set_created_unix_ms(record.created_unix_ms);
    info.set_revoked_unix_ms(record.revoked_unix_ms);
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::RestrictRoom(grpc::ServerContext* context, const v1::RestrictRoomRequest* request,
                                        v1::RestrictRoomResponse*) {
  if (auto caller = authenticate(context, Needs::kAdmin); !caller.ok()) return to_grpc(caller.status());
  std::vector<std::string> users(request->users().begin(), request->users().end());
  return to_grpc(tokens_->restrict_room(request->room(), users));
}

grpc::Status AdminService::WhoAmI(grpc::ServerContext* context, const v1::WhoAmIRequest*,
                                  v1::WhoAmIResponse* response) {
  auto caller = authenticate(context, Needs::kAnyone);
  if (!caller.ok()) return to_grpc(caller.status());
  response->set_name(caller->name);
  response->set_role(to_proto(caller->role));
  return grpc::Status::OK;
}

grpc::Status AdminService::AddPool(grpc::ServerContext* context, const v1::AddPoolRequest* request,
                                   v1::AddPoolResponse*) {
  if (auto caller = authenticate(context, Needs::kAdmin); !caller.ok()) return to_grpc(caller.status());
  return to_grpc(pools_->add(from_proto(request->spec())));
}

grpc::Status AdminService::ListPools(grpc::ServerContext* context, const v1::ListPoolsRequest*,
                                     v1::ListPoolsResponse* response) {
  if (auto caller = authenticate(context, Needs::kUser); !caller.ok()) return to_grpc(caller.status());
  for (const PoolStatus& pool : pools_->list()) *response->add_pools() = to_proto(pool);
  return grpc::Status::OK;
}

grpc::Status AdminService::RemovePool(grpc::ServerContext* context, const v1::RemovePoolRequest* request,
                                      v1::RemovePoolResponse* response) {
  if (auto caller = authenticate(context, Needs::kAdmin); !caller.ok()) return to_grpc(caller.status());
  auto cancelled = pools_->remove(request->name());
  if (!cancelled.ok()) return to_grpc(cancelled.status());
  response->set_pilots_cancelled(*cancelled);
  return grpc::Status::OK;
}

grpc::Status AdminService::ResumePool(grpc::ServerContext* context, const v1::ResumePoolRequest* request,
                                      v1::ResumePoolResponse*) {
  if (auto caller = authenticate(context, Needs::kAdmin); !caller.ok()) return to_grpc(caller.status());
  return to_grpc(pools_->resume(request->name()));
}

}  // namespace pesc
