// pesc-coordinator: the farm's manager. Flags and wiring only.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "common/files.h"
#include "coordinator/coordinator.h"
#include "daemon_support.h"
#include "store/state_dir.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070", "address to listen on; port 0 picks a free port");
ABSL_FLAG(std::string, state_dir, "", "where jobs, results and blobs are kept (default: ~/.local/state/pesc)");
ABSL_FLAG(int, worker_lease_ms, 10000, "a worker silent this long is lost and its ranks run elsewhere");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate for TLS (with --tls-key); `pesc certs init DIR` makes one");
ABSL_FLAG(std::string, tls_key, "", "PEM key of --tls-cert");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA: clients and workers must present a certificate it signed");
ABSL_FLAG(std::string, insecure_listen, "",
          "listen on this address without TLS even though it is not loopback (tokens and code cross the network "
          "in the clear)");
ABSL_FLAG(int64_t, max_queued_ranks_per_user, 10'000'000, "ranks one user may have queued or running at once");
ABSL_FLAG(uint64_t, max_stored_bytes_per_user, uint64_t{100} << 30, "bytes one user may upload and keep stored");
ABSL_FLAG(uint64_t, max_blob_bytes, uint64_t{16} << 30, "the largest file anyone may upload");

namespace {

std::string default_state_dir() {
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.local/state/pesc";
}

// `pesc-coordinator backup DEST`: beside a running coordinator, without its lock.
int back_up(const std::filesystem::path& state_dir, const std::vector<char*>& operands) {
  if (operands.size() != 1) {
    std::cerr << "pesc-coordinator: backup DEST [--state-dir DIR]: DEST is a new directory\n";
    return 2;
  }
  const std::filesystem::path destination = operands[0];
  if (absl::Status backed_up = pesc::back_up_state_dir(state_dir, destination); !backed_up.ok()) {
    std::cerr << "pesc-coordinator: " << backed_up.message() << "\n";
    return 1;
  }
  std::cout << "backed up " << state_dir.string() << " to " << destination.string()
            << "; to restore, start a coordinator with --state-dir " << destination.string() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  pesc::handle_termination_signals();
  // Debian's abseil checks the order of every lock taken (a debugging aid)
  // at a cost per lock; the coordinator takes one per message of each worker.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Whatever it writes (the state database, blobs, tokens) is its owner's.
  ::umask(077);
  pesc::set_usage(
      "pesc-coordinator",
      "pesc-coordinator [--listen 127.0.0.1:PORT | --tls-cert PEM --tls-key PEM [--tls-client-ca PEM] --listen HOST:PORT | --insecure-listen HOST:PORT] --state-dir DIR\n"
      "pesc-coordinator backup DEST [--state-dir DIR]   (a copy of the state dir, taken while the coordinator runs)");
  std::vector<std::string> storage;
  std::vector<char*> args = pesc::with_flag_names_normalized(argc, argv, storage);
  std::vector<char*> operands = absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  operands.erase(operands.begin());  // the program's name
  pesc::CoordinatorOptions options;
  options.state_dir = absl::GetFlag(FLAGS_state_dir).empty() ? default_state_dir() : absl::GetFlag(FLAGS_state_dir);
  if (!operands.empty() && std::string(operands[0]) == "backup") {
    return back_up(options.state_dir, {operands.begin() + 1, operands.end()});
  }
  if (!operands.empty()) {
    std::cerr << "pesc-coordinator: unknown command " << operands[0] << " (the only one is backup)\n";
    return 2;
  }
  options.worker_lease = std::chrono::milliseconds(absl::GetFlag(FLAGS_worker_lease_ms));
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  options.max_queued_ranks_per_user = absl::GetFlag(FLAGS_max_queued_ranks_per_user);
  options.max_stored_bytes_per_user = absl::GetFlag(FLAGS_max_stored_bytes_per_user);
  options.max_blob_bytes = absl::GetFlag(FLAGS_max_blob_bytes);
  std::string listen = absl::GetFlag(FLAGS_listen);
  if (!absl::GetFlag(FLAGS_insecure_listen).empty()) {
    listen = absl::GetFlag(FLAGS_insecure_listen);
    options.insecure_listen = true;
    std::cerr << "pesc-coordinator: WARNING: listening on " << listen
              << " without TLS; anyone on the network can read tokens and code in transit\n";
  }

  pesc::CoordinatorServer* running = nullptr;
  pesc::on_termination_signal([&running](int) {
    if (running != nullptr) running->shut_down();
  });
  auto server = pesc::CoordinatorServer::start(options, listen);
  if (!server.ok()) {
    std::cerr << "pesc-coordinator: " << server.status().message() << "\n";
    return 1;
  }
  running = server->get();
  if (const auto& token = (*server)->new_admin_token()) {
    // Shown this once; the coordinator keeps only its hash.
    std::cout << "pesc-coordinator: the admin token is " << *token << "\n  (saved in "
              << pesc::admin_token_file(options.state_dir).string()
              << ", mode 0600; `pesc user add NAME` with it issues user tokens)" << std::endl;
  }
  // Tests and scripts read the bound address (port 0 picks one) from here.
  (void)pesc::write_file_atomically(options.state_dir / "coordinator.address", (*server)->address() + "\n");
  std::cout << "pesc-coordinator listening on " << (*server)->address() << ", state in "
            << options.state_dir.string() << std::endl;
  (*server)->wait();
  return 0;
}
