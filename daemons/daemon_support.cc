#include "daemon_support.h"

#include <csignal>
#include <cstdlib>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace pesc {

namespace {

absl::Mutex handler_mutex;
std::function<void(int)>& handler() {
  static auto* current = new std::function<void(int)>([](int signal) { std::_Exit(128 + signal); });
  return *current;
}

}  // namespace

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

std::vector<char*> with_flag_names_normalized(int argc, char** argv, std::vector<std::string>& storage) {
  storage.assign(argv, argv + argc);
  for (std::string& arg : storage) {
    if (arg == "--") break;
    if (arg.size() < 3 || arg[0] != '-') continue;
    const size_t name_end = std::min(arg.find('='), arg.size());
    for (size_t i = arg.find_first_not_of('-'); i < name_end; ++i) {
      if (arg[i] == '-') arg[i] = '_';
    }
  }
  std::vector<char*> normalized;
  for (std::string& arg : storage) normalized.push_back(arg.data());
  return normalized;
}

}  // namespace pesc
