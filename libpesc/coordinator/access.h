#ifndef PESC_COORDINATOR_ACCESS_H_
#define PESC_COORDINATOR_ACCESS_H_

// Who may do what on the coordinator. Every gRPC handler starts with
// authenticate(); the other checks say whether that caller may touch a job,
// a blob or a room. Admins may do everything; users only what is theirs;
// workers run ranks and move blobs but submit nothing.
//
// Thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/farm_state.h"
#include "security/token_store.h"

namespace pesc {

// The authenticated party of one call.
struct Caller {
  std::string name;
  Role role = Role::kUser;
  // Authentication is off (the embedded farm): the caller is its owner.
  bool local = false;
  // What the caller proved itself with: a digest of its token and, under
  // mutual TLS, of its certificate. Empty when authentication is off.
  std::string credential;

  bool is_admin() const { return role == Role::kAdmin; }
  bool owns(const std::string& job_user) const { return is_admin() || name == job_user; }
};

// What a handler's caller must be.
enum class Needs { kUser, kWorker, kAnyone, kAdmin };

class Access {
 public:
  // `tokens` null: authentication is off and every caller is a local admin.
  Access(TokenStore* tokens, FarmState& state, const CoordinatorOptions& options);

  absl::StatusOr<Caller> authenticate(const grpc::ServerContextBase& context, Needs needs) const;
  // The same for a token that came another way (the HTTP API).
  absl::StatusOr<Caller> authenticate_token(std::string_view token, Needs needs) const;

  // PermissionDenied unless the caller owns the job (NotFound when none).
  absl::Status check_job(const Caller& caller, const std::string& job_id);
  // authenticate() a user, then check_job().
  absl::StatusOr<Caller> authorize_job(const grpc::ServerContextBase& context, const std::string& job_id);
  // Before a submit: fixes the job's user to the caller's name (admins and
  // the embedded farm may name another), checks rooms, blobs and quota.
  absl::Status check_submit(const Caller& caller, v1::JobSpec& spec);
  // A submit from any front end: the spec checked (check_job_spec), then
  // check_submit(), then the job created; nothing is created on an error.
  absl::StatusOr<std::string> submit(const Caller& caller, v1::JobSpec spec);
  // The jobs the caller may see.
  absl::StatusOr<std::vector<JobRecord>> visible_jobs(const Caller& caller);
  // Users may read blobs they uploaded or that one of their jobs uses.
  bool may_read_blob(const Caller& caller, const std::string& sha256);
  // Before an upload of `announced_bytes`: the blob and stored-bytes bounds.
  absl::Status check_upload(const Caller& caller, uint64_t announced_bytes);
  void note_upload(const Caller& caller, const std::string& sha256, uint64_t bytes);

  // While alive, the call's stream is cut (TryCancel) if its caller's tokens
  // are revoked, so a revoked worker or watcher does not linger.
  class Session {
   public:
    Session(Access& access, std::string name, grpc::ServerContextBase* context);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

   private:
    Access& access_;
    std::string name_;
    grpc::ServerContextBase* context_;
  };
  std::unique_ptr<Session> hold(const Caller& caller, grpc::ServerContextBase* context);
  // Cuts every held call of `name`.
  void cut_sessions(const std::string& name);

 private:
  TokenStore* tokens_;
  FarmState& state_;
  const CoordinatorOptions options_;
  absl::Mutex mutex_;
  std::multimap<std::string, grpc::ServerContextBase*> sessions_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace pesc

#endif  // PESC_COORDINATOR_ACCESS_H_
