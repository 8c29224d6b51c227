#ifndef PESC_BENCHMARKS_COORDINATOR_PROCESS_H_
#define PESC_BENCHMARKS_COORDINATOR_PROCESS_H_

// A real pesc-coordinator for the load benchmarks: started on loopback in a
// state dir of theirs, measured from /proc, stopped with SIGTERM.

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace pesc::bench {

class CoordinatorProcess {
 public:
  // Started with `extra` flags; nullopt when it could not be.
  static std::optional<CoordinatorProcess> start(const std::filesystem::path& state_dir,
                                                 std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {PESC_COORDINATOR_PATH, "--listen", "127.0.0.1:0", "--state-dir",
                                     state_dir.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    CoordinatorProcess coordinator;
    if (posix_spawn(&coordinator.pid_, args[0].c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      return std::nullopt;
    }
    while (!std::filesystem::exists(state_dir / "coordinator.address")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::ifstream(state_dir / "coordinator.address") >> coordinator.address_;
    std::ifstream(state_dir / "admin.token") >> coordinator.admin_token_;  // written before the address
    return coordinator;
  }

  const std::string& address() const { return address_; }
  const std::string& admin_token() const { return admin_token_; }

  // Its CPU time so far (user + system), in seconds.
  double cpu_seconds() const {
    std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    std::string rest = text.substr(text.rfind(')') + 2);
    long user = 0, system = 0;
    std::sscanf(rest.c_str(), "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &user, &system);
    return static_cast<double>(user + system) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }

  // Its CPU use over the next `seconds`, in percent of one core.
  double cpu_percent_over(int seconds) const {
    const double before = cpu_seconds();
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    return 100.0 * (cpu_seconds() - before) / seconds;
  }

  long rss_mb() const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6)) / 1024;
    }
    return 0;
  }

  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

 private:
  pid_t pid_ = 0;
  std::string address_;
  std::string admin_token_;
};

}  // namespace pesc::bench

#endif  // PESC_BENCHMARKS_COORDINATOR_PROCESS_H_
