#ifndef PESC_TESTS_FARM_HARNESS_H_
#define PESC_TESTS_FARM_HARNESS_H_

// Real pesc-coordinator and pesc-worker processes on loopback, in a
// temporary directory, for integration tests.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <string>
#include <vector>

namespace pesc::testing {

// A child process with its output in a log file; killed when destroyed.
class Daemon {
 public:
  Daemon(const std::vector<std::string>& argv, const std::filesystem::path& log);
  Daemon(Daemon&& other) noexcept;
  Daemon& operator=(Daemon&& other) noexcept;
  ~Daemon();

  pid_t pid() const { return pid_; }
  void kill(int signal);
  // Waits for the process to end; returns its wait status.
  int wait();
  bool running() const;

 private:
  pid_t pid_ = -1;
};

class TestFarm {
 public:
  // A coordinator on 127.0.0.1 with an ephemeral port and `workers` workers
  // of `slots` slots each, everything under a fresh temporary directory.
  explicit TestFarm(int workers, int slots = 2, std::vector<std::string> coordinator_flags = {});
  ~TestFarm();

  const std::string& address() const { return address_; }
  const std::filesystem::path& dir() const { return dir_; }
  // The token the coordinator made on its first start. The farm also puts
  // it in this process's PESC_TOKEN, so its workers, the commands the test
  // runs and the library's Farm present it without being told.
  const std::string& admin_token() const { return admin_token_; }

  Daemon& coordinator() { return coordinator_.front(); }
  Daemon& worker(size_t index) { return workers_.at(index); }
  // Workers run ranks unsandboxed as themselves, ignoring the host's load
  // and people, unless `extra_flags` say otherwise ("--no-sandbox=false",
  // "--run-as=pesc", "--owners-first"). `launcher` runs the worker (e.g.
  // {"/usr/sbin/ip", "netns", "exec", NAME} puts it in a network namespace);
  // it must exec the worker, so the daemon's pid is the worker's.
  void add_worker(int slots, const std::vector<std::string>& extra_flags = {},
                  const std::vector<std::string>& launcher = {});
  // Starts worker `index` again, with its id and work directory.
  void restart_worker(size_t index);
  // Starts a new coordinator on the same address and state directory.
  void restart_coordinator();

 private:
  void start_coordinator(const std::string& listen);
  std::filesystem::path dir_;
  std::string address_;
  std::string admin_token_;
  std::vector<std::string> coordinator_flags_;
  std::vector<Daemon> coordinator_;
  std::vector<Daemon> workers_;
  std::vector<std::vector<std::string>> worker_commands_;
};

// The pesc-worker these tests start.
std::filesystem::path worker_binary();

// Writes `text` to dir/name with the given mode and returns the path.
std::filesystem::path write_script(const std::filesystem::path& dir, const std::string& name, const std::string& text,
                                   std::filesystem::perms mode = std::filesystem::perms::owner_all);

// A fresh temporary directory removed when the object goes away.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a command to completion with stdout and stderr captured apart (both
// are files, not terminals) and the given variables added to the environment.
CommandResult run_command(const std::vector<std::string>& argv,
                          const std::vector<std::string>& environment = {});

// A file's bytes; empty when it cannot be read (yet).
std::string read_all(const std::filesystem::path& path);

// True when no live (non-zombie) process has this pid.
bool process_gone(pid_t pid);

// A small tmpfs mounted on a directory, for tests of full disks; needs root
// (mounted() says whether it is). Unmounted and removed when destroyed.
class SmallTmpfs {
 public:
  SmallTmpfs(const std::filesystem::path& mount_point, const std::string& size);  // size: "8m"
  SmallTmpfs(const SmallTmpfs&) = delete;
  SmallTmpfs& operator=(const SmallTmpfs&) = delete;
  ~SmallTmpfs();

  bool mounted() const { return mounted_; }
  // Writes a filler file until the disk has no byte left.
  void fill();
  // Removes the filler: space returns.
  void free_space();

 private:
  std::filesystem::path mount_point_;
  bool mounted_ = false;
};

// Polls `condition` until true or `timeout`; returns its last value.
template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

}  // namespace pesc::testing

#endif  // PESC_TESTS_FARM_HARNESS_H_
