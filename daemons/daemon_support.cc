#include "daemon_support.h"

#include <csignal>
#include <thread>

namespace pesc {

void on_termination_signal(std::function<void(int)> on_signal) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([signals, on_signal = std::move(on_signal)] {
    int received = 0;
    while (sigwait(&signals, &received) == 0) on_signal(received);
  }).detach();
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
