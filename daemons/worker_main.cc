// pesc-worker: runs ranks for a coordinator. Flags and wiring only.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <thread>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "daemon_support.h"
#include "security/client_credentials.h"
#include "transport/tls_diagnosis.h"
#include "transport/transport.h"
#include "worker/gpu_inventory.h"
#include "worker/owner_watch.h"
#include "worker/rank_isolation.h"
#include "worker/worker_agent.h"

namespace {

// What the command line said, filled in by CLI11 as it parses.
struct CommandLine {
  std::string coordinator;
  int slots = 0;
  std::string work_dir = "/var/tmp/pesc-worker";
  std::vector<std::string> interpreters;
  std::string id;
  std::vector<std::string> rooms;
  std::string token_file;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string run_as = "pesc";
  bool no_sandbox = false;
  bool owners_first = true;
  int64_t disk_reserve_mb = 16;
  std::string config;
  std::string idle_timeout;
  int64_t end_unix = 0;
  std::string drain_before = "30s";
};

void add_options(CLI::App& app, CommandLine& line) {
  constexpr const char* kWhat = "what it runs and where";
  app.add_option("--slots", line.slots, "ranks run side by side (default: one per core)")->type_name("N")->group(kWhat);
  app.add_option("--work-dir", line.work_dir, "where processes are cached and ranks run")
      ->type_name("DIR")->group(kWhat);
  pesc::add_list_option(app, "--interpreter", line.interpreters,
                        "interpreters by domain or program name, e.g. python=/usr/bin/python3; repeatable "
                        "(default: found on PATH)")
      ->type_name("NAME=PATH,...")->group(kWhat);
  pesc::add_list_option(app, "--room", line.rooms, "the rooms (labs) this worker serves; repeatable (default: public)")
      ->type_name("ROOM,...")->group(kWhat);
  app.add_option("--id", line.id, "this worker's id (default: kept in the work dir)")->type_name("ID")->group(kWhat);
  app.add_option("--disk-reserve-mb", line.disk_reserve_mb,
                 "MiB kept free on the work dir's filesystem: with less, the worker takes no ranks until there is "
                 "room")
      ->type_name("MIB")->group(kWhat);

  constexpr const char* kIsolation = "isolation and owners first";
  app.add_option("--run-as", line.run_as,
                 "USER ranks run as when the worker is root (created as a system account when missing); empty: as "
                 "the worker's own user")
      ->type_name("USER")->group(kIsolation);
  app.add_flag("--no-sandbox", line.no_sandbox, "run ranks without bubblewrap even when it is installed")
      ->group(kIsolation);
  app.add_flag("--owners-first,!--no-owners-first", line.owners_first,
               "give way to the machine's people: no new ranks while its CPU is busy with other work, ranks held "
               "to a small share while someone uses it; --owners-first=false or --no-owners-first: a dedicated "
               "machine (default: on)")
      ->group(kIsolation);
  app.add_option("--config", line.config,
                 "FILE of key = value settings for owners first (cpu_threshold, owner_share, owner_idle_seconds, "
                 "check_seconds), read again when it changes or on SIGHUP (default: none)")
      ->type_name("FILE")->group(kIsolation);

  constexpr const char* kPilot = "pilot (a batch job, from a coordinator's pool)";
  app.add_option("--idle-timeout", line.idle_timeout,
                 "leave after running nothing for this long, e.g. 5m (default: stay)")
      ->type_name("DURATION")->group(kPilot);
  app.add_option("--end-unix", line.end_unix,
                 "when the batch allocation ends, in unix seconds: ranks that would not finish by then go elsewhere, "
                 "and the worker drains before it (default: never)")
      ->type_name("SECONDS")->group(kPilot);
  app.add_option("--drain-before", line.drain_before,
                 "how long before --end-unix to stop taking ranks; it leaves a third of that before the end")
      ->type_name("DURATION")->capture_default_str()->group(kPilot);

  constexpr const char* kConnection = "connection/security";
  app.add_option("--coordinator", line.coordinator,
                 "HOST:PORT of the coordinator (default: $PESC_COORDINATOR or 127.0.0.1:7070)")
      ->type_name("HOST:PORT")->group(kConnection);
  app.add_option("--token-file", line.token_file,
                 "file holding the join token from `pesc worker-token` (default: $PESC_TOKEN, $PESC_TOKEN_FILE, "
                 "~/.config/pesc/token)")
      ->type_name("FILE")->group(kConnection);
  pesc::add_tls_client_options(app, line.tls_ca, line.tls_cert, line.tls_key, kConnection);
}

std::string coordinator_address(const CommandLine& line) {
  if (!line.coordinator.empty()) return line.coordinator;
  const char* from_environment = std::getenv("PESC_COORDINATOR");
  return from_environment != nullptr ? from_environment : "127.0.0.1:7070";
}

}  // namespace

