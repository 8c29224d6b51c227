#include "executor/rank_contract.h"

#include <unistd.h>

#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/fault.h"

namespace pesc {
namespace {

// PESC's own default is f"{os.getcwd()}/", and headers concatenate onto it.
std::string app_dir_text(const RankContext& context) {
  std::string text = context.app_dir.string();
  if (text.empty() || text.back() != '/') text.push_back('/');
  return text;
}

// What the kernel allows one argument or variable (MAX_ARG_STRLEN: 32
// pages), its terminating NUL included.
constexpr size_t kMaxArgumentBytes = 128 * 1024;
// Left for what the parameters share the limit with: the interpreter, the
// entry and the PESC flags with their paths, the contract's other variables
// and the worker's own environment.
constexpr size_t kReservedArgumentBytes = 64 * 1024;

size_t total_bytes(const std::vector<std::string>& parameters) {
  size_t total = 0;
  for (const std::string& parameter : parameters) total += parameter.size();
  return total;
}

bool parameters_in_environment(const std::vector<std::string>& parameters) {
  return total_bytes(parameters) + parameters.size() <= kParametersInEnvironmentBytes;
}

// What a string costs against ARG_MAX: its bytes, its NUL and its pointer.
size_t argument_cost(size_t bytes) { return bytes + 1 + sizeof(char*); }

}  // namespace

absl::Status check_parameters_fit(const std::vector<std::string>& parameters) {
  size_t needed = kReservedArgumentBytes;
  for (size_t i = 0; i < parameters.size(); ++i) {
    if (parameters[i].size() + 1 > kMaxArgumentBytes) {
      return job_fault(absl::InvalidArgumentError(absl::StrCat(
          "parameter ", i + 1, " has ", parameters[i].size(), " bytes; the kernel passes at most ",
          kMaxArgumentBytes - 1, " in one argument: pass large inputs as a shared file (--shared)")));
    }
    needed += argument_cost(parameters[i].size());
  }
  if (parameters_in_environment(parameters)) {
    needed += argument_cost(total_bytes(parameters) + parameters.size());  // PESC_PARAMETERS, joined
    for (size_t i = 0; i < parameters.size(); ++i) needed += argument_cost(parameters[i].size() + 20);
  }
  const long arg_max = ::sysconf(_SC_ARG_MAX);
  if (arg_max > 0 && needed > static_cast<size_t>(arg_max)) {
    return job_fault(absl::InvalidArgumentError(absl::StrCat(
        "the parameters need about ", needed, " bytes of arguments and environment, but the kernel starts a "
        "process with at most ", arg_max, ": pass large inputs as a shared file (--shared)")));
  }
  return absl::OkStatus();
}

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
  };
  const bool in_environment = parameters_in_environment(context.parameters);
  if (in_environment) environment.emplace_back("PESC_PARAMETERS", absl::StrJoin(context.parameters, " "));
  environment.emplace_back("PESC_PARAMETER_COUNT", absl::StrCat(context.parameters.size()));
  if (in_environment) {
    for (size_t i = 0; i < context.parameters.size(); ++i) {
      environment.emplace_back(absl::StrCat("PESC_PARAMETER_", i), context.parameters[i]);
    }
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
  if (context.seed) environment.emplace_back("PESC_SEED", absl::StrCat(*context.seed));
  if (context.gpu_host || !context.gpus.empty()) {
    environment.emplace_back("CUDA_VISIBLE_DEVICES", absl::StrJoin(context.gpus, ","));
  }
  return environment;
}

}  // namespace pesc
