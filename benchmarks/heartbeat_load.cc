// What many idle workers cost a coordinator: N worker agents (real
// WorkerAgent code, each with its own TCP connection and heartbeats) join a
// real pesc-coordinator on loopback; the coordinator's CPU and memory are
// sampled from /proc while they idle, then one job of N ranks runs across
// them. Every worker fetches the job's process from the coordinator itself,
// as N machines would; their work dirs are on a tmpfs where there is one
// (see workers_scratch()).
//
//   heartbeat_load [WORKERS=200] [SECONDS=20] [LEASE_MS=10000]
//
// Workers tick every min(1 s, lease / 4) but, idle and with nothing new to
// say, beat only every min(3 s, lease / 3) (a keep-alive) rounded to a
// tick: every 3 s at the coordinator's default 10 s lease, measured by
// default; at every 500 ms tick at a 2 s lease.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/files.h"
#include "coordinator_process.h"
#include "pesc/pesc.h"
#include "transport/transport.h"
#include "worker/worker_agent.h"

namespace {

// CPU time so far of this process (RUSAGE_SELF: the simulated workers' and
// the client's) or of its ended children (RUSAGE_CHILDREN: the ranks).
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

}  // namespace

int main(int argc, char** argv) {
  const int workers = argc > 1 ? std::atoi(argv[1]) : 200;
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 20;
  const int lease_ms = argc > 3 ? std::atoi(argv[3]) : 10000;
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

  std::vector<std::unique_ptr<pesc::WorkerAgent>> agents;
  for (int i = 0; i < workers; ++i) {
    pesc::WorkerOptions options;
    options.slots = 1;
    options.work_dir = worker_scratch->path() / ("w" + std::to_string(i));
    options.worker_id = "sim" + std::to_string(i);
    auto agent =
        pesc::WorkerAgent::start(options, pesc::open_channel(coordinator->address(), {.token = coordinator->admin_token()}));
    if (!agent.ok()) return 1;
    agents.push_back(*std::move(agent));
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));  // all registered
  const double workers_idle_cpu = cpu_seconds(RUSAGE_SELF);
  const double idle = coordinator->cpu_percent_over(seconds);
  const double workers_idle = 100.0 * (cpu_seconds(RUSAGE_SELF) - workers_idle_cpu) / seconds;
  std::printf("%d idle workers (work dirs in %s), keep-alive every %d ms: coordinator CPU %.2f%% of one core, "
              "RSS %ld MB; the workers' process %.1f%%\n",
              workers, worker_scratch->path().parent_path().c_str(), keepalive_ms, idle, coordinator->rss_mb(),
              workers_idle);

  pesc::Farm farm("native", {.coordinator = coordinator->address(), .token = coordinator->admin_token()});
  // The first job also has every worker fetch and unpack the process; the
  // second finds it in their caches. The ranks run for real, here: what N
  // machines would do at once, this one does on its own cores, so their CPU
  // (a dynamically linked /bin/true costs about a millisecond of it on a
  // virtual machine) is shown apart.
  for (const char* which : {"one job", "another (process cached)"}) {
    const auto started = std::chrono::steady_clock::now();
    const double coordinator_cpu = coordinator->cpu_seconds();
    const double own_cpu = cpu_seconds(RUSAGE_SELF);
    const double ranks_cpu = cpu_seconds(RUSAGE_CHILDREN);
    pesc::Results results = farm.map("/bin/true", workers).wait();
    std::set<std::string> ran_on;
    for (const pesc::RankResult& rank : results) ran_on.insert(rank.worker);
    std::printf(
        "%s of %d ranks over them: %.2f s on %zu workers, %zu failed; CPU meanwhile: coordinator %.2f s, the workers' "
        "process %.2f s, the ranks %.2f s; coordinator RSS %ld MB\n",
        which, workers, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
        ran_on.size(), results.failed_ranks().size(), coordinator->cpu_seconds() - coordinator_cpu, cpu_seconds(RUSAGE_SELF) - own_cpu,
        cpu_seconds(RUSAGE_CHILDREN) - ranks_cpu, coordinator->rss_mb());
  }
  agents.clear();
  coordinator->stop();
  return 0;
}
