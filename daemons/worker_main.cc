// pesc-worker: runs ranks for a coordinator. Flags and wiring only.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/synchronization/notification.h"
#include "daemon_support.h"
#include "security/client_credentials.h"
#include "transport/tls_diagnosis.h"
#include "transport/transport.h"
#include "worker/gpu_inventory.h"
#include "worker/owner_watch.h"
#include "worker/rank_isolation.h"
#include "worker/worker_agent.h"

ABSL_FLAG(std::string, coordinator, "", "HOST:PORT of the coordinator (default: $PESC_COORDINATOR or 127.0.0.1:7070)");
ABSL_FLAG(int, slots, 0, "ranks run side by side (default: one per core)");
ABSL_FLAG(std::string, work_dir, "/var/tmp/pesc-worker", "where processes are cached and ranks run");
ABSL_FLAG(std::vector<std::string>, interpreter, {},
          "NAME=PATH,... interpreters by domain or program name, e.g. python=/usr/bin/python3");
ABSL_FLAG(std::string, id, "", "this worker's id (default: kept in the work dir)");
ABSL_FLAG(std::vector<std::string>, room, {}, "ROOM[,...] the rooms (labs) this worker serves, repeatable (default: public)");
ABSL_FLAG(std::string, token_file, "",
          "file holding the join token from `pesc worker-token` (default: $PESC_TOKEN, $PESC_TOKEN_FILE, "
          "~/.config/pesc/token)");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA that signed the coordinator's certificate; set: TLS (default $PESC_TLS_CA)");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate for a coordinator that asks for one (with --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "PEM key of --tls-cert");
ABSL_FLAG(std::string, run_as, "pesc",
          "USER ranks run as when the worker is root (created as a system account when missing); empty: "
          "as the worker's own user");
ABSL_FLAG(bool, no_sandbox, false, "run ranks without bubblewrap even when it is installed");
ABSL_FLAG(bool, owners_first, true,
          "give way to the machine's people: no new ranks while its CPU is busy with other work, ranks held to a "
          "small share while someone uses it (false: a dedicated machine)");
ABSL_FLAG(int64_t, disk_reserve_mb, 16,
          "MiB kept free on the work dir's filesystem: with less, the worker takes no ranks until there is room");
ABSL_FLAG(std::string, config, "",
          "FILE of key = value settings for owners first (cpu_threshold, owner_share, owner_idle_seconds, "
          "check_seconds), read again when it changes or on SIGHUP");

namespace {

std::string coordinator_address() {
  if (!absl::GetFlag(FLAGS_coordinator).empty()) return absl::GetFlag(FLAGS_coordinator);
  const char* from_environment = std::getenv("PESC_COORDINATOR");
  return from_environment != nullptr ? from_environment : "127.0.0.1:7070";
}

}  // namespace

int main(int argc, char** argv) {
  pesc::handle_termination_signals();
  pesc::set_usage("pesc-worker", "pesc-worker --coordinator HOST:PORT --slots N --work-dir DIR");
  std::vector<std::string> storage;
  std::vector<char*> args = pesc::with_flag_names_normalized(argc, argv, storage, {"room", "interpreter"});
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  pesc::WorkerOptions options;
  options.slots = absl::GetFlag(FLAGS_slots) > 0 ? absl::GetFlag(FLAGS_slots)
                                                 : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  options.work_dir = absl::GetFlag(FLAGS_work_dir);
  options.worker_id = absl::GetFlag(FLAGS_id);
  options.rooms = absl::GetFlag(FLAGS_room);
  options.gpus = pesc::detect_gpus();
  options.owners_first = absl::GetFlag(FLAGS_owners_first);
  options.owner_config = absl::GetFlag(FLAGS_config);
  options.disk_reserve_bytes = static_cast<uint64_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_disk_reserve_mb))) << 20;
  std::signal(SIGHUP, [](int) { pesc::OwnerWatch::request_reload(); });
  for (const std::string& pair : absl::GetFlag(FLAGS_interpreter)) {
    std::vector<std::string> parts = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      std::cerr << "pesc-worker: --interpreter wants NAME=PATH, not \"" << pair << "\"\n";
      return 2;
    }
    options.interpreters[parts[0]] = parts[1];
  }

  auto isolation = pesc::RankIsolation::create(
      {.run_as = absl::GetFlag(FLAGS_run_as),
       .sandbox = !absl::GetFlag(FLAGS_no_sandbox),
       .hidden = {absl::GetFlag(FLAGS_token_file), absl::GetFlag(FLAGS_work_dir)}});
  if (!isolation.ok()) {
    std::cerr << "pesc-worker: " << isolation.status().message() << "\n";
    return 1;
  }
  options.isolation = *isolation;
  if (absl::Status protected_dir = (*isolation)->protect_work_dir(options.work_dir); !protected_dir.ok()) {
    std::cerr << "pesc-worker: " << protected_dir.message() << "\n";
    return 1;
  }

  absl::Notification stop;
  pesc::on_termination_signal([&stop](int) {
    if (!stop.HasBeenNotified()) stop.Notify();
  });
  const std::string address = coordinator_address();
  options.on_status = [address](const std::string& status) {
    std::cout << absl::FormatTime("%Y-%m-%d %H:%M:%S ", absl::Now(), absl::LocalTimeZone()) << address << ": "
              << status << std::endl;
  };
  auto security = pesc::resolve_client_security({.token_file = absl::GetFlag(FLAGS_token_file),
                                                 .tls_ca = absl::GetFlag(FLAGS_tls_ca),
                                                 .tls_cert = absl::GetFlag(FLAGS_tls_cert),
                                                 .tls_key = absl::GetFlag(FLAGS_tls_key)});
  if (!security.ok()) {
    std::cerr << "pesc-worker: " << security.status().message() << "\n";
    return 2;
  }
  // Ranks inherit the environment; the token is the worker's alone.
  ::unsetenv("PESC_TOKEN");
  ::unsetenv("PESC_TOKEN_FILE");
  options.diagnose_unreachable = [address, security = *security] { return pesc::diagnose_tls(address, security); };
  auto worker = pesc::WorkerAgent::start(options, pesc::open_channel(address, *security));
  if (!worker.ok()) {
    std::cerr << "pesc-worker: " << worker.status().message() << "\n";
    return 1;
  }
  (void)(*isolation)->protect_work_dir(options.work_dir);  // what starting the worker made there
  std::cout << "pesc-worker " << (*worker)->id() << " with " << options.slots << " slots, coordinator " << address
            << std::endl;
  std::cout << "isolation: " << (*isolation)->describe() << std::endl;
  std::cout << "gpus: " << pesc::describe_gpus(options.gpus) << std::endl;
  stop.WaitForNotification();
  (*worker)->stop();
  return 0;
}
