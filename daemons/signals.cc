#include "signals.h"

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

}  // namespace pesc
