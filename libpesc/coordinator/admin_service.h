#ifndef PESC_COORDINATOR_ADMIN_SERVICE_H_
#define PESC_COORDINATOR_ADMIN_SERVICE_H_

// The Admin service: tokens and restricted rooms, over the TokenStore.
// Revoking a name also cuts the streams its tokens hold.

#include "coordinator/access.h"
#include "pesc/v1/admin.grpc.pb.h"
#include "pool/pool_manager.h"
#include "security/token_store.h"

namespace pesc {

class AdminService final : public v1::Admin::Service {
 public:
  // `tokens` null: authentication is off and the service refuses every call.
  AdminService(TokenStore* tokens, Access& access, PoolManager* pools)
      : tokens_(tokens), access_(access), pools_(pools) {}
  grpc::Status IssueToken(grpc::ServerContext*, const v1::IssueTokenRequest*, v1::IssueTokenResponse*) override;
  grpc::Status RevokeTokens(grpc::ServerContext*, const v1::RevokeTokensRequest*, v1::RevokeTokensResponse*) override;
  grpc::Status ListTokens(grpc::ServerContext*, const v1::ListTokensRequest*, v1::ListTokensResponse*) override;
  grpc::Status RestrictRoom(grpc::ServerContext*, const v1::RestrictRoomRequest*, v1::RestrictRoomResponse*) override;
  grpc::Status WhoAmI(grpc::ServerContext*, const v1::WhoAmIRequest*, v1::WhoAmIResponse*) override;
  grpc::Status AddPool(grpc::ServerContext*, const v1::AddPoolRequest*, v1::AddPoolResponse*) override;
  grpc::Status ListPools(grpc::ServerContext*, const v1::ListPoolsRequest*, v1::ListPoolsResponse*) override;
  grpc::Status RemovePool(grpc::ServerContext*, const v1::RemovePoolRequest*, v1::RemovePoolResponse*) override;
  grpc::Status ResumePool(grpc::ServerContext*, const v1::ResumePoolRequest*, v1::ResumePoolResponse*) override;

 private:
  absl::StatusOr<Caller> authenticate(grpc::ServerContext* context, Needs needs) const;
  TokenStore* tokens_;
  Access& access_;
  PoolManager* pools_;
};

v1::Role to_proto(Role role);

}  // namespace pesc

#endif  // PESC_COORDINATOR_ADMIN_SERVICE_H_
