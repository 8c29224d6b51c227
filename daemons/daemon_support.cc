#include "daemon_support.h"

#include <csignal>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <thread>

#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "pesc/pesc.h"

namespace pesc {

namespace {

absl::Mutex handler_mutex;
std::function<void(int)>& handler() {
  static auto* current = new std::function<void(int)>([](int signal) { std::_Exit(128 + signal); });
  return *current;
}

}  // namespace

void set_usage(const std::string& program, const std::string& usage) {
  absl::SetProgramUsageMessage(usage);
  absl::FlagsUsageConfig config;
  config.version_string = [name = program] { return absl::StrCat(name, " ", PESC_VERSION, "\n"); };
  absl::SetFlagsUsageConfig(config);
}

void handle_termination_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([signals] {
    int received = 0;
    while (sigwait(&signals, &received) == 0) {
      std::function<void(int)> act;
      {
        absl::MutexLock lock(&handler_mutex);
        act = handler();
      }
      act(received);
    }
  }).detach();
}

void on_termination_signal(std::function<void(int)> on_signal) {
  absl::MutexLock lock(&handler_mutex);
  handler() = std::move(on_signal);
}

namespace {

// The value of `arg` when it is the list flag `name` ("--name=V" or "-name=V",
// or "--name" with the value in the next argument); nullopt otherwise.
std::optional<std::string> list_flag_value(const std::vector<std::string>& args, size_t& i, const std::string& name) {
  const std::string& arg = args[i];
  const size_t dashes = arg.find_first_not_of('-');
  if (dashes == 0 || dashes > 2 || dashes == std::string::npos) return std::nullopt;
  const std::string_view spelled = std::string_view(arg).substr(dashes);
  if (spelled == name && i + 1 < args.size()) return args[++i];
  if (spelled.size() > name.size() && spelled.substr(0, name.size()) == name && spelled[name.size()] == '=') {
    return std::string(spelled.substr(name.size() + 1));
  }
  return std::nullopt;
}

// absl keeps only the last of a repeated flag; "--shared a --shared b" must
// mean both, so the occurrences become one "--shared=a,b".
void join_repeated(std::vector<std::string>& args, const std::vector<std::string>& repeatable) {
  for (const std::string& name : repeatable) {
    std::vector<std::string> kept;
    std::vector<std::string> values;
    size_t first = std::string::npos;
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--") {
        kept.insert(kept.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
        break;
      }
      if (auto value = list_flag_value(args, i, name)) {
        if (first == std::string::npos) first = kept.size();
        values.push_back(*std::move(value));
        continue;
      }
      kept.push_back(args[i]);
    }
    if (first == std::string::npos) continue;
    kept.insert(kept.begin() + static_cast<std::ptrdiff_t>(first), absl::StrCat("--", name, "=", absl::StrJoin(values, ",")));
    args = std::move(kept);
  }
}

}  // namespace

std::vector<char*> with_flag_names_normalized(int argc, char** argv, std::vector<std::string>& storage,
                                              const std::vector<std::string>& repeatable) {
  storage.assign(argv, argv + argc);
  for (std::string& arg : storage) {
    if (arg == "--") break;
    if (arg.size() < 3 || arg[0] != '-') continue;
    const size_t name_end = std::min(arg.find('='), arg.size());
    for (size_t i = arg.find_first_not_of('-'); i < name_end; ++i) {
      if (arg[i] == '-') arg[i] = '_';
    }
  }
  join_repeated(storage, repeatable);
  std::vector<char*> normalized;
  for (std::string& arg : storage) normalized.push_back(arg.data());
  return normalized;
}

}  // namespace pesc
