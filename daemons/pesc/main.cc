// pesc: the command line. One CLI11 subcommand per command, so the
// definitions that parse are also what `pesc help COMMAND`, `pesc COMMAND
// --help` and the man page show. Flags and dispatch only; the work is in libpesc.
#include <chrono>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "admin_commands.h"
#include "commands.h"
#include "daemon_support.h"
#include "pesc/pesc.h"

namespace {

using pesc::cli::RunArguments;
using pesc::cli::Target;

// What the command line said, filled in by CLI11 as it parses.
struct CommandLine {
  Target target;
  RunArguments run;
  // Options as typed (sizes like 512M, seconds as decimals), for run.options.
  std::string memory;
  std::string output_size;
  double cpu_time_seconds = 0;
  double timeout_seconds = 0;
  double checkpoint_interval_seconds = 0;
  std::string job_id;
  std::string out_dir;
  std::string svg_file;
  std::vector<std::string> operands;  // the words after user, room, certs, worker-token
  std::vector<std::string> hosts;
  std::string help_topic;
  pesc::cli::PoolArguments pool;
  std::string ranks;  // retry --ranks
  int rank = 0;       // logs RANK
  bool follow = false;
};

constexpr const char* kDescription =
    "pesc: run a program as many ranks on a farm and get every output back in rank order.";

constexpr const char* kFooter = R"(Without --coordinator or PESC_COORDINATOR, `pesc run` starts an embedded local farm.
A coordinator wants a token: --token-file FILE, PESC_TOKEN, PESC_TOKEN_FILE or ~/.config/pesc/token;
with TLS also --tls-ca FILE (or PESC_TLS_CA).
Exit status: 0 every rank succeeded, 1 a rank failed, 2 the command line or the job is wrong,
3 the farm failed (coordinator unreachable, refused), 130 interrupted.
`pesc help COMMAND` or `pesc COMMAND --help` describes one command and its flags.)";

void add_connection_options(CLI::App& command, Target& target) {
  constexpr const char* kGroup = "connection/security";
  command.add_option("--coordinator", target.coordinator,
                     "HOST:PORT of a pesc-coordinator (default: $PESC_COORDINATOR, else an embedded local farm "
                     "for `run`)")
      ->type_name("HOST:PORT")->group(kGroup);
  command.add_option("--token-file", target.token_file,
                     "file holding your token (default: $PESC_TOKEN, $PESC_TOKEN_FILE, ~/.config/pesc/token)")
      ->type_name("FILE")->group(kGroup);
  pesc::add_tls_client_options(command, target.tls_ca, target.tls_cert, target.tls_key, kGroup);
}

void add_embedded_farm_options(CLI::App& command, Target& target) {
  constexpr const char* kGroup = "embedded farm (run without a coordinator)";
  command.add_option("--slots", target.slots, "ranks run side by side (default: one per core)")
      ->type_name("N")->group(kGroup);
  command.add_option("--state-dir", target.state_dir, "keep its state here (default: a temporary directory)")
      ->type_name("DIR")->group(kGroup);
}

