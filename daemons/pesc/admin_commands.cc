#include "admin_commands.h"

#include <sys/stat.h>
#include <unistd.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "farm/connection.h"
#include "pesc/v1/admin.grpc.pb.h"
#include "pool/pool_manager.h"
#include "security/client_credentials.h"
#include "security/lab_certificates.h"
#include "transport/tls_diagnosis.h"
#include "transport/transport.h"

namespace pesc::cli {
namespace {

constexpr auto kAdminCallTimeout = std::chrono::seconds(30);

// The token and TLS files the target names, or the defaults.
absl::StatusOr<ChannelSecurity> admin_security(const Target& target) {
  return resolve_client_security({.token_file = target.token_file,
                                  .tls_ca = target.tls_ca,
                                  .tls_cert = target.tls_cert,
                                  .tls_key = target.tls_key});
}

// The Admin service of the coordinator the target names, with its token.
absl::StatusOr<std::unique_ptr<v1::Admin::Stub>> admin_stub(const Target& target) {
  FarmOptions options;
  options.coordinator = target.coordinator;
  const std::string address = coordinator_address(options);
  if (address.empty()) {
    return absl::InvalidArgumentError(
        "this command needs a running coordinator: pass --coordinator HOST:PORT or set PESC_COORDINATOR");
  }
  absl::StatusOr<ChannelSecurity> security = admin_security(target);
  if (!security.ok()) return security.status();
  return v1::Admin::NewStub(open_channel(address, *security));
}

int fail(const absl::Status& status) {
  std::cerr << "pesc: " << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument || status.code() == absl::StatusCode::kNotFound
             ? kExitUsage
             : kExitFarmError;
}

// Calls one Admin method and returns its status.
template <typename Request, typename Response, typename Method>
absl::Status call(const Target& target, Method method, const Request& request, Response& response) {
  absl::StatusOr<std::unique_ptr<v1::Admin::Stub>> stub = admin_stub(target);
  if (!stub.ok()) return stub.status();
  grpc::ClientContext context;
  set_deadline(context, kAdminCallTimeout);
  grpc::Status status = ((**stub).*method)(&context, request, &response);
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    FarmOptions options;
    options.coordinator = target.coordinator;
    absl::StatusOr<ChannelSecurity> security = admin_security(target);  // it was read a moment ago
    return explain_unreachable(coordinator_address(options), security.ok() ? *security : ChannelSecurity{},
                               to_absl(status));
  }
  return to_absl(status);
}

// `pesc user add ana > ana.token`: the shell made the file with the umask's
// mode, often readable by everyone; a token is for its holder alone.
void keep_stdout_private() {
  struct stat out {};
  if (::fstat(STDOUT_FILENO, &out) == 0 && S_ISREG(out.st_mode)) (void)::fchmod(STDOUT_FILENO, 0600);
}

int issue(const Target& target, const std::string& name, v1::Role role) {
  v1::IssueTokenRequest request;
  request.set_name(name);
  request.set_role(role);
  v1::IssueTokenResponse response;
  if (absl::Status status = call(target, &v1::Admin::Stub::IssueToken, request, response); !status.ok()) {
    return fail(status);
  }
  // The token alone on stdout, so `pesc user add ana > ana.token` works.
  keep_stdout_private();
  std::cout << response.token() << "\n";
  std::cerr << "pesc: token for " << response.name()
            << " (shown once; the coordinator keeps only its hash). Give it to them to save in "
               "~/.config/pesc/token (mode 0600), or pass with --token-file or PESC_TOKEN\n";
  return kExitOk;
}

const char* role_name(v1::Role role) {
  switch (role) {
    case v1::ROLE_ADMIN: return "admin";
    case v1::ROLE_USER: return "user";
    case v1::ROLE_WORKER: return "worker";
    default: return "unknown";
  }
}

}  // namespace

int user(const Target& target, const std::vector<std::string>& operands) {
  if (operands.size() == 2 && operands[0] == "add") return issue(target, operands[1], v1::ROLE_USER);
  if (operands.size() == 2 && operands[0] == "revoke") {
    v1::RevokeTokensRequest request;
    request.set_name(operands[1]);
    v1::RevokeTokensResponse response;
    if (absl::Status status = call(target, &v1::Admin::Stub::RevokeTokens, request, response); !status.ok()) {
      return fail(status);
    }
    std::cout << "revoked " << response.revoked() << " token(s) of " << operands[1] << "\n";
    return kExitOk;
  }
  if (operands.size() == 1 && operands[0] == "list") {
    v1::ListTokensResponse response;
    if (absl::Status status = call(target, &v1::Admin::Stub::ListTokens, v1::ListTokensRequest(), response);
        !status.ok()) {
      return fail(status);
    }
    std::cout << absl::StrFormat("%-24s %-7s %-20s %s\n", "NAME", "ROLE", "CREATED", "STATE");
    for (const v1::TokenInfo& token : response.tokens()) {
      auto when = [](int64_t ms) {
        return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(ms), absl::LocalTimeZone());
      };
      std::cout << absl::StrFormat("%-24s %-7s %-20s %s\n", token.name(), role_name(token.role()),
                                   when(token.created_unix_ms()),
                                   token.revoked_unix_ms() == 0 ? "valid" : "revoked " + when(token.revoked_unix_ms()));
    }
    return kExitOk;
  }
  std::cerr << "pesc: user add NAME | user revoke NAME | user list\n";
  return kExitUsage;
}

