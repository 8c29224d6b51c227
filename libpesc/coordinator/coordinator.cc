#include "coordinator/coordinator.h"

#include <arpa/inet.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "coordinator/access.h"
#include "coordinator/admin_service.h"
#include "coordinator/farm_state.h"
#include "coordinator/services.h"
#include "pool/pool_manager.h"
#include "security/secret_file.h"
#include "security/token_store.h"
#include "store/state_dir.h"
#include "transport/transport.h"

namespace pesc {
namespace fs = std::filesystem;

struct Coordinator::Impl {
  Impl(std::unique_ptr<FarmState> farm_state, std::unique_ptr<TokenStore> token_store,
       std::unique_ptr<PoolManager> pool_manager)
      : state(std::move(farm_state)),
        tokens(std::move(token_store)),
        pools(std::move(pool_manager)),
        access(tokens.get(), *state, state->options()),
        jobs(*state, access),
        blobs(*state, access),
        workers(*state, access),
        admin(tokens.get(), access, pools.get()) {}
  std::unique_ptr<FarmState> state;
  std::unique_ptr<TokenStore> tokens;  // null when authentication is off
  std::unique_ptr<PoolManager> pools;
  Access access;
  JobsService jobs;
  BlobsService blobs;
  WorkersService workers;
  AdminService admin;
  std::optional<std::string> new_admin_token;
};

namespace {

std::string pool_token_name(const std::string& pool) { return "pool-" + pool; }

absl::StatusOr<std::unique_ptr<PoolManager>> open_pools(const CoordinatorOptions& options, FarmState& state,
                                                        TokenStore* tokens) {
  PoolHost host{
      .waiting_ranks = [&state] { return state.ranks_for_pilots(); },
      .online_workers = [&state] { return state.online_workers(); },
      .issue_token = [tokens](const std::string& pool) -> absl::StatusOr<std::string> {
        if (tokens == nullptr) return std::string();
        return tokens->issue(pool_token_name(pool), Role::kWorker);
      },
      .revoke_tokens =
          [tokens](const std::string& pool) {
            if (tokens == nullptr) return;
            if (auto revoked = tokens->revoke(pool_token_name(pool)); !revoked.ok()) {
              std::cerr << "pesc-coordinator: pool " << pool << ": its token stays valid: " << revoked.status()
                        << std::endl;
            }
          },
  };
  PESC_ASSIGN_OR_RETURN(auto pools,
                        PoolManager::open(state_database_file(options.state_dir), options.state_dir / "pools", host));
  for (const PoolSpec& spec : options.pools) {
    if (absl::Status put = pools->put(spec); !put.ok()) {
      return absl::Status(put.code(), absl::StrCat("pool ", spec.name, ": ", put.message()));
    }
  }
  state.set_waiting_note([raw = pools.get()] { return raw->waiting_note(); });
  return pools;
}

// pesc-worker beside the running program (a build or an install), else on PATH.
std::string default_worker_program() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (!error && fs::exists(self.parent_path() / "pesc-worker")) return (self.parent_path() / "pesc-worker").string();
  return "pesc-worker";
}

std::vector<std::string> pilot_connection_args(const CoordinatorOptions& options) {
  if (options.tls_cert.empty()) return {};
  fs::path ca = options.pool_tls_ca;
  if (ca.empty()) ca = fs::exists(options.tls_cert.parent_path() / "ca.pem") ? options.tls_cert.parent_path() / "ca.pem"
                                                                             : options.tls_cert;
  std::vector<std::string> args = {"--tls-ca", ca.string()};
  // With mutual TLS the pilots show the lab's client certificate (`pesc certs init`).
  const fs::path dir = options.tls_cert.parent_path();
  if (!options.tls_client_ca.empty() && fs::exists(dir / "client.pem") && fs::exists(dir / "client.key")) {
    args.insert(args.end(), {"--tls-cert", (dir / "client.pem").string(), "--tls-key", (dir / "client.key").string()});
  }
  return args;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::open(const CoordinatorOptions& options) {
  PESC_ASSIGN_OR_RETURN(auto state, FarmState::open(options));
  std::unique_ptr<TokenStore> tokens;
  std::optional<std::string> new_admin_token;
  if (options.authenticate) {
    PESC_ASSIGN_OR_RETURN(tokens, TokenStore::open(state_database_file(options.state_dir)));
    PESC_ASSIGN_OR_RETURN(new_admin_token, tokens->ensure_admin_token());
    if (new_admin_token) {
      PESC_RETURN_IF_ERROR(write_file_with_mode(admin_token_file(options.state_dir), *new_admin_token + "\n", 0600));
    }
  }
  PESC_ASSIGN_OR_RETURN(auto pools, open_pools(options, *state, tokens.get()));
  auto impl = std::make_unique<Impl>(std::move(state), std::move(tokens), std::move(pools));
  impl->new_admin_token = std::move(new_admin_token);
  return std::unique_ptr<Coordinator>(new Coordinator(std::move(impl)));
}

Coordinator::Coordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Coordinator::~Coordinator() = default;

void Coordinator::register_services(grpc::ServerBuilder& builder) {
  builder.RegisterService(&impl_->jobs);
  builder.RegisterService(&impl_->blobs);
  builder.RegisterService(&impl_->workers);
  builder.RegisterService(&impl_->admin);
}

void Coordinator::start_pools(const std::string& address) {
  const CoordinatorOptions& options = impl_->state->options();
  impl_->pools->start({.coordinator_address = options.pool_address.empty() ? address : options.pool_address,
                       .worker_program = options.pool_worker.empty() ? default_worker_program() : options.pool_worker,
                       .connection_args = pilot_connection_args(options)});
}

void Coordinator::shut_down() {
  impl_->pools->shut_down();
  impl_->state->shut_down();
}

const std::optional<std::string>& Coordinator::new_admin_token() const { return impl_->new_admin_token; }

CoordinatorCore Coordinator::core() { return {*impl_->state, impl_->access, impl_->tokens.get()}; }

fs::path admin_token_file(const fs::path& state_dir) { return state_dir / "admin.token"; }

bool is_loopback_host(std::string host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}


namespace {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> server_credentials(const CoordinatorOptions& options,
                                                                          const std::string& listen_address) {
  const bool tls = !options.tls_cert.empty() || !options.tls_key.empty();
  if (!tls) {
    if (!options.tls_client_ca.empty()) {
      return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS first");
    }
    const std::string host = listen_address.substr(0, listen_address.rfind(':'));
    if (!options.insecure_listen && !is_loopback_host(host)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "will not listen on ", listen_address, " without TLS: tokens and code would cross the network in the "
          "clear. Give --tls-cert and --tls-key (`pesc certs init DIR` makes them), listen on 127.0.0.1, or pass "
          "--insecure-listen ", listen_address, " if this network is trusted"));
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert.empty() || options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together: the certificate and its key");
  }
  PESC_ASSIGN_OR_RETURN(std::string cert, read_file(options.tls_cert));
  PESC_ASSIGN_OR_RETURN(std::string key, read_file(options.tls_key));
  std::string client_ca;
  if (!options.tls_client_ca.empty()) {
    PESC_ASSIGN_OR_RETURN(client_ca, read_file(options.tls_client_ca));
  }
  grpc::SslServerCredentialsOptions tls_options(client_ca.empty()
                                                    ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                                    : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  tls_options.pem_root_certs = client_ca;
  tls_options.pem_key_cert_pairs.push_back({key, cert});
  return grpc::SslServerCredentials(tls_options);
}

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::start(const CoordinatorOptions& options,
                                                                            const std::string& listen_address) {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (!listen_address.empty()) {
    PESC_ASSIGN_OR_RETURN(credentials, server_credentials(options, listen_address));
  }
  auto server = std::unique_ptr<CoordinatorServer>(new CoordinatorServer());
  PESC_ASSIGN_OR_RETURN(server->coordinator_, Coordinator::open(options));
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  accept_keepalive_pings(builder);
  // A fixed 4 MiB window per stream instead of gRPC's probing for one: the
  // probe pings and times every stream's reads, which for many idle workers'
  // heartbeats cost more than the heartbeats themselves (issue 15), and a
  // fixed window of this size keeps uploads fast over slow links too.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 4 << 20);
  int bound_port = 0;
  if (!listen_address.empty()) builder.AddListeningPort(listen_address, credentials, &bound_port);
  server->coordinator_->register_services(builder);
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || (!listen_address.empty() && bound_port == 0)) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen_address,
                                               ": the address is in use or not an address of this host"));
  }
  if (!listen_address.empty()) {
    std::string host = listen_address.substr(0, listen_address.rfind(':'));
    server->address_ = absl::StrCat(host, ":", bound_port);
    server->coordinator_->start_pools(server->address_);
  }
  return server;
}

CoordinatorServer::~CoordinatorServer() { shut_down(); }

const std::optional<std::string>& CoordinatorServer::new_admin_token() const {
  return coordinator_->new_admin_token();
}

std::shared_ptr<grpc::Channel> CoordinatorServer::in_process_channel() {
  return server_->InProcessChannel(channel_arguments());
}

void CoordinatorServer::wait() { server_->Wait(); }

void CoordinatorServer::shut_down() {
  if (!server_) return;
  coordinator_->shut_down();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace pesc