void add_run(CLI::App& app, CommandLine& line) {
  CLI::App& run = *app.add_subcommand("run", "run PROCESS as ranks and print their output in rank order");
  run.footer(
      "With rank parameters: pesc run [OPTIONS] PROCESS -- PARAMETERS...\n"
      "PROCESS is a file, a directory or an archive. Everything after -- is given to every rank as its\n"
      "parameters, byte for byte, even when it looks like a flag. Sizes take K, M, G (powers of 1024).");
  RunArguments& arguments = line.run;
  pesc::MapOptions& options = arguments.options;
  run.add_option("PROCESS", arguments.process, "the program: a file, a directory or an archive")->required();

  constexpr const char* kWhat = "what to run";
  run.add_option("--repetitions", arguments.repetitions, "how many ranks to run")->type_name("N")->group(kWhat);
  run.add_option("--domain", arguments.domain,
                 "native, python, R, shell, java, or a command template with {entry} (default: from the "
                 "process file's name)")
      ->type_name("D")->group(kWhat);
  run.add_option("--entry", options.entry, "the file to run inside a directory or archive process")
      ->type_name("FILE")->group(kWhat);
  run.add_option("--name", options.name, "a label for the job, shown by `pesc jobs`")
      ->type_name("NAME")->group(kWhat);
  pesc::add_list_option(run, "--shared", options.shared,
                        "read-only inputs every rank finds in its app_dir by name; repeatable")
      ->type_name("FILE|URL,...")->group(kWhat);

  constexpr const char* kResults = "results";
  run.add_option("--out", arguments.out_dir,
                 "save every rank's output_dir and the joined output.txt under this directory")
      ->type_name("DIR")->group(kResults);
  run.add_flag("--detach", arguments.detach, "print the job id and return at once (needs a coordinator)")
      ->group(kResults);
  pesc::add_list_option(run, "--notify", options.notify,
                        "be told once when the job ends (outcome, wall time, speedup): mailto:ADDR (the "
                        "coordinator needs --smtp-url) or an http(s):// URL that gets a JSON POST; repeatable")
      ->type_name("TARGET,...")->group(kResults);

  constexpr const char* kRetries = "retries and time";
  run.add_option("--max-attempts", options.max_attempts, "attempts for a rank that exits non-zero (1: no retry)")
      ->type_name("N")->group(kRetries);
  run.add_option("--timeout", line.timeout_seconds,
                 "seconds a rank may run before it is killed and reported (0: no limit)")
      ->type_name("SECONDS")->group(kRetries);
  run.add_option("--checkpoint-interval", line.checkpoint_interval_seconds,
                 "seconds between saves of a running rank's checkpoint_dir when it changed (0: only at the end)")
      ->type_name("SECONDS")->group(kRetries);
  run.add_flag("--no-duplicates", options.no_duplicates,
               "never run a straggling rank a second time on an idle worker (for ranks with side effects)")
      ->group(kRetries);
  // Parsed here: CLI11 would take -1 and 2^64 as other seeds.
  run.add_option_function<std::string>(
         "--seed",
         [&options](const std::string& text) {
           uint64_t seed = 0;
           if (!absl::SimpleAtoi(text, &seed) || text.starts_with('-')) {
             throw CLI::ValidationError("--seed", "takes a whole number from 0 to 18446744073709551615, not " + text);
           }
           options.seed = seed;
         },
         "every rank gets it as PESC_SEED, to derive its own random stream from it and its rank (default: none)")
      ->type_name("N")->group(kRetries);

  constexpr const char* kLimits = "limits per rank";
  run.add_option("--memory", line.memory, "memory its processes may hold together, e.g. 512M (default: no limit)")
      ->type_name("SIZE")->group(kLimits);
  run.add_option("--cpu-time", line.cpu_time_seconds, "CPU seconds each of its processes may use (0: no limit)")
      ->type_name("SECONDS")->group(kLimits);
  run.add_option("--open-files", options.limits.open_files,
                 "descriptors each of its processes may hold open (0: no limit)")
      ->type_name("N")->group(kLimits);
  run.add_option("--processes", options.limits.processes, "processes and threads it may have at once (0: no limit)")
      ->type_name("N")->group(kLimits);
  run.add_option("--output-size", line.output_size, "bytes it may leave in output_dir, e.g. 100M (default: no limit)")
      ->type_name("SIZE")->group(kLimits);
  run.add_flag("--network", options.network,
               "it may use the network (workers that sandbox ranks give them none otherwise)")
      ->group(kLimits);

  constexpr const char* kWhere = "where ranks run";
  pesc::add_list_option(run, "--room", options.rooms,
                        "rooms whose workers may run the ranks; repeatable (default: public)")
      ->type_name("ROOM,...")->group(kWhere);
  run.add_flag("--same-machine", options.same_machine, "run every rank on one worker")->group(kWhere);
  run.add_flag("--parallel", options.parallel,
               "a gang: all ranks run at once, started together, told rank 0's address and port "
               "(--master_addr/port)")
      ->group(kWhere);
  run.add_option("--gpus", options.gpus, "NVIDIA GPUs each rank needs to itself (it sees them as "
                                           "CUDA_VISIBLE_DEVICES)")
      ->type_name("N")->group(kWhere);
  run.add_option("--min-capability", options.min_capability,
                 "the least compute capability of those GPUs, e.g. 7.5 (0: any)")
      ->type_name("X")->group(kWhere);

  add_embedded_farm_options(run, line.target);
  add_connection_options(run, line.target);
}

CLI::App& add_job_command(CLI::App& app, CommandLine& line, const std::string& name, const std::string& description) {
  CLI::App& command = *app.add_subcommand(name, description);
  command.add_option("JOB", line.job_id, "the job id `pesc run --detach` printed or `pesc jobs` lists")->required();
  add_connection_options(command, line.target);
  return command;
}

