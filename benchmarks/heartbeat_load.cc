// What many idle workers cost a coordinator: N worker agents (real
// WorkerAgent code, each with its own TCP connection and heartbeats) join a
// real pesc-coordinator on loopback; the coordinator's CPU and memory are
// sampled from /proc while they idle, then one job of N ranks runs across
// them.
//
//   heartbeat_load [WORKERS=200] [SECONDS=20]
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/files.h"
#include "pesc/pesc.h"
#include "transport/transport.h"
#include "worker/worker_agent.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;

long cpu_ticks(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::string rest = text.substr(text.rfind(')') + 2);
  long user = 0, system = 0;
  std::sscanf(rest.c_str(), "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &user, &system);
  return user + system;
}

long rss_kb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int workers = argc > 1 ? std::atoi(argv[1]) : 200;
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 20;
  auto scratch = pesc::TempDirectory::create("pesc-heartbeat-");
  if (!scratch.ok()) return 1;
  const fs::path state = scratch->path() / "state";
  std::vector<std::string> args = {PESC_COORDINATOR_PATH, "--listen", "127.0.0.1:0", "--state-dir", state.string(),
                                   "--worker-lease-ms", "2000"};
  std::vector<char*> argv_c;
  for (std::string& arg : args) argv_c.push_back(arg.data());
  argv_c.push_back(nullptr);
  pid_t coordinator = 0;
  if (posix_spawn(&coordinator, args[0].c_str(), nullptr, nullptr, argv_c.data(), environ) != 0) return 1;
  while (!fs::exists(state / "coordinator.address")) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::string address;
  std::ifstream(state / "coordinator.address") >> address;
  std::string admin_token;  // the coordinator writes it before its address
  std::ifstream(state / "admin.token") >> admin_token;

  std::vector<std::unique_ptr<pesc::WorkerAgent>> agents;
  for (int i = 0; i < workers; ++i) {
    pesc::WorkerOptions options;
    options.slots = 1;
    options.work_dir = scratch->path() / ("w" + std::to_string(i));
    options.worker_id = "sim" + std::to_string(i);
    auto agent = pesc::WorkerAgent::start(options, pesc::open_channel(address, {.token = admin_token}));
    if (!agent.ok()) return 1;
    agents.push_back(*std::move(agent));
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));  // all registered
  const long hz = sysconf(_SC_CLK_TCK);
  const long before = cpu_ticks(coordinator);
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const long used = cpu_ticks(coordinator) - before;
  std::printf("%d idle workers, heartbeat every 500 ms: coordinator CPU %.2f%% of one core, RSS %ld MB\n", workers,
              100.0 * static_cast<double>(used) / static_cast<double>(hz) / seconds, rss_kb(coordinator) / 1024);

  pesc::Farm farm("native", {.coordinator = address, .token = admin_token});
  const auto started = std::chrono::steady_clock::now();
  pesc::Results results = farm.map("/bin/true", workers).wait();
  std::printf("one job of %d ranks over them: %.2f s, %zu failed; coordinator RSS %ld MB\n", workers,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
              results.failed_ranks().size(), rss_kb(coordinator) / 1024);
  agents.clear();
  kill(coordinator, SIGTERM);
  waitpid(coordinator, nullptr, 0);
  return 0;
}