int worker_token(const Target& target, const std::vector<std::string>& operands) {
  if (operands.size() > 1) {
    std::cerr << "pesc: worker-token [NAME]\n";
    return kExitUsage;
  }
  return issue(target, operands.empty() ? "" : operands[0], v1::ROLE_WORKER);
}

int room(const Target& target, const std::vector<std::string>& operands) {
  v1::RestrictRoomRequest request;
  if (operands.size() == 3 && operands[0] == "restrict") {
    request.set_room(operands[1]);
    for (absl::string_view name : absl::StrSplit(operands[2], ',', absl::SkipEmpty())) request.add_users(std::string(name));
  } else if (operands.size() == 2 && operands[0] == "open") {
    request.set_room(operands[1]);
  } else {
    std::cerr << "pesc: room restrict ROOM USER,USER... | room open ROOM\n";
    return kExitUsage;
  }
  v1::RestrictRoomResponse response;
  if (absl::Status status = call(target, &v1::Admin::Stub::RestrictRoom, request, response); !status.ok()) {
    return fail(status);
  }
  std::cout << "room " << request.room() << ": "
            << (request.users().empty() ? "open to every user" : "restricted to " + operands[2]) << "\n";
  return kExitOk;
}

int whoami(const Target& target) {
  v1::WhoAmIResponse response;
  if (absl::Status status = call(target, &v1::Admin::Stub::WhoAmI, v1::WhoAmIRequest(), response); !status.ok()) {
    return fail(status);
  }
  std::cout << response.name() << " (" << role_name(response.role()) << ")\n";
  return kExitOk;
}

int certs(const std::vector<std::string>& operands, const std::vector<std::string>& hosts) {
  if (operands.size() != 2 || operands[0] != "init") {
    std::cerr << "pesc: certs init DIR [--host NAME,...]\n";
    return kExitUsage;
  }
  absl::StatusOr<LabCertificates> made = make_lab_certificates(operands[1], hosts);
  if (!made.ok()) return fail(made.status());
  std::cout << "made a CA and certificates in " << operands[1] << ":\n"
            << "  coordinator: pesc-coordinator --tls-cert " << made->server_cert.string() << " --tls-key "
            << made->server_key.string() << " [--tls-client-ca " << made->ca_cert.string() << "]\n"
            << "  workers, clients: --tls-ca " << made->ca_cert.string() << " (with --tls-client-ca also --tls-cert "
            << made->client_cert.string() << " --tls-key " << made->client_key.string() << ")\n"
            << "  keep " << made->ca_key.string() << " safe: it signs certificates everyone here trusts\n";
  return kExitOk;
}

namespace {

absl::StatusOr<int64_t> seconds_of(const std::string& flag, const std::string& text) {
  absl::Duration duration;
  if (!absl::ParseDuration(text, &duration) || duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " wants a duration such as 90s, 5m or 1h, not \"", text, "\""));
  }
  return absl::ToInt64Seconds(duration);
}

int add_pool(const Target& target, const std::string& name, const PoolArguments& arguments,
             const std::vector<std::string>& submit_args) {
  if (arguments.slurm == !arguments.template_file.empty()) {
    std::cerr << "pesc: pool add NAME: say which batch system: --slurm, or --template FILE for another one\n";
    return kExitUsage;
  }
  v1::AddPoolRequest request;
  v1::PoolSpec& spec = *request.mutable_spec();
  spec.set_name(name);
  if (arguments.slurm) {
    spec.set_batch_system("slurm");
  } else {
    // The coordinator keeps the template's text, and checks it.
    auto text = read_file(arguments.template_file);
    if (!text.ok()) return fail(text.status());
    spec.set_batch_template(*text);
    spec.set_batch_template_file(std::filesystem::absolute(arguments.template_file).string());
  }
  spec.set_partition(arguments.partition);
  auto time_limit = seconds_of("--time-limit", arguments.time_limit);
  auto idle_timeout = seconds_of("--idle-timeout", arguments.idle_timeout);
  if (!time_limit.ok()) return fail(time_limit.status());
  if (!idle_timeout.ok()) return fail(idle_timeout.status());
  spec.set_time_limit_s(*time_limit);
  spec.set_idle_timeout_s(*idle_timeout);
  spec.set_max_workers(arguments.max_workers);
  spec.set_slots_per_worker(arguments.slots_per_worker);
  *spec.mutable_submit_args() = {submit_args.begin(), submit_args.end()};
  *spec.mutable_worker_args() = {arguments.worker_args.begin(), arguments.worker_args.end()};
  v1::AddPoolResponse response;
  if (absl::Status status = call(target, &v1::Admin::Stub::AddPool, request, response); !status.ok()) {
    return fail(status);
  }
  std::cout << "pool " << name << ": up to " << spec.max_workers() << " pilots of " << spec.slots_per_worker()
            << " slots on " << (arguments.slurm ? "slurm" : arguments.template_file)
            << (spec.partition().empty() ? "" : " partition " + spec.partition())
            << ", submitted while ranks wait\n";
  return kExitOk;
}