CLI::App& add_command(CLI::App& app, CommandLine& line, const std::string& name, const std::string& description) {
  CLI::App& command = *app.add_subcommand(name, description);
  add_connection_options(command, line.target);
  return command;
}

void add_commands(CLI::App& app, CommandLine& line) {
  add_run(app, line);
  add_job_command(app, line, "status", "a job's state and its ranks' counts");
  add_job_command(app, line, "wait", "wait for a job, then print its output in rank order");
  add_job_command(app, line, "cancel", "cancel a job's ranks that have not finished");
  add_job_command(app, line, "results", "save a finished job's outputs under --out DIR")
      .add_option("--out", line.out_dir, "where rank_N/ and the joined output.txt go (required)")
      ->type_name("DIR");
  add_job_command(app, line, "delete", "delete a job and its stored outputs");
  add_job_command(app, line, "report",
                  "wall time, speedup, where the time went, a per-worker table and a timeline")
      .add_option("--svg", line.svg_file, "also write the job's timeline (one row per worker slot) as SVG here")
      ->type_name("FILE");
  add_command(app, line, "jobs", "your jobs, newest first");
  add_command(app, line, "workers", "the workers, their slots, rooms, GPUs and state");
  add_command(app, line, "whoami", "who your token says you are");
  add_command(app, line, "user", "admin: issue, revoke or list user tokens")
      .add_option("ACTION", line.operands, "add NAME | revoke NAME | list")
      ->required();
  add_command(app, line, "worker-token", "admin: print a join token for workers (one per lab or desktop)")
      .add_option("NAME", line.operands, "a name for the token (default: a generated one)");
  add_command(app, line, "room", "admin: who may submit to a room")
      .add_option("ACTION", line.operands, "restrict ROOM USER,... | open ROOM")
      ->required();
  CLI::App& pool =
      add_command(app, line, "pool", "admin: pilot workers submitted to a batch system (Slurm, or another by --template)");
  pool.add_option("ACTION", line.operands, "add NAME | list | remove NAME | resume NAME")->required();
  constexpr const char* kPool = "pool add";
  pool.add_flag("--slurm", line.pool.slurm, "submit pilots to Slurm (sbatch, squeue, scancel)")->group(kPool);
  pool.add_option("--template", line.pool.template_file,
                  "submit pilots to another batch system, as this template file describes it (README: Pools; "
                  "examples in share/pesc/batch)")
      ->type_name("FILE")->group(kPool);
  pool.add_option("--partition", line.pool.partition, "the partition (default: the batch system's default)")
      ->type_name("P")->group(kPool);
  pool.add_option("--time-limit", line.pool.time_limit, "each pilot's walltime")
      ->type_name("DURATION")->capture_default_str()->group(kPool);
  pool.add_option("--max-workers", line.pool.max_workers, "pilots alive at once")
      ->type_name("N")->capture_default_str()->group(kPool);
  pool.add_option("--slots-per-worker", line.pool.slots_per_worker,
                  "ranks each pilot runs side by side (CPUs it asks for)")
      ->type_name("S")->capture_default_str()->group(kPool);
  pool.add_option("--idle-timeout", line.pool.idle_timeout, "a pilot idle this long leaves")
      ->type_name("DURATION")->capture_default_str()->group(kPool);
  pool.add_option("--worker-arg", line.pool.worker_args, "an argument for the pilots' pesc-worker; repeatable")
      ->type_name("ARG")->group(kPool);
  pool.footer("Arguments after -- go to the submit command (sbatch), e.g. "
              "`pesc pool add cluster --slurm -- --account=lab42`.");
  CLI::App& certs = *app.add_subcommand("certs", "make a CA and certificates for a lab's TLS");
  certs.add_option("ACTION", line.operands, "init DIR")->required();
  pesc::add_list_option(certs, "--host", line.hosts, "host names or addresses of the coordinator (default: this host)")
      ->type_name("NAME,...");
  app.add_subcommand("help", "describe pesc, or one command and its flags")
      ->add_option("COMMAND", line.help_topic, "the command to describe");
  add_job_command(app, line, "retry", "run a finished job's failed ranks again, then wait for it as `wait` does")
      .add_option("--ranks", line.ranks,
                  "the ranks to run again, e.g. 3,7-9 (default: every rank that did not succeed; a succeeded "
                  "rank named runs again)")
      ->type_name("LIST");
  CLI::App& logs = add_job_command(app, line, "logs", "print a rank's output.txt so far, or follow it with -f");
  logs.add_option("RANK", line.rank, "the rank")->required();
  logs.add_flag("-f,--follow", line.follow, "print its output as it grows, until the rank ends");
}

