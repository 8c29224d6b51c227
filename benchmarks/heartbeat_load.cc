// What many idle workers cost a coordinator: N worker agents (real
// WorkerAgent code, each with its own TCP connection and heartbeats) join a
// real pesc-coordinator on loopback; the coordinator's CPU and memory are
// sampled from /proc while they idle, then one job of N ranks runs across
// them.
//
//   heartbeat_load [WORKERS=200] [SECONDS=20]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/files.h"
#include "coordinator_process.h"
#include "pesc/pesc.h"
#include "transport/transport.h"
#include "worker/worker_agent.h"

int main(int argc, char** argv) {
  const int workers = argc > 1 ? std::atoi(argv[1]) : 200;
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 20;
  auto scratch = pesc::TempDirectory::create("pesc-heartbeat-");
  if (!scratch.ok()) return 1;
  auto coordinator = pesc::bench::CoordinatorProcess::start(scratch->path() / "state", {"--worker-lease-ms", "2000"});
  if (!coordinator) return 1;

  std::vector<std::unique_ptr<pesc::WorkerAgent>> agents;
  for (int i = 0; i < workers; ++i) {
    pesc::WorkerOptions options;
    options.slots = 1;
    options.work_dir = scratch->path() / ("w" + std::to_string(i));
    options.worker_id = "sim" + std::to_string(i);
    auto agent =
        pesc::WorkerAgent::start(options, pesc::open_channel(coordinator->address(), {.token = coordinator->admin_token()}));
    if (!agent.ok()) return 1;
    agents.push_back(*std::move(agent));
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));  // all registered
  const double idle = coordinator->cpu_percent_over(seconds);
  std::printf("%d idle workers, heartbeat every 500 ms: coordinator CPU %.2f%% of one core, RSS %ld MB\n", workers,
              idle, coordinator->rss_mb());

  pesc::Farm farm("native", {.coordinator = coordinator->address(), .token = coordinator->admin_token()});
  const auto started = std::chrono::steady_clock::now();
  pesc::Results results = farm.map("/bin/true", workers).wait();
  std::printf("one job of %d ranks over them: %.2f s, %zu failed; coordinator RSS %ld MB\n", workers,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
              results.failed_ranks().size(), coordinator->rss_mb());
  agents.clear();
  coordinator->stop();
  return 0;
}
