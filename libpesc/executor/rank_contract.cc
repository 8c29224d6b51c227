#include "executor/rank_contract.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pesc {
namespace {

// PESC's own default is f"{os.getcwd()}/", and headers concatenate onto it.
std::string app_dir_text(const RankContext& context) {
  std::string text = context.app_dir.string();
  if (text.empty() || text.back() != '/') text.push_back('/');
  return text;
}

}  // namespace

std::vector<std::string> pesc_flags(const RankContext& context) {
  // clang-format off
  std::vector<std::string> flags = {
      "--app_dir", app_dir_text(context),
      "--checkpoint_dir", context.checkpoint_dir.string(),
      "--output_dir", context.output_dir.string(),
      "--rank", absl::StrCat(context.rank),
      "--world_size", absl::StrCat(context.world_size),
      "--master_addr", context.master_addr,
      "--master_port", absl::StrCat(context.master_port),
      // Last, so that nargs="*" has nothing after it to swallow.
      "--parameters",
  };
  // clang-format on
  flags.insert(flags.end(), context.parameters.begin(), context.parameters.end());
  return flags;
}

std::vector<std::pair<std::string, std::string>> pesc_environment(const RankContext& context) {
  const std::string rank = absl::StrCat(context.rank);
  const std::string world_size = absl::StrCat(context.world_size);
  const std::string master_port = absl::StrCat(context.master_port);
  std::vector<std::pair<std::string, std::string>> environment = {
      {"PESC_RANK", rank},
      {"PESC_WORLD_SIZE", world_size},
      {"PESC_APP_DIR", app_dir_text(context)},
      {"PESC_OUTPUT_DIR", context.output_dir.string()},
      {"PESC_CHECKPOINT_DIR", context.checkpoint_dir.string()},
      {"PESC_MASTER_ADDR", context.master_addr},
      {"PESC_MASTER_PORT", master_port},
      {"PESC_PARAMETERS", absl::StrJoin(context.parameters, " ")},
      {"PESC_PARAMETER_COUNT", absl::StrCat(context.parameters.size())},
  };
  for (size_t i = 0; i < context.parameters.size(); ++i) {
    environment.emplace_back(absl::StrCat("PESC_PARAMETER_", i), context.parameters[i]);
  }
  // torch.distributed's env:// rendezvous, then job-array conventions that
  // existing cluster scripts already read.
  environment.insert(environment.end(), {
                                            {"RANK", rank},
                                            {"WORLD_SIZE", world_size},
                                            {"MASTER_ADDR", context.master_addr},
                                            {"MASTER_PORT", master_port},
                                            {"SLURM_ARRAY_TASK_ID", rank},
                                            {"SLURM_ARRAY_TASK_COUNT", world_size},
                                            {"SLURM_ARRAY_TASK_MIN", "0"},
                                            {"SLURM_ARRAY_TASK_MAX", absl::StrCat(context.world_size - 1)},
                                            {"PBS_ARRAYID", rank},
                                        });
  if (context.gpu_host || !context.gpus.empty()) {
    environment.emplace_back("CUDA_VISIBLE_DEVICES", absl::StrJoin(context.gpus, ","));
  }
  return environment;
}

}  // namespace pesc