int64_t size_flag(const std::string& text) { return text.empty() ? 0 : pesc::parse_size(text); }

std::chrono::milliseconds seconds_flag(double seconds) { return std::chrono::milliseconds(std::llround(seconds * 1000)); }

int run(const CLI::App& app, const CLI::App& command, CommandLine& line, std::vector<std::string> parameters) {
  RunArguments& run = line.run;
  run.parameters = std::move(parameters);
  pesc::MapOptions& options = run.options;
  try {
    options.limits.memory_bytes = size_flag(line.memory);
    options.limits.output_bytes = size_flag(line.output_size);
  } catch (const pesc::Error& error) {
    return pesc::usage_error(app, error.what(), &command);
  }
  options.limits.cpu_time = seconds_flag(line.cpu_time_seconds);
  options.timeout = seconds_flag(line.timeout_seconds);
  options.checkpoint_interval = seconds_flag(line.checkpoint_interval_seconds);
  return pesc::cli::run(line.target, run);
}

int help(const CLI::App& app, const std::string& topic) {
  if (topic.empty()) {
    // Not app.help(): with `help` the command chosen, that would describe `pesc help`.
    std::cout << app.get_formatter()->make_help(&app, app.get_name(), CLI::AppFormatMode::Normal);
    return pesc::cli::kExitOk;
  }
  std::vector<const CLI::App*> found =
      app.get_subcommands([&topic](const CLI::App* command) { return command->get_name() == topic; });
  if (found.empty()) return pesc::usage_error(app, "unknown command \"" + topic + "\"");
  std::cout << found.front()->help(app.get_name());
  return pesc::cli::kExitOk;
}

int dispatch(const CLI::App& app, const CLI::App& command, CommandLine& line, std::vector<std::string> parameters) {
  const std::string& name = command.get_name();
  const Target& target = line.target;
  if (name == "pool") return pesc::cli::pool(target, line.operands, line.pool, parameters);
  if (name != "run" && !parameters.empty()) {
    return pesc::usage_error(app, "only `pesc run` takes parameters after --", &command);
  }
  if (name == "run") return run(app, command, line, std::move(parameters));
  if (name == "help") return help(app, line.help_topic);
  if (name == "status") return pesc::cli::status(target, line.job_id);
  if (name == "wait") return pesc::cli::wait(target, line.job_id);
  if (name == "cancel") return pesc::cli::cancel(target, line.job_id);
  if (name == "delete") return pesc::cli::remove(target, line.job_id);
  if (name == "results") return pesc::cli::results(target, line.job_id, line.out_dir);
  if (name == "report") return pesc::cli::report(target, line.job_id, line.svg_file);
  if (name == "jobs") return pesc::cli::jobs(target);
  if (name == "workers") return pesc::cli::workers(target);
  if (name == "whoami") return pesc::cli::whoami(target);
  if (name == "user") return pesc::cli::user(target, line.operands);
  if (name == "worker-token") return pesc::cli::worker_token(target, line.operands);
  if (name == "room") return pesc::cli::room(target, line.operands);
  if (name == "retry") return pesc::cli::retry(target, line.job_id, line.ranks);
  if (name == "logs") return pesc::cli::logs(target, line.job_id, line.rank, line.follow);
  return pesc::cli::certs(line.operands, line.hosts);
}

}  // namespace

int main(int argc, char** argv) {
  pesc::handle_termination_signals();
  CLI::App app(kDescription);
  pesc::set_up_help(app, "pesc");
  // One command per call; a later word that names a command is an operand.
  app.require_subcommand(0, 1);
  CommandLine line;
  // Before the command too, as in `pesc --coordinator HOST:PORT jobs`.
  add_connection_options(app, line.target);
  add_embedded_farm_options(app, line.target);
  add_commands(app, line);
  app.footer(kFooter);  // after the commands, which would copy it
  for (CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; })) command->group("Commands");
  // The man page shows every command with its flags.
  app.set_help_all_flag("--help-all", "describe every command and its flags");
  if (auto exit_status = pesc::parse_command_line(app, argc, argv)) return *exit_status;
  const std::vector<CLI::App*> selected = app.get_subcommands();
  if (selected.empty()) return pesc::usage_error(app, "say what to do (a command such as run)");
  return dispatch(app, *selected.front(), line, pesc::arguments_after_separator(argc, argv));
}
