#include "coordinator/access.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "ledger/ledger_conversion.h"
#include "security/input_limits.h"
#include "transport/transport.h"

namespace pesc {
namespace {

constexpr const char* kHowToGetAToken =
    "ask the coordinator's admin for a token (`pesc user add NAME` prints one; `pesc worker-token` for a worker), "
    "then pass --token-file FILE, set PESC_TOKEN, or save it in ~/.config/pesc/token";

std::string_view token_of(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  auto found = metadata.find(kTokenMetadataKey);
  if (found == metadata.end()) return {};
  std::string_view value(found->second.data(), found->second.size());
  if (!value.starts_with(kTokenScheme)) return {};
  return value.substr(std::string_view(kTokenScheme).size());
}

absl::Status wrong_role(const Identity& identity, Needs needs) {
  switch (needs) {
    case Needs::kUser:
      return absl::PermissionDeniedError(absl::StrCat("\"", identity.name, "\" holds a ", to_string(identity.role),
                                                      " token; jobs need a user token (`pesc user add NAME`)"));
    case Needs::kWorker:
      return absl::PermissionDeniedError(absl::StrCat("\"", identity.name, "\" holds a ", to_string(identity.role),
                                                      " token; a worker needs a join token (`pesc worker-token`)"));
    case Needs::kAdmin:
      return absl::PermissionDeniedError(
          absl::StrCat("only the coordinator's admin may do this, not ", to_string(identity.role), " \"",
                       identity.name, "\" (the admin token is in the coordinator's state dir, admin.token)"));
    case Needs::kAnyone: break;
  }
  return absl::OkStatus();
}

// The token's digest, and the client certificate's when there is one, so
// that a worker id bound to them cannot be taken by another join token (or
// by the same token on a machine without the certificate).
std::string credential_of(const grpc::ServerContextBase& context, std::string credential) {
  if (std::shared_ptr<const grpc::AuthContext> auth = context.auth_context()) {
    for (const grpc::string_ref& pem : auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME)) {
      absl::StrAppend(&credential, "/", sha256_hex(std::string_view(pem.data(), pem.size())));
    }
  }
  return credential;
}

bool role_fits(Role role, Needs needs) {
  switch (needs) {
    case Needs::kUser: return role == Role::kUser || role == Role::kAdmin;
    case Needs::kWorker: return role == Role::kWorker || role == Role::kAdmin;
    case Needs::kAdmin: return role == Role::kAdmin;
    case Needs::kAnyone: return true;
  }
  return false;
}

}  // namespace

Access::Access(TokenStore* tokens, FarmState& state, const CoordinatorOptions& options)
    : tokens_(tokens), state_(state), options_(options) {}

absl::StatusOr<Caller> Access::authenticate(const grpc::ServerContextBase& context, Needs needs) const {
  absl::StatusOr<Caller> caller = authenticate_token(token_of(context), needs);
  if (caller.ok() && !caller->local) caller->credential = credential_of(context, caller->credential);
  return caller;
}

absl::StatusOr<Caller> Access::authenticate_token(std::string_view token, Needs needs) const {
  if (tokens_ == nullptr) return Caller{"", Role::kAdmin, true};
  if (token.empty()) return absl::UnauthenticatedError(absl::StrCat("this coordinator needs a token: ", kHowToGetAToken));
  absl::StatusOr<Identity> identity = tokens_->authenticate(token);
  if (!identity.ok()) return identity.status();
  if (!role_fits(identity->role, needs)) return wrong_role(*identity, needs);
  return Caller{identity->name, identity->role, false, identity->token_sha256};
}

absl::Status Access::check_job(const Caller& caller, const std::string& job_id) {
  if (caller.is_admin()) return absl::OkStatus();
  absl::StatusOr<JobView> job = state_.job(job_id);
  if (!job.ok()) return job.status();
  if (caller.owns(job->record.spec.user)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("job ", job_id, " is not yours, ", caller.name,
                                                  ": only its owner and the admin may see or change it"));
}

absl::StatusOr<Caller> Access::authorize_job(const grpc::ServerContextBase& context, const std::string& job_id) {
  absl::StatusOr<Caller> caller = authenticate(context, Needs::kUser);
  if (!caller.ok()) return caller;
  if (absl::Status status = check_job_id(job_id); !status.ok()) return status;
  if (absl::Status status = check_job(*caller, job_id); !status.ok()) return status;
  return caller;
}

