#ifndef PESC_COORDINATOR_COORDINATOR_H_
#define PESC_COORDINATOR_COORDINATOR_H_

// The coordinator: accepts jobs, keeps them in SQLite, hands ranks to the
// workers connected to it and streams results back to clients. The same
// class serves the `pesc-coordinator` daemon and the embedded local farm.
//
// Thread-safety: every public method may be called from any thread; gRPC
// calls arrive on gRPC's threads.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"

namespace pesc {

struct CoordinatorOptions {
  std::filesystem::path state_dir;
  // A worker silent for this long is lost; its ranks go to other workers.
  std::chrono::milliseconds worker_lease{10000};
  std::chrono::milliseconds heartbeat_interval{1000};
  // Assignments a worker may hold beyond its slots, so a slot that frees up
  // starts the next rank without waiting for a round trip.
  int prefetch_per_slot = 1;
};

class Coordinator {
 public:
  static absl::StatusOr<std::unique_ptr<Coordinator>> open(const CoordinatorOptions& options);
  ~Coordinator();

  // Registers the Jobs, Blobs and Workers services on a server being built.
  void register_services(grpc::ServerBuilder& builder);

  // Ends watches and worker streams so the server can shut down promptly.
  void shut_down();

 private:
  struct Impl;
  explicit Coordinator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A coordinator with its gRPC server. Without a listen address it listens
// on no port and is reached through in_process_channel() (the embedded farm).
class CoordinatorServer {
 public:
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> start(const CoordinatorOptions& options,
                                                                  const std::string& listen_address);
  ~CoordinatorServer();

  // "host:port" actually bound (the port is chosen when asked for port 0).
  const std::string& address() const { return address_; }
  std::shared_ptr<grpc::Channel> in_process_channel();
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
