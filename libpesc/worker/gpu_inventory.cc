#include "worker/gpu_inventory.h"

#include <sys/wait.h>

#include <cstdio>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"

namespace pesc {
namespace {

constexpr const char* kQuery =
    "nvidia-smi --query-gpu=index,name,memory.total,compute_cap --format=csv,noheader,nounits 2>/dev/null";

// The command's standard output, or nullopt when it did not exit 0 (127:
// not on PATH).
std::optional<std::string> output_of(const char* command) {
  FILE* pipe = ::popen(command, "r");
  if (pipe == nullptr) return std::nullopt;
  std::string output;
  char buffer[4096];
  while (size_t read = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, read);
  const int status = ::pclose(pipe);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return output;
}

}  // namespace

std::vector<v1::Gpu> detect_gpus() {
  // Most machines have no nvidia-smi: a look along PATH spares them a shell.
  if (!find_on_path("nvidia-smi")) return {};
  std::optional<std::string> csv = output_of(kQuery);
  if (!csv) return {};
  auto gpus = parse_nvidia_smi(*csv);
  return gpus.ok() ? *std::move(gpus) : std::vector<v1::Gpu>{};
}

absl::StatusOr<std::vector<v1::Gpu>> parse_nvidia_smi(const std::string& csv) {
  std::vector<v1::Gpu> gpus;
  for (absl::string_view line : absl::StrSplit(csv, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ',');
    for (absl::string_view& field : fields) field = absl::StripAsciiWhitespace(field);
    v1::Gpu gpu;
    int index = 0;
    int64_t mebibytes = 0;
    double capability = 0;
    if (fields.size() != 4 || !absl::SimpleAtoi(fields[0], &index) || !absl::SimpleAtoi(fields[2], &mebibytes) ||
        !absl::SimpleAtod(fields[3], &capability)) {
      return absl::InvalidArgumentError(absl::StrCat("nvidia-smi printed an unexpected line: ", line));
    }
    gpu.set_index(index);
    gpu.set_name(std::string(fields[1]));
    gpu.set_memory_bytes(mebibytes << 20);
    gpu.set_compute_capability(capability);
    gpus.push_back(std::move(gpu));
  }
  return gpus;
}

std::string describe_gpus(const std::vector<v1::Gpu>& gpus) {
  if (gpus.empty()) return "no GPUs";
  std::string text = absl::StrCat(gpus.size(), gpus.size() == 1 ? " GPU:" : " GPUs:");
  for (const v1::Gpu& gpu : gpus) {
    absl::StrAppendFormat(&text, " %d %s (%.1f, %.0f MiB)", gpu.index(), gpu.name(), gpu.compute_capability(),
                          static_cast<double>(gpu.memory_bytes()) / (1 << 20));
  }
  return text;
}

}  // namespace pesc
