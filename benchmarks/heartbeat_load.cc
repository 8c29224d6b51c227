// What many idle workers cost a coordinator: N worker agents (real
// WorkerAgent code, each with its own TCP connection and heartbeats) join a
// real pesc-coordinator on loopback; the coordinator's CPU and memory are
// sampled from /proc while they idle, then one job of N ranks runs across
// them. Every worker fetches the job's process from the coordinator itself,
// as N machines would; their work dirs are on a tmpfs where there is one
// (see workers_scratch()). The agents live in host processes of at most
// AGENTS_PER_PROCESS each: N machines share no descriptor table (which every
// rank's spawn copies) and no gRPC internals.
//
//   heartbeat_load [WORKERS=200] [SECONDS=20] [LEASE_MS=10000] [AGENTS_PER_PROCESS=125]
//
// Workers tick every min(1 s, lease / 4) but, idle and with nothing new to
// say, beat only every min(3 s, lease / 3) (a keep-alive) rounded to a
// tick: every 3 s at the coordinator's default 10 s lease, measured by
// default; at every 500 ms tick at a 2 s lease.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/files.h"
#include "coordinator_process.h"
#include "pesc/pesc.h"
#include "transport/transport.h"
#include "worker/worker_agent.h"

namespace {

// CPU time so far of this process (RUSAGE_SELF) or of its ended children
// (RUSAGE_CHILDREN: a host's ranks).
double cpu_seconds(int who) {
  rusage usage{};
  getrusage(who, &usage);
  auto seconds = [](const timeval& time) {
    return static_cast<double>(time.tv_sec) + 1e-6 * static_cast<double>(time.tv_usec);
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Where the simulated workers keep their work dirs: on a tmpfs when this
// machine has one. Each stands for a machine with a disk of its own; a
// thousand of them creating and removing files on one shared disk measure
// that disk's inode allocator (ext4 searching its bitmaps past recently
// freed inodes), not pesc. The coordinator's state stays on the disk.
absl::StatusOr<pesc::TempDirectory> workers_scratch() {
  std::error_code error;
  if (std::filesystem::is_directory("/dev/shm", error)) {
    auto on_tmpfs = pesc::TempDirectory::create("/dev/shm/pesc-heartbeat-workers-");
    if (on_tmpfs.ok()) return on_tmpfs;
  }
  return pesc::TempDirectory::create("pesc-heartbeat-workers-");
}

// A process that runs some of the simulated workers' agents, told what to
// do over a pipe: it answers 'c' with its CPU so far, and ends at 'q'. (Not
// at EOF: the hosts forked after it hold its pipe's write end too.)
class AgentHost {
 public:
  struct Cpu {
    double agents = 0;  // the host process itself
    double ranks = 0;   // its ended children
  };

  // Forked before this process uses gRPC: a fork of its threads would not run.
  static std::optional<AgentHost> start(const std::string& address, const std::string& token,
                                        const std::filesystem::path& work_dirs, int first, int count) {
    int commands[2];
    int answers[2];
    if (pipe(commands) != 0 || pipe(answers) != 0) return std::nullopt;
    const pid_t pid = fork();
    if (pid < 0) return std::nullopt;
    if (pid == 0) {
      close(commands[1]);
      close(answers[0]);
      _exit(serve(address, token, work_dirs, first, count, commands[0], answers[1]));
    }
    close(commands[0]);
    close(answers[1]);
    AgentHost host;
    host.pid_ = pid;
    host.commands_ = commands[1];
    host.answers_ = fdopen(answers[0], "r");
    return host;
  }

  // Blocks until every agent of the host started; nullopt if one did not.
  std::optional<Cpu> cpu() const {
    if (write(commands_, "c", 1) != 1) return std::nullopt;
    Cpu cpu;
    if (std::fscanf(answers_, "%lf %lf", &cpu.agents, &cpu.ranks) != 2) return std::nullopt;
    return cpu;
  }

  // Stops the host's agents; whether it ended well.
  bool stop() const {
    const bool told = write(commands_, "q", 1) == 1;
    close(commands_);
    fclose(answers_);
    int status = 0;
    return told && waitpid(pid_, &status, 0) == pid_ && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

 private:
  static int serve(const std::string& address, const std::string& token, const std::filesystem::path& work_dirs,
                   int first, int count, int commands, int answers) {
    std::vector<std::unique_ptr<pesc::WorkerAgent>> agents;
    for (int i = first; i < first + count; ++i) {
      pesc::WorkerOptions options;
      options.slots = 1;
      options.work_dir = work_dirs / ("w" + std::to_string(i));
      options.worker_id = "sim" + std::to_string(i);
      auto agent = pesc::WorkerAgent::start(options, pesc::open_channel(address, {.token = token}));
      if (!agent.ok()) {
        std::fprintf(stderr, "worker %d: %s\n", i, agent.status().ToString().c_str());
        return 1;
      }
      agents.push_back(*std::move(agent));
    }
    for (char command = 0; read(commands, &command, 1) == 1 && command == 'c';) {
      const std::string cpu = absl::StrFormat("%.3f %.3f\n", cpu_seconds(RUSAGE_SELF), cpu_seconds(RUSAGE_CHILDREN));
      if (write(answers, cpu.data(), cpu.size()) != static_cast<ssize_t>(cpu.size())) return 1;
    }
    return 0;
  }

  pid_t pid_ = 0;
  int commands_ = -1;
  FILE* answers_ = nullptr;
};

// The CPU of all hosts together.
std::optional<AgentHost::Cpu> cpu_of(const std::vector<AgentHost>& hosts) {
  AgentHost::Cpu total;
  for (const AgentHost& host : hosts) {
    std::optional<AgentHost::Cpu> cpu = host.cpu();
    if (!cpu) return std::nullopt;
    total.agents += cpu->agents;
    total.ranks += cpu->ranks;
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  const int workers = argc > 1 ? std::atoi(argv[1]) : 200;
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 20;
  const int lease_ms = argc > 3 ? std::atoi(argv[3]) : 10000;
  const int agents_per_process = std::max(1, argc > 4 ? std::atoi(argv[4]) : 125);
  const int keepalive_ms = std::min(3000, lease_ms / 3);
  // As in pesc-worker, which these workers stand for: Debian's abseil
  // would otherwise check the order of every lock they take.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  auto scratch = pesc::TempDirectory::create("pesc-heartbeat-");
  if (!scratch.ok()) return 1;
  auto worker_scratch = workers_scratch();
  if (!worker_scratch.ok()) return 1;
  auto coordinator = pesc::bench::CoordinatorProcess::start(scratch->path() / "state", {"--worker-lease-ms", std::to_string(lease_ms)});
  if (!coordinator) return 1;

  std::vector<AgentHost> hosts;
  for (int first = 0; first < workers; first += agents_per_process) {
    auto host = AgentHost::start(coordinator->address(), coordinator->admin_token(), worker_scratch->path(), first,
                                 std::min(agents_per_process, workers - first));
    if (!host) return 1;
    hosts.push_back(*host);
  }
  auto stop_all = [&] {
    bool stopped = true;
    for (const AgentHost& host : hosts) stopped = host.stop() && stopped;
    coordinator->stop();
    return stopped ? 0 : 1;
  };
  auto give_up = [&] {
    stop_all();
    return 1;
  };
  if (!cpu_of(hosts)) return give_up();  // every agent started
  std::this_thread::sleep_for(std::chrono::seconds(3));  // all registered
  const std::optional<AgentHost::Cpu> before_idle = cpu_of(hosts);
  const double idle = coordinator->cpu_percent_over(seconds);
  const std::optional<AgentHost::Cpu> after_idle = cpu_of(hosts);
  if (!before_idle || !after_idle) return give_up();
  std::printf("%d idle workers in %zu processes (work dirs in %s), keep-alive every %d ms: coordinator CPU %.2f%% of "
              "one core, RSS %ld MB; the workers' processes %.1f%%\n",
              workers, hosts.size(), worker_scratch->path().parent_path().c_str(), keepalive_ms, idle,
              coordinator->rss_mb(), 100.0 * (after_idle->agents - before_idle->agents) / seconds);

  pesc::Farm farm("native", {.coordinator = coordinator->address(), .token = coordinator->admin_token()});
  // The first job also has every worker fetch and unpack the process; the
  // second finds it in their caches. The ranks run for real, here: what N
  // machines would do at once, this one does on its own cores, so their CPU
  // (a dynamically linked /bin/true costs about a millisecond of it on a
  // virtual machine) is shown apart.
  for (const char* which : {"one job", "another (process cached)"}) {
    const auto started = std::chrono::steady_clock::now();
    const double coordinator_cpu = coordinator->cpu_seconds();
    const double client_cpu = cpu_seconds(RUSAGE_SELF);
    const std::optional<AgentHost::Cpu> before = cpu_of(hosts);
    pesc::Results results = farm.map("/bin/true", workers).wait();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const std::optional<AgentHost::Cpu> after = cpu_of(hosts);
    if (!before || !after) return give_up();
    std::set<std::string> ran_on;
    for (const pesc::RankResult& rank : results) ran_on.insert(rank.worker);
    std::printf(
        "%s of %d ranks over them: %.2f s on %zu workers, %zu failed; CPU meanwhile: coordinator %.2f s, the workers' "
        "processes %.2f s, the ranks %.2f s, the client %.2f s; coordinator RSS %ld MB\n",
        which, workers, wall, ran_on.size(), results.failed_ranks().size(), coordinator->cpu_seconds() - coordinator_cpu,
        after->agents - before->agents, after->ranks - before->ranks, cpu_seconds(RUSAGE_SELF) - client_cpu,
        coordinator->rss_mb());
  }
  return stop_all();
}
