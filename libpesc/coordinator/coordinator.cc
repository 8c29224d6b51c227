#include "coordinator/coordinator.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/farm_state.h"
#include "coordinator/services.h"
#include "transport/transport.h"

namespace pesc {

struct Coordinator::Impl {
  explicit Impl(std::unique_ptr<FarmState> farm_state)
      : state(std::move(farm_state)), jobs(*state), blobs(*state), workers(*state) {}
  std::unique_ptr<FarmState> state;
  JobsService jobs;
  BlobsService blobs;
  WorkersService workers;
};

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::open(const CoordinatorOptions& options) {
  PESC_ASSIGN_OR_RETURN(auto state, FarmState::open(options));
  return std::unique_ptr<Coordinator>(new Coordinator(std::make_unique<Impl>(std::move(state))));
}

Coordinator::Coordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Coordinator::~Coordinator() = default;

void Coordinator::register_services(grpc::ServerBuilder& builder) {
  builder.RegisterService(&impl_->jobs);
  builder.RegisterService(&impl_->blobs);
  builder.RegisterService(&impl_->workers);
}

void Coordinator::shut_down() { impl_->state->shut_down(); }

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::start(const CoordinatorOptions& options,
                                                                            const std::string& listen_address) {
  auto server = std::unique_ptr<CoordinatorServer>(new CoordinatorServer());
  PESC_ASSIGN_OR_RETURN(server->coordinator_, Coordinator::open(options));
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  int bound_port = 0;
  if (!listen_address.empty()) {
    builder.AddListeningPort(listen_address, grpc::InsecureServerCredentials(), &bound_port);
  }
  server->coordinator_->register_services(builder);
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || (!listen_address.empty() && bound_port == 0)) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen_address,
                                               ": the address is in use or not an address of this host"));
  }
  if (!listen_address.empty()) {
    std::string host = listen_address.substr(0, listen_address.rfind(':'));
    server->address_ = absl::StrCat(host, ":", bound_port);
  }
  return server;
}

CoordinatorServer::~CoordinatorServer() { shut_down(); }

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
