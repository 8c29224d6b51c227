#ifndef PESC_COORDINATOR_COORDINATOR_H_
#define PESC_COORDINATOR_COORDINATOR_H_

// The coordinator: accepts jobs, keeps them in SQLite, hands ranks to the
// workers connected to it and streams results back to clients. The same
// class serves the `pesc-coordinator` daemon and the embedded local farm.
//
// Thread-safety: every public method may be called from any thread; gRPC
// calls arrive on gRPC's threads.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "pool/pool_types.h"

namespace pesc {

class Access;
class FarmState;
class TokenStore;

struct CoordinatorOptions {
  std::filesystem::path state_dir;
  // A worker silent for this long is lost; its ranks go to other workers.
  std::chrono::milliseconds worker_lease{10000};
  std::chrono::milliseconds heartbeat_interval{1000};
  // How often an idle worker with nothing new to say beats all the same;
  // at most a third of the lease, so two lost keep-alives lose no worker.
  std::chrono::milliseconds idle_keepalive{3000};
  // Whether what a user is told outlives a power cut (its commits wait for
  // the disk). Off for a state dir that dies with its process (the embedded
  // farm's scratch dir): a job's submit then waits for no fsync.
  bool survive_power_cut = true;
  // The least a worker holds beyond each slot that frees soon of a job whose
  // ranks are known to be short, so a slot that frees up starts the next
  // rank without waiting for a round trip (more when they are shorter). A
  // job of unknown or long pace gets none beyond the slots.
  int prefetch_per_slot = 1;

  // Every call must carry a valid token (see libpesc/security). Off only for
  // the embedded farm, which listens on no port.
  bool authenticate = true;
  // Per-user quotas (admins are not held to them): ranks queued or running
  // at once, and bytes of blobs uploaded and still stored.
  int64_t max_queued_ranks_per_user = 10'000'000;
  uint64_t max_stored_bytes_per_user = uint64_t{100} << 30;
  // The largest blob anyone may upload.
  uint64_t max_blob_bytes = uint64_t{16} << 30;

  // TLS: PEM files of the coordinator's certificate and key; with a client
  // CA, clients and workers must present a certificate it signed.
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
  std::filesystem::path tls_client_ca;
  // Without TLS the coordinator listens only on loopback, unless this is set.
  bool insecure_listen = false;

  // Where jobs' mailto: notify targets are sent (smtp://host:port or
  // smtps://...), and the sender they come from; without a URL such
  // targets are refused at submit.
  std::string smtp_url;
  std::string smtp_from = "pesc@localhost";

  // Pools of pilot workers (`pesc pool add`): the address pilots connect
  // to (empty: the one it listens on), the pesc-worker they run (empty: the
  // one beside this program, else on PATH), and the CA they check the
  // coordinator's certificate with (empty: ca.pem beside tls_cert, else
  // tls_cert itself).
  std::string pool_address;
  std::string pool_worker;
  std::filesystem::path pool_tls_ca;
  // Pools put in the pool store at start, replacing those of the same name
  // (a config file's); checked with check_pool_spec beforehand.
  std::vector<PoolSpec> pools;
};

// What another front end (the HTTP API, libpesc/http) calls, as the gRPC
// services do: the farm's state and the access rules, never a copy of them.
struct CoordinatorCore {
  FarmState& state;
  Access& access;
  TokenStore* tokens;  // null when authentication is off
};

class Coordinator {
 public:
  static absl::StatusOr<std::unique_ptr<Coordinator>> open(const CoordinatorOptions& options);
  ~Coordinator();

  // Registers the Jobs, Blobs and Workers services on a server being built.
  void register_services(grpc::ServerBuilder& builder);

  // Starts the pools' pilots, which reach the coordinator at `address`.
  void start_pools(const std::string& address);

  // Cancels the pools' pilots, ends watches and worker streams so the
  // server can shut down promptly.
  void shut_down();

  // The admin token when this start made it (also in admin_token_file()),
  // so the daemon can print it once; nullopt on later starts.
  const std::optional<std::string>& new_admin_token() const;

  CoordinatorCore core();

 private:
  struct Impl;
  explicit Coordinator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Where the admin token is written on the first start (mode 0600).
std::filesystem::path admin_token_file(const std::filesystem::path& state_dir);

// True for localhost and 127.0.0.0/8 or ::1, bracketed or not: an address
// only this host can reach, so it may be served without TLS.
bool is_loopback_host(std::string host);

// A coordinator with its gRPC server. Without a listen address it listens
// on no port and is reached through in_process_channel() (the embedded farm).
// Without TLS it refuses an address other than loopback unless
// options.insecure_listen says so.
class CoordinatorServer {
 public:
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> start(const CoordinatorOptions& options,
                                                                  const std::string& listen_address);
  ~CoordinatorServer();

  // "host:port" actually bound (the port is chosen when asked for port 0).
  const std::string& address() const { return address_; }
  std::shared_ptr<grpc::Channel> in_process_channel();
  const std::optional<std::string>& new_admin_token() const;
  CoordinatorCore core() { return coordinator_->core(); }
  void wait();  // until shut_down() from another thread
  void shut_down();

 private:
  CoordinatorServer() = default;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace pesc

#endif  // PESC_COORDINATOR_COORDINATOR_H_
