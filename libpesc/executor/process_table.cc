#include "executor/process_table.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace pesc {

void for_each_process(const std::function<void(pid_t, const std::vector<absl::string_view>&)>& visit) {
  std::error_code error;
  for (auto it = std::filesystem::directory_iterator("/proc", error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(it->path().filename().string(), &pid)) continue;
    std::ifstream stat(it->path() / "stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const size_t close = text.rfind(')');
    if (close == std::string::npos || close + 2 >= text.size()) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(absl::string_view(text).substr(close + 2), ' ');
    if (fields.size() > kStatResidentPages) visit(pid, fields);
  }
}

}  // namespace pesc
