// pesc: the command line. Flags and dispatch only; the work is in libpesc.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "admin_commands.h"
#include "commands.h"
#include "daemon_support.h"
#include "pesc/pesc.h"

ABSL_FLAG(std::string, coordinator, "", "HOST:PORT of a pesc-coordinator (default: $PESC_COORDINATOR, else an "
                                        "embedded local farm for `run`)");
ABSL_FLAG(std::string, domain, "", "native, python, R, shell, java, or a command template with {entry} "
                                   "(default: from the process file's name)");
ABSL_FLAG(int, repetitions, 1, "how many ranks to run");
ABSL_FLAG(std::string, entry, "", "the file to run inside a directory or archive process");
ABSL_FLAG(std::string, name, "", "a label for the job");
ABSL_FLAG(std::string, out, "", "save every rank's output_dir and the joined output.txt under this directory");
ABSL_FLAG(std::string, svg, "", "report: also write the job's timeline (one row per worker slot) as SVG to this file");
ABSL_FLAG(bool, detach, false, "print the job id and return at once (needs a coordinator)");
ABSL_FLAG(int, max_attempts, 1, "attempts for a rank that exits non-zero (1: no retry)");
ABSL_FLAG(double, timeout, 0, "seconds a rank may run before it is killed and reported (0: no limit)");
ABSL_FLAG(double, checkpoint_interval, 0,
          "seconds between saves of a running rank's checkpoint_dir when it changed (0: only at the end)");
ABSL_FLAG(std::vector<std::string>, room, {}, "ROOM[,...] rooms whose workers may run the ranks, repeatable (default: public)");
ABSL_FLAG(bool, same_machine, false, "run every rank on one worker");
ABSL_FLAG(std::vector<std::string>, shared, {},
          "FILE|URL[,...] read-only inputs every rank finds in its app_dir by name, repeatable");
ABSL_FLAG(std::string, memory, "", "per rank: memory its processes may hold together, e.g. 512M (0: no limit)");
ABSL_FLAG(double, cpu_time, 0, "per rank: CPU seconds each of its processes may use (0: no limit)");
ABSL_FLAG(int, open_files, 0, "per rank: descriptors each of its processes may hold open (0: no limit)");
ABSL_FLAG(int, processes, 0, "per rank: processes and threads it may have at once (0: no limit)");
ABSL_FLAG(std::string, output_size, "", "per rank: bytes it may leave in output_dir, e.g. 100M (0: no limit)");
ABSL_FLAG(bool, network, false, "the ranks may use the network (workers that sandbox ranks give them none otherwise)");
ABSL_FLAG(bool, parallel, false,
          "a gang: all ranks run at once, started together, told rank 0's address and port (--master_addr/port)");
ABSL_FLAG(bool, no_duplicates, false,
          "never run a straggling rank a second time on an idle worker (for ranks with side effects)");
ABSL_FLAG(int, gpus, 0, "per rank: NVIDIA GPUs it needs to itself (it sees them as CUDA_VISIBLE_DEVICES)");
ABSL_FLAG(double, min_capability, 0, "the least compute capability of those GPUs, e.g. 7.5 (0: any)");
ABSL_FLAG(int, slots, 0, "embedded farm: ranks run side by side (default: one per core)");
ABSL_FLAG(std::string, state_dir, "", "embedded farm: keep its state here instead of a temporary directory");
ABSL_FLAG(std::string, token_file, "",
          "file holding your token (default: $PESC_TOKEN, $PESC_TOKEN_FILE, ~/.config/pesc/token)");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA that signed the coordinator's certificate; set: TLS (default $PESC_TLS_CA)");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate for a coordinator that asks for one (with --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "PEM key of --tls-cert");
ABSL_FLAG(std::vector<std::string>, host, {}, "certs init: NAME,... host names or addresses of the coordinator");

namespace {

constexpr const char* kUsage = R"(pesc: run a program as many ranks on a farm and get every output back in rank order.

  pesc run [--domain D] --repetitions N PROCESS [--entry FILE] [--out DIR] [--detach]
           [--max-attempts N] [--timeout SECONDS] [--checkpoint-interval SECONDS]
           [--room ROOM,...] [--same-machine] [--shared FILE|URL,...] [--network] [--parallel] [--no-duplicates]
           [--memory SIZE] [--cpu-time SECONDS] [--open-files N] [--processes N] [--output-size SIZE]
           [--gpus N] [--min-capability X]
           [-- PARAMETERS...]
  pesc status JOB | pesc wait JOB | pesc cancel JOB | pesc results JOB --out DIR | pesc delete JOB
  pesc report JOB [--svg FILE]   wall time, speedup, where the time went, per-worker table, timeline
  pesc jobs | pesc workers
  pesc user add NAME | pesc user revoke NAME | pesc user list | pesc worker-token [NAME]   (admin)
  pesc room restrict ROOM USER,... | pesc room open ROOM   (admin) | pesc whoami
  pesc certs init DIR [--host NAME,...]   a CA and certificates for a lab's TLS
  A coordinator wants a token: --token-file FILE, PESC_TOKEN, or ~/.config/pesc/token; with TLS --tls-ca FILE.

Without --coordinator or PESC_COORDINATOR, `pesc run` starts an embedded local farm.)";

