#include "farm/embedded_farm.h"

#include <thread>

#include "common/status_macros.h"
#include "scheduler/fair_share.h"
#include "worker/gpu_inventory.h"

namespace pesc {

WorkerOptions local_worker_options(const std::filesystem::path& work_dir, int slots) {
  WorkerOptions worker;
  worker.slots = slots > 0 ? slots : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  worker.work_dir = work_dir;
  worker.worker_id = "local";
  worker.rooms = {kEveryRoom};  // ranks of any room may run in the process that asked for them
  worker.host = "127.0.0.1";     // where a gang's ranks, all on this machine, meet rank 0
  worker.gpus = detect_gpus();
  return worker;
}

absl::StatusOr<std::shared_ptr<EmbeddedFarm>> EmbeddedFarm::start(const std::filesystem::path& state_dir,
                                                                  int slots) {
  auto farm = std::shared_ptr<EmbeddedFarm>(new EmbeddedFarm());
  std::filesystem::path root = state_dir;
  if (root.empty()) {
    PESC_ASSIGN_OR_RETURN(TempDirectory scratch, TempDirectory::create("pesc-embedded-"));
    root = scratch.path();
    farm->scratch_ = std::move(scratch);
  }
  farm->slots_ = slots > 0 ? slots : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  CoordinatorOptions coordinator;
  coordinator.state_dir = root / "coordinator";
  // Reached only through an in-process channel: no port, so no tokens.
  coordinator.authenticate = false;
  // A scratch state dir goes with this process: no commit need outlive it.
  coordinator.survive_power_cut = !state_dir.empty();
  PESC_ASSIGN_OR_RETURN(farm->server_, CoordinatorServer::start(coordinator, ""));
  PESC_ASSIGN_OR_RETURN(farm->worker_, WorkerAgent::start(local_worker_options(root / "worker", farm->slots_),
                                                          farm->server_->in_process_channel()));
  return farm;
}

EmbeddedFarm::~EmbeddedFarm() {
  if (worker_) worker_->stop();
  if (server_) server_->shut_down();
}

}  // namespace pesc