absl::Status Access::check_submit(const Caller& caller, v1::JobSpec& spec) {
  // An admin (or the embedded farm's owner) may submit for someone else;
  // everyone else submits as who the token says they are.
  if (!caller.local && (!caller.is_admin() || spec.user().empty())) spec.set_user(caller.name);
  if (caller.is_admin()) return absl::OkStatus();
  for (const std::string& room : spec.rooms()) {
    std::optional<std::set<std::string>> users = tokens_->room_users(room);
    if (users && !users->contains(caller.name)) {
      return absl::PermissionDeniedError(absl::StrCat(
          "room \"", room, "\" is restricted to ", absl::StrJoin(*users, ", "), "; ask the coordinator's admin to ",
          "add you (`pesc room restrict ", room, " ", absl::StrJoin(*users, ","), ",", caller.name, "`)"));
    }
  }
  std::vector<std::string> blobs = {spec.process().sha256()};
  for (const v1::SharedFile& shared : spec.shared()) {
    if (shared.has_blob()) blobs.push_back(shared.blob().sha256());
  }
  for (const std::string& blob : blobs) {
    if (!blob.empty() && state_.blobs().contains(blob) && !may_read_blob(caller, blob)) {
      return absl::PermissionDeniedError(
          absl::StrCat("blob ", blob, " was not uploaded by ", caller.name, ": upload its bytes first"));
    }
  }
  absl::StatusOr<std::vector<JobRecord>> jobs = state_.jobs();
  if (!jobs.ok()) return jobs.status();
  int64_t queued = 0;
  for (const JobRecord& job : *jobs) {
    if (job.spec.user == caller.name && job.state == JobState::kRunning) {
      queued += job.progress.pending + job.progress.queued_at_workers + job.progress.running;
    }
  }
  if (queued + spec.repetitions() > options_.max_queued_ranks_per_user) {
    return absl::ResourceExhaustedError(absl::StrCat(
        caller.name, " has ", queued, " ranks queued or running; ", spec.repetitions(), " more would pass the quota of ",
        options_.max_queued_ranks_per_user, " (pesc-coordinator --max-queued-ranks-per-user): wait for some to finish"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Access::submit(const Caller& caller, v1::JobSpec spec) {
  PESC_RETURN_IF_ERROR(check_job_spec(spec, !options_.smtp_url.empty()));
  PESC_RETURN_IF_ERROR(check_submit(caller, spec));
  return state_.submit(from_proto(spec));
}

absl::StatusOr<std::vector<JobRecord>> Access::visible_jobs(const Caller& caller) {
  PESC_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, state_.jobs());
  std::erase_if(jobs, [&](const JobRecord& job) { return !caller.owns(job.spec.user); });
  return jobs;
}

bool Access::may_read_blob(const Caller& caller, const std::string& sha256) {
  if (caller.role != Role::kUser) return true;
  return tokens_->uploaded_by(sha256, caller.name) || tokens_->used_by_job_of(sha256, caller.name);
}

absl::Status Access::check_upload(const Caller& caller, uint64_t announced_bytes) {
  if (announced_bytes > options_.max_blob_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("a blob of ", announced_bytes, " bytes is larger than the ",
                                                     options_.max_blob_bytes, " bytes this coordinator accepts"));
  }
  if (caller.role != Role::kUser) return absl::OkStatus();
  absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> uploads = tokens_->uploads_of(caller.name);
  if (!uploads.ok()) return uploads.status();
  uint64_t stored = 0;
  for (const auto& [blob, bytes] : *uploads) {
    if (state_.blobs().contains(blob)) stored += bytes;
  }
  if (stored + announced_bytes > options_.max_stored_bytes_per_user) {
    return absl::ResourceExhaustedError(absl::StrCat(
        caller.name, " stores ", stored, " bytes; ", announced_bytes, " more would pass the quota of ",
        options_.max_stored_bytes_per_user, " bytes (pesc-coordinator --max-stored-bytes-per-user): delete old jobs ",
        "with `pesc delete JOB`"));
  }
  return absl::OkStatus();
}

void Access::note_upload(const Caller& caller, const std::string& sha256, uint64_t bytes) {
  if (caller.role != Role::kUser) return;
  // Unrecorded, the user could not use the blob; the upload then fails at
  // submit with a clear error rather than here.
  (void)tokens_->record_upload(sha256, caller.name, bytes);
}

Access::Session::Session(Access& access, std::string name, grpc::ServerContextBase* context)
    : access_(access), name_(std::move(name)), context_(context) {
  absl::MutexLock lock(&access_.mutex_);
  access_.sessions_.emplace(name_, context_);
}

Access::Session::~Session() {
  absl::MutexLock lock(&access_.mutex_);
  auto [first, last] = access_.sessions_.equal_range(name_);
  for (auto it = first; it != last; ++it) {
    if (it->second == context_) {
      access_.sessions_.erase(it);
      break;
    }
  }
}

std::unique_ptr<Access::Session> Access::hold(const Caller& caller, grpc::ServerContextBase* context) {
  if (caller.local) return nullptr;
  return std::make_unique<Session>(*this, caller.name, context);
}

void Access::cut_sessions(const std::string& name) {
  absl::MutexLock lock(&mutex_);
  auto [first, last] = sessions_.equal_range(name);
  for (auto it = first; it != last; ++it) it->second->TryCancel();
}

}  // namespace pesc