int64_t size_flag(const std::string& text) { return text.empty() ? 0 : pesc::parse_size(text); }

int usage_error(const std::string& message) {
  std::cerr << "pesc: " << message << "\n\n" << kUsage << "\n";
  return pesc::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  pesc::handle_termination_signals();
  // Everything after "--" is a rank parameter, passed on byte for byte, even
  // when it looks like a flag.
  std::vector<std::string> storage;
  std::vector<char*> flag_args = pesc::with_flag_names_normalized(argc, argv, storage, {"shared", "room"});
  std::vector<std::string> parameters;
  if (auto separator = std::find_if(flag_args.begin(), flag_args.end(),
                                    [](const char* arg) { return std::string(arg) == "--"; });
      separator != flag_args.end()) {
    parameters.assign(separator + 1, flag_args.end());
    flag_args.erase(separator, flag_args.end());
  }
  pesc::set_usage("pesc", kUsage);
  std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(flag_args.size()), flag_args.data());
  if (positional.size() < 2) return usage_error("say what to do");
  const std::string command = positional[1];
  const std::vector<std::string> operands(positional.begin() + 2, positional.end());

  pesc::cli::Target target{absl::GetFlag(FLAGS_coordinator), absl::GetFlag(FLAGS_state_dir),
                           absl::GetFlag(FLAGS_slots),       absl::GetFlag(FLAGS_token_file),
                           absl::GetFlag(FLAGS_tls_ca),      absl::GetFlag(FLAGS_tls_cert),
                           absl::GetFlag(FLAGS_tls_key)};
  if (command == "run") {
    if (operands.size() != 1) return usage_error("run takes one process (a file, directory or archive)");
    pesc::cli::RunArguments run;
    run.process = operands[0];
    run.domain = absl::GetFlag(FLAGS_domain);
    run.repetitions = absl::GetFlag(FLAGS_repetitions);
    run.parameters = std::move(parameters);
    run.entry = absl::GetFlag(FLAGS_entry);
    run.name = absl::GetFlag(FLAGS_name);
    run.out_dir = absl::GetFlag(FLAGS_out);
    run.detach = absl::GetFlag(FLAGS_detach);
    run.max_attempts = absl::GetFlag(FLAGS_max_attempts);
    run.timeout_seconds = absl::GetFlag(FLAGS_timeout);
    try {
      run.limits = {.memory_bytes = size_flag(absl::GetFlag(FLAGS_memory)),
                    .cpu_time = std::chrono::milliseconds(std::llround(absl::GetFlag(FLAGS_cpu_time) * 1000)),
                    .open_files = absl::GetFlag(FLAGS_open_files),
                    .processes = absl::GetFlag(FLAGS_processes),
                    .output_bytes = size_flag(absl::GetFlag(FLAGS_output_size))};
    } catch (const pesc::Error& error) {
      return usage_error(error.what());
    }
    run.network = absl::GetFlag(FLAGS_network);
    run.gpus = absl::GetFlag(FLAGS_gpus);
    run.min_capability = absl::GetFlag(FLAGS_min_capability);
    run.checkpoint_interval_seconds = absl::GetFlag(FLAGS_checkpoint_interval);
    run.rooms = absl::GetFlag(FLAGS_room);
    run.same_machine = absl::GetFlag(FLAGS_same_machine);
    run.parallel = absl::GetFlag(FLAGS_parallel);
    run.no_duplicates = absl::GetFlag(FLAGS_no_duplicates);
    run.shared = absl::GetFlag(FLAGS_shared);
    return pesc::cli::run(target, run);
  }
  if (command == "user") return pesc::cli::user(target, operands);
  if (command == "worker-token") return pesc::cli::worker_token(target, operands);
  if (command == "room") return pesc::cli::room(target, operands);
  if (command == "whoami") return pesc::cli::whoami(target);
  if (command == "certs") return pesc::cli::certs(operands, absl::GetFlag(FLAGS_host));
  if (command == "jobs") return pesc::cli::jobs(target);
  if (command == "workers") return pesc::cli::workers(target);
  if (command == "status" || command == "wait" || command == "cancel" || command == "results" ||
      command == "delete" || command == "report") {
    if (operands.size() != 1) return usage_error(command + " takes one job id");
    if (command == "status") return pesc::cli::status(target, operands[0]);
    if (command == "wait") return pesc::cli::wait(target, operands[0]);
    if (command == "cancel") return pesc::cli::cancel(target, operands[0]);
    if (command == "delete") return pesc::cli::remove(target, operands[0]);
    if (command == "report") return pesc::cli::report(target, operands[0], absl::GetFlag(FLAGS_svg));
    return pesc::cli::results(target, operands[0], absl::GetFlag(FLAGS_out));
  }
  return usage_error("unknown command \"" + command + "\"");
}
