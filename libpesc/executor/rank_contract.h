#ifndef PESC_EXECUTOR_RANK_CONTRACT_H_
#define PESC_EXECUTOR_RANK_CONTRACT_H_

// The promise pesc makes to every rank (see shared/reference/pesc.md): the
// exact PESC flags, and the same facts as environment variables under the
// PESC_*, torch.distributed and Slurm/PBS array names.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace pesc {

struct RankContext {
  std::filesystem::path app_dir;
  std::filesystem::path checkpoint_dir;
  std::filesystem::path output_dir;
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 9000;
  std::vector<std::string> parameters;
  // The GPUs (driver indices) the rank has to itself.
  std::vector<int> gpus;
  // The machine has GPUs: a rank given none must not see any either.
  bool gpu_host = false;
  // A warm runner's further output and checkpoint dirs, made, owned and
  // bound like the first: its next ranks run there while the worker
  // collects the last one. Empty for other ranks.
  std::vector<std::filesystem::path> spare_dirs;
  // The job's seed, as PESC_SEED; none: no PESC_SEED.
  std::optional<uint64_t> seed;
};

// "--app_dir A/ --checkpoint_dir C --output_dir O --rank R --world_size W
//  --master_addr M --master_port P --parameters p1 p2 ..." as separate argv
// words, parameters byte for byte. app_dir ends with '/', as PESC's default.
std::vector<std::string> pesc_flags(const RankContext& context);

// PESC_RANK, PESC_WORLD_SIZE, PESC_APP_DIR, PESC_OUTPUT_DIR,
// PESC_CHECKPOINT_DIR, PESC_MASTER_ADDR, PESC_MASTER_PORT, PESC_PARAMETERS
// (joined by single spaces), PESC_PARAMETER_COUNT and PESC_PARAMETER_<i>
// (each byte for byte), RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
// SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN,
// SLURM_ARRAY_TASK_MAX, PBS_ARRAYID; CUDA_VISIBLE_DEVICES (the rank's GPUs,
// comma-separated, empty for none) when it has GPUs or the machine does;
// PESC_SEED when the job has a seed.
// The parameters go into the environment only while they are small
// (kParametersInEnvironmentBytes together): argv and the environment share
// one limit of the kernel, and large ones passed twice would not fit.
std::vector<std::pair<std::string, std::string>> pesc_environment(const RankContext& context);

inline constexpr size_t kParametersInEnvironmentBytes = 64 * 1024;

// Whether a rank with these parameters can be started at all: every
// argument within the kernel's limit on one string, and argv and the
// environment together within its limit on both (sysconf's ARG_MAX), with
// room left for the paths, the flags and the worker's own environment. A
// job fault (common/fault.h) when not, saying by how much.
absl::Status check_parameters_fit(const std::vector<std::string>& parameters);

}  // namespace pesc

#endif  // PESC_EXECUTOR_RANK_CONTRACT_H_
