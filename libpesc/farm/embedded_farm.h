#ifndef PESC_FARM_EMBEDDED_FARM_H_
#define PESC_FARM_EMBEDDED_FARM_H_

// A coordinator and one worker hosted in this process. It listens on no
// port; clients reach it through an in-process channel. Dropping the last
// reference stops its ranks and removes its temporary state.

#include <filesystem>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "common/files.h"
#include "coordinator/coordinator.h"
#include "worker/worker_agent.h"

namespace pesc {

// The options of a worker inside this process: every room, GPUs as found,
// `slots` (0: one per core) ranks at once, its files under `work_dir`.
WorkerOptions local_worker_options(const std::filesystem::path& work_dir, int slots);

class EmbeddedFarm {
 public:
  // state_dir empty: a temporary directory. slots 0: one per core.
  static absl::StatusOr<std::shared_ptr<EmbeddedFarm>> start(const std::filesystem::path& state_dir, int slots);
  ~EmbeddedFarm();

  std::shared_ptr<grpc::Channel> channel() { return server_->in_process_channel(); }
  int slots() const { return slots_; }

 private:
  EmbeddedFarm() = default;
  std::optional<TempDirectory> scratch_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<WorkerAgent> worker_;
  int slots_ = 0;
};

}  // namespace pesc

#endif  // PESC_FARM_EMBEDDED_FARM_H_
