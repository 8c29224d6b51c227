// What clients waiting on jobs cost a coordinator: N clients (each its own
// pesc::Farm, connection and WatchJob stream) wait on jobs that cannot run
// yet (no worker joins), against a real pesc-coordinator on loopback. Its CPU
// is sampled from /proc first with no one watching, then with every client
// watching, over the same span.
//
//   watch_load [CLIENTS=50] [SECONDS=10]
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "coordinator_process.h"
#include "common/files.h"
#include "pesc/pesc.h"

int main(int argc, char** argv) {
  const int clients = argc > 1 ? std::atoi(argv[1]) : 50;
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 10;
  auto scratch = pesc::TempDirectory::create("pesc-watch-");
  if (!scratch.ok()) return 1;
  auto coordinator = pesc::bench::CoordinatorProcess::start(scratch->path() / "state");
  if (!coordinator) return 1;
  const pesc::FarmOptions options{.coordinator = coordinator->address(), .token = coordinator->admin_token()};

  const double idle = coordinator->cpu_percent_over(seconds);
  std::vector<std::unique_ptr<pesc::Farm>> farms;
  std::vector<pesc::Job> jobs;
  for (int i = 0; i < clients; ++i) {
    farms.push_back(std::make_unique<pesc::Farm>("native", options));
    jobs.push_back(farms.back()->map("/bin/true", 1));
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));  // past the jobs' first progress events
  const double watched = coordinator->cpu_percent_over(seconds);
  std::printf("coordinator CPU, %% of one core over %d s: %.2f with no client, %.2f with %d clients watching "
              "waiting jobs; RSS %ld MB\n",
              seconds, idle, watched, clients, coordinator->rss_mb());
  for (pesc::Job& job : jobs) job.cancel();
  jobs.clear();
  farms.clear();
  coordinator->stop();
  return 0;
}
