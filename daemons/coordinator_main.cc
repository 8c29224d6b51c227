// pesc-coordinator: the farm's manager. Flags and wiring only.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/files.h"
#include "coordinator/coordinator.h"
#include "daemon_support.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070", "address to listen on; port 0 picks a free port");
ABSL_FLAG(std::string, state_dir, "", "where jobs, results and blobs are kept (default: ~/.local/state/pesc)");
ABSL_FLAG(int, worker_lease_ms, 10000, "a worker silent this long is lost and its ranks run elsewhere");

namespace {

std::string default_state_dir() {
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.local/state/pesc";
}

}  // namespace

int main(int argc, char** argv) {
  pesc::handle_termination_signals();
  absl::SetProgramUsageMessage("pesc-coordinator --listen HOST:PORT --state-dir DIR");
  std::vector<std::string> storage;
  std::vector<char*> args = pesc::with_flag_names_normalized(argc, argv, storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  pesc::CoordinatorOptions options;
  options.state_dir = absl::GetFlag(FLAGS_state_dir).empty() ? default_state_dir() : absl::GetFlag(FLAGS_state_dir);
  options.worker_lease = std::chrono::milliseconds(absl::GetFlag(FLAGS_worker_lease_ms));

  pesc::CoordinatorServer* running = nullptr;
  pesc::on_termination_signal([&running](int) {
    if (running != nullptr) running->shut_down();
  });
  auto server = pesc::CoordinatorServer::start(options, absl::GetFlag(FLAGS_listen));
  if (!server.ok()) {
    std::cerr << "pesc-coordinator: " << server.status().message() << "\n";
    return 1;
  }
  running = server->get();
  // Tests and scripts read the bound address (port 0 picks one) from here.
  (void)pesc::write_file_atomically(options.state_dir / "coordinator.address", (*server)->address() + "\n");
  std::cout << "pesc-coordinator listening on " << (*server)->address() << ", state in "
            << options.state_dir.string() << std::endl;
  (*server)->wait();
  return 0;
}