int list_pools(const Target& target) {
  v1::ListPoolsResponse response;
  if (absl::Status status = call(target, &v1::Admin::Stub::ListPools, v1::ListPoolsRequest(), response);
      !status.ok()) {
    return fail(status);
  }
  std::cout << absl::StrFormat("%-16s %-8s %-12s %8s %8s %8s %9s  %s\n", "POOL", "SYSTEM", "PARTITION", "MAX",
                               "PENDING", "RUNNING", "SUBMITTED", "STATE");
  for (const v1::PoolStatus& pool : response.pools()) {
    const v1::PoolSpec& spec = pool.spec();
    std::cout << absl::StrFormat("%-16s %-8s %-12s %8d %8d %8d %9d  %s\n", spec.name(), spec.batch_system(),
                                 spec.partition().empty() ? "(default)" : spec.partition(), spec.max_workers(),
                                 pool.pilots_pending(), pool.pilots_running(), pool.pilots_submitted(),
                                 pool.paused().empty() ? "active" : "paused");
    if (!pool.paused().empty()) std::cout << "  " << pool.paused() << ". " << resume_advice(spec.name()) << "\n";
    if (!pool.pending_reason().empty()) std::cout << "  pilots wait: " << pool.pending_reason() << "\n";
    if (!pool.last_failure().empty()) std::cout << "  last failure: " << pool.last_failure() << "\n";
  }
  return kExitOk;
}

}  // namespace

int pool(const Target& target, const std::vector<std::string>& operands, const PoolArguments& arguments,
         const std::vector<std::string>& submit_args) {
  if (operands.size() == 2 && operands[0] == "add") return add_pool(target, operands[1], arguments, submit_args);
  if (!submit_args.empty()) {
    std::cerr << "pesc: only `pool add` takes submit arguments after --\n";
    return kExitUsage;
  }
  if (operands.size() == 1 && operands[0] == "list") return list_pools(target);
  if (operands.size() == 2 && operands[0] == "remove") {
    v1::RemovePoolRequest request;
    request.set_name(operands[1]);
    v1::RemovePoolResponse response;
    if (absl::Status status = call(target, &v1::Admin::Stub::RemovePool, request, response); !status.ok()) {
      return fail(status);
    }
    std::cout << "removed pool " << operands[1] << "; cancelled " << response.pilots_cancelled() << " pilots\n";
    return kExitOk;
  }
  if (operands.size() == 2 && operands[0] == "resume") {
    v1::ResumePoolRequest request;
    request.set_name(operands[1]);
    v1::ResumePoolResponse response;
    if (absl::Status status = call(target, &v1::Admin::Stub::ResumePool, request, response); !status.ok()) {
      return fail(status);
    }
    std::cout << "pool " << operands[1] << " submits pilots again\n";
    return kExitOk;
  }
  std::cerr << "pesc: pool add NAME --slurm|--template FILE [flags] [-- submit args] | pool list | pool remove NAME | "
               "pool resume NAME\n";
  return kExitUsage;
}

void print_pool_troubles(const Target& target) {
  v1::ListPoolsResponse response;
  // An older coordinator has no pools: nothing to add then.
  if (!call(target, &v1::Admin::Stub::ListPools, v1::ListPoolsRequest(), response).ok()) return;
  for (const v1::PoolStatus& pool : response.pools()) {
    if (!pool.paused().empty()) {
      std::cout << "pool " << pool.spec().name() << " is " << pool.paused() << ". " << resume_advice(pool.spec().name())
                << "\n";
    } else if (!pool.last_failure().empty()) {
      std::cout << "pool " << pool.spec().name() << ": " << pool.last_failure() << "\n";
    }
  }
}

}  // namespace pesc::cli