int main(int argc, char** argv) {
  pesc::handle_termination_signals();
  // Debian's abseil checks the order of every lock taken (a debugging aid)
  // at a cost per lock, as in the coordinator: a rank takes dozens.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app(
      "pesc-worker: runs ranks for a pesc-coordinator, each in its own directory, sandboxed and limited.");
  pesc::set_up_help(app, "pesc-worker");
  app.footer("A lab desktop: pesc-worker --coordinator HOST:PORT --token-file join.token --room lab-b");
  CommandLine line;
  add_options(app, line);
  if (auto exit_status = pesc::parse_command_line(app, argc, argv)) return *exit_status;
  pesc::WorkerOptions options;
  options.slots =
      line.slots > 0 ? line.slots : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  options.work_dir = line.work_dir;
  options.worker_id = line.id;
  options.rooms = line.rooms;
  options.gpus = pesc::detect_gpus();
  options.owners_first = line.owners_first;
  options.owner_config = line.config;
  options.disk_reserve_bytes = static_cast<uint64_t>(std::max<int64_t>(0, line.disk_reserve_mb)) << 20;
  absl::Duration idle_timeout = absl::InfiniteDuration();
  absl::Duration drain_before;
  if (!line.idle_timeout.empty() && !absl::ParseDuration(line.idle_timeout, &idle_timeout)) {
    return pesc::usage_error(app,
                             "--idle-timeout wants a duration such as 5m or 90s, not \"" + line.idle_timeout + "\"");
  }
  if (!absl::ParseDuration(line.drain_before, &drain_before)) {
    return pesc::usage_error(app, "--drain-before wants a duration such as 30s, not \"" + line.drain_before + "\"");
  }
  options.end_unix_ms = line.end_unix * 1000;
  options.drain_before = absl::ToChronoSeconds(drain_before);
  std::signal(SIGHUP, [](int) { pesc::OwnerWatch::request_reload(); });
  for (const std::string& pair : line.interpreters) {
    std::vector<std::string> parts = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      return pesc::usage_error(app, "--interpreter wants NAME=PATH, not \"" + pair + "\"");
    }
    options.interpreters[parts[0]] = parts[1];
  }

  auto isolation = pesc::RankIsolation::create(
      {.run_as = line.run_as, .sandbox = !line.no_sandbox, .hidden = {line.token_file, line.work_dir}});
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
  const std::string address = coordinator_address(line);
  options.on_status = [address](const std::string& status) {
    std::cout << absl::FormatTime("%Y-%m-%d %H:%M:%S ", absl::Now(), absl::LocalTimeZone()) << address << ": "
              << status << std::endl;
  };
  auto security = pesc::resolve_client_security(
      {.token_file = line.token_file, .tls_ca = line.tls_ca, .tls_cert = line.tls_cert, .tls_key = line.tls_key});
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
  const absl::Time leave_at = line.end_unix > 0 ? absl::FromUnixSeconds(line.end_unix) - drain_before / 3
                                                : absl::InfiniteFuture();
  while (!stop.WaitForNotificationWithTimeout(absl::Seconds(1))) {
    if ((*worker)->idle_for() >= idle_timeout) {
      std::cout << "pesc-worker: idle for " << absl::FormatDuration(idle_timeout) << "; leaving" << std::endl;
      break;
    }
    if ((*worker)->drained() || absl::Now() >= leave_at) {
      std::cout << "pesc-worker: the batch allocation ends at "
                << absl::FormatTime(absl::FromUnixSeconds(line.end_unix)) << "; leaving" << std::endl;
      break;
    }
  }
  (*worker)->stop();
  return 0;
}
