// pesc-coordinator: the farm's manager. Flags and wiring only.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/files.h"
#include "coordinator_config.h"
#include "coordinator/coordinator.h"
#include "daemon_support.h"
#include "http/http_server.h"
#include "store/state_dir.h"

namespace {

std::string default_state_dir() {
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.local/state/pesc";
}

// `pesc-coordinator backup DEST`: beside a running coordinator, without its lock.
int back_up(const std::filesystem::path& state_dir, const std::vector<std::string>& operands) {
  if (operands.size() != 1) {
    std::cerr << "pesc-coordinator: backup DEST [--state-dir DIR]: DEST is a new directory\n";
    return pesc::kExitUsage;
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

// What the command line said, filled in by CLI11 as it parses.
struct CommandLine {
  std::string listen = "127.0.0.1:7070";
  std::string state_dir;
  int worker_lease_ms = 10000;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  std::string insecure_listen;
  int64_t max_queued_ranks_per_user = 10'000'000;
  uint64_t max_stored_bytes_per_user = uint64_t{100} << 30;
  uint64_t max_blob_bytes = uint64_t{16} << 30;
  std::string smtp_url;
  std::string smtp_from = "pesc@localhost";
  std::string pool_address;
  std::string pool_worker;
  std::string pool_tls_ca;
  std::string http;
  std::string config;
  std::vector<std::string> operands;
};

void add_options(CLI::App& app, CommandLine& line) {
  app.add_option("COMMAND", line.operands,
                 "backup DEST: copy the state dir into the new directory DEST while the coordinator runs");
  app.add_option("--config", line.config,
                 "read settings from FILE: `key = value` lines whose keys are these flags without -- (listen = "
                 "0.0.0.0:7070), and [pool NAME] sections as `pesc pool add` takes (README: Pools); a flag given "
                 "here wins over the file's")
      ->type_name("FILE");
  constexpr const char* kWhere = "where it listens and keeps its state";
  app.add_option("--listen", line.listen, "address to listen on; port 0 picks a free port")
      ->type_name("HOST:PORT")->group(kWhere);
  app.add_option("--state-dir", line.state_dir, "where jobs, results and blobs are kept (default: ~/.local/state/pesc)")
      ->type_name("DIR")->group(kWhere);
  app.add_option("--insecure-listen", line.insecure_listen,
                 "listen on this address without TLS even though it is not loopback (tokens and code cross the "
                 "network in the clear; default: none)")
      ->type_name("HOST:PORT")->group(kWhere);
  app.add_option("--http", line.http,
                 "serve the web dashboard and REST API (/api/v1/, /metrics) here, HTTPS with --tls-cert; without "
                 "TLS only on loopback (reach it with ssh -L); port 0 picks a free port (default: none)")
      ->type_name("HOST:PORT")->group(kWhere);
  constexpr const char* kSecurity = "connection/security";
  app.add_option("--tls-cert", line.tls_cert,
                 "PEM certificate for TLS (with --tls-key); `pesc certs init DIR` makes one (default: none)")
      ->type_name("PEM")->group(kSecurity);
  app.add_option("--tls-key", line.tls_key, "PEM key of --tls-cert (default: none)")->type_name("PEM")->group(kSecurity);
  app.add_option("--tls-client-ca", line.tls_client_ca,
                 "PEM CA: clients and workers must present a certificate it signed (default: none)")
      ->type_name("PEM")->group(kSecurity);
  constexpr const char* kLimits = "limits";
  app.add_option("--worker-lease-ms", line.worker_lease_ms,
                 "a worker silent this long is lost and its ranks run elsewhere")
      ->type_name("MS")->group(kLimits);
  app.add_option("--max-queued-ranks-per-user", line.max_queued_ranks_per_user,
                 "ranks one user may have queued or running at once")
      ->type_name("N")->group(kLimits);
  app.add_option("--max-stored-bytes-per-user", line.max_stored_bytes_per_user,
                 "bytes one user may upload and keep stored")
      ->type_name("BYTES")->group(kLimits);
  app.add_option("--max-blob-bytes", line.max_blob_bytes, "the largest file anyone may upload")
      ->type_name("BYTES")->group(kLimits);
  constexpr const char* kNotices = "notices (jobs submitted with --notify)";
  app.add_option("--smtp-url", line.smtp_url,
                 "the mail server that sends jobs' mailto: notices, e.g. smtp://mail.example.org:25 or smtps://...; "
                 "without it such notices are refused at submit (default: none)")
      ->type_name("URL")->group(kNotices);
  app.add_option("--smtp-from", line.smtp_from, "the sender of those notices")
      ->type_name("ADDR")->capture_default_str()->group(kNotices);
  constexpr const char* kPools = "pools of pilot workers (`pesc pool add`)";
  app.add_option("--pool-address", line.pool_address,
                 "HOST:PORT pilots on the cluster's nodes connect to (default: the address it listens on)")
      ->type_name("HOST:PORT")->group(kPools);
  app.add_option("--pool-worker", line.pool_worker,
                 "the pesc-worker pilots run, as the nodes see it (default: the one beside pesc-coordinator)")
      ->type_name("PATH")->group(kPools);
  app.add_option("--pool-tls-ca", line.pool_tls_ca,
                 "PEM CA pilots check the coordinator's certificate with (default: ca.pem beside --tls-cert)")
      ->type_name("PEM")->group(kPools);
}

}  // namespace

int main(int argc, char** argv) {
  pesc::handle_termination_signals();
  // Debian's abseil checks the order of every lock taken (a debugging aid)
  // at a cost per lock; the coordinator takes one per message of each worker.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Whatever it writes (the state database, blobs, tokens) is its owner's.
  ::umask(077);
  CLI::App app(
      "pesc-coordinator: the farm's manager. It queues jobs, hands ranks to workers and keeps results.\n"
      "Loopback needs no TLS; any other address needs --tls-cert and --tls-key, or --insecure-listen.");
  pesc::set_up_help(app, "pesc-coordinator");
  CommandLine line;
  add_options(app, line);
  if (auto exit_status = pesc::parse_command_line(app, argc, argv)) return *exit_status;
  pesc::CoordinatorOptions options;
  if (!line.config.empty()) {
    auto pools = pesc::apply_config_file(app, line.config);
    if (!pools.ok()) {
      std::cerr << "pesc-coordinator: " << pools.status().message() << "\n";
      return pesc::kExitUsage;
    }
    options.pools = *std::move(pools);
  }
  options.state_dir = line.state_dir.empty() ? default_state_dir() : line.state_dir;
  if (!line.operands.empty() && line.operands[0] == "backup") {
    return back_up(options.state_dir, {line.operands.begin() + 1, line.operands.end()});
  }
  if (!line.operands.empty()) {
    return pesc::usage_error(app, "unknown command \"" + line.operands[0] + "\" (the only one is backup)");
  }
  options.worker_lease = std::chrono::milliseconds(line.worker_lease_ms);
  options.tls_cert = line.tls_cert;
  options.tls_key = line.tls_key;
  options.tls_client_ca = line.tls_client_ca;
  options.max_queued_ranks_per_user = line.max_queued_ranks_per_user;
  options.max_stored_bytes_per_user = line.max_stored_bytes_per_user;
  options.max_blob_bytes = line.max_blob_bytes;
  options.smtp_url = line.smtp_url;
  options.smtp_from = line.smtp_from;
  options.pool_address = line.pool_address;
  options.pool_worker = line.pool_worker;
  options.pool_tls_ca = line.pool_tls_ca;
  std::string listen = line.listen;
  if (!line.insecure_listen.empty()) {
    listen = line.insecure_listen;
    options.insecure_listen = true;
    std::cerr << "pesc-coordinator: WARNING: listening on " << listen
              << " without TLS; anyone on the network can read tokens and code in transit\n";
  }

  const pesc::http::HttpOptions http_options{line.http, options.tls_cert, options.tls_key};
  if (!line.http.empty()) {
    if (absl::Status checked = pesc::http::check_http_options(http_options); !checked.ok()) {
      std::cerr << "pesc-coordinator: " << checked.message() << "\n";
      return 1;
    }
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
  std::unique_ptr<pesc::http::HttpServer> http;
  if (!line.http.empty()) {
    auto started = pesc::http::HttpServer::start((*server)->core(), http_options);
    if (!started.ok()) {
      std::cerr << "pesc-coordinator: " << started.status().message() << "\n";
      return 1;
    }
    http = *std::move(started);
    (void)pesc::write_file_atomically(options.state_dir / "http.addr", http->url() + "\n");
    std::cout << "pesc-coordinator: http: listening on " << http->url() << std::endl;
  }
  (*server)->wait();
  return 0;
}
