#include "farm_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <thread>

extern char** environ;

namespace pesc::testing {
namespace fs = std::filesystem;

Daemon::Daemon(const std::vector<std::string>& argv, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) {
    throw std::runtime_error("cannot start " + argv[0]);
  }
  posix_spawn_file_actions_destroy(&actions);
}

Daemon::Daemon(Daemon&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}

Daemon& Daemon::operator=(Daemon&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
    pid_ = std::exchange(other.pid_, -1);
  }
  return *this;
}

Daemon::~Daemon() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  wait();
}

void Daemon::kill(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

int Daemon::wait() {
  int status = 0;
  if (pid_ > 0) {
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  return status;
}

bool Daemon::running() const {
  if (pid_ <= 0) return false;
  int status = 0;
  return ::waitpid(pid_, &status, WNOHANG) == 0;
}

ScratchDir::ScratchDir() {
  std::string pattern = (fs::temp_directory_path() / "pesc-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

TestFarm::TestFarm(int workers, int slots, std::vector<std::string> coordinator_flags)
    : coordinator_flags_(std::move(coordinator_flags)) {
  std::string pattern = (fs::temp_directory_path() / "pesc-farm-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  start_coordinator("127.0.0.1:0");
  for (int i = 0; i < workers; ++i) add_worker(slots);
}

TestFarm::~TestFarm() {
  // Workers first, so none outlives the test waiting for its coordinator.
  for (Daemon& worker : workers_) worker.kill(SIGTERM);
  for (Daemon& worker : workers_) worker.wait();
  workers_.clear();
  coordinator_.clear();
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

void TestFarm::start_coordinator(const std::string& listen) {
  fs::path address_file = dir_ / "state" / "coordinator.address";
  std::error_code ignored;
  fs::remove(address_file, ignored);
  std::vector<std::string> argv = {PESC_COORDINATOR_BINARY, "--listen", listen, "--state-dir",
                                   (dir_ / "state").string()};
  argv.insert(argv.end(), coordinator_flags_.begin(), coordinator_flags_.end());
  coordinator_.clear();
  coordinator_.emplace_back(argv, dir_ / "coordinator.log");
  bool up = eventually([&] { return fs::exists(address_file); });
  if (!up) throw std::runtime_error("the coordinator did not start; see " + (dir_ / "coordinator.log").string());
  std::ifstream in(address_file);
  in >> address_;
  // Written before the address, on the first start only.
  std::ifstream(dir_ / "state" / "admin.token") >> admin_token_;
  ::setenv("PESC_TOKEN", admin_token_.c_str(), 1);
}

std::filesystem::path worker_binary() { return PESC_WORKER_BINARY; }

void TestFarm::add_worker(int slots, const std::vector<std::string>& extra_flags,
                          const std::vector<std::string>& launcher) {
  const size_t index = workers_.size();
  fs::path work_dir = dir_ / ("worker" + std::to_string(index));
  worker_commands_.push_back(launcher);
  worker_commands_.back().insert(worker_commands_.back().end(),
                                 {PESC_WORKER_BINARY, "--coordinator", address_, "--slots", std::to_string(slots),
                                  "--work-dir", work_dir.string(), "--id", "worker" + std::to_string(index)});
  // These tests talk to their ranks through files in their scratch dirs,
  // which isolated ranks may not see; isolation_test asks for it.
  worker_commands_.back().insert(worker_commands_.back().end(), {"--no-sandbox", "--run-as="});
  // The test host's own load (builds beside the tests) must not pause them;
  // owner_test asks for owners first.
  worker_commands_.back().push_back("--owners-first=false");
  worker_commands_.back().insert(worker_commands_.back().end(), extra_flags.begin(), extra_flags.end());
  workers_.emplace_back(worker_commands_.back(), dir_ / ("worker" + std::to_string(index) + ".log"));
}

void TestFarm::restart_worker(size_t index) {
  workers_.at(index).kill(SIGKILL);
  workers_.at(index).wait();
  workers_.at(index) = Daemon(worker_commands_.at(index), dir_ / ("worker" + std::to_string(index) + ".log"));
}

void TestFarm::restart_coordinator() {
  coordinator().kill(SIGKILL);
  coordinator().wait();
  start_coordinator(address_);
}

fs::path write_script(const fs::path& dir, const std::string& name, const std::string& text, fs::perms mode) {
  fs::path path = dir / name;
  std::ofstream(path, std::ios::binary) << text;
  fs::permissions(path, mode);
  return path;
}

CommandResult run_command(const std::vector<std::string>& argv, const std::vector<std::string>& environment) {
  ScratchDir scratch;
  const fs::path out = scratch.path() / "out";
  const fs::path err = scratch.path() / "err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> variables(environ, environ + [] {
    size_t n = 0;
    while (environ[n] != nullptr) ++n;
    return n;
  }());
  variables.insert(variables.end(), environment.begin(), environment.end());
  std::vector<char*> env;
  for (std::string& variable : variables) env.push_back(variable.data());
  env.push_back(nullptr);
  pid_t pid = -1;
  CommandResult result;
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), env.data()) != 0) return result;
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = read_all(out);
  result.err = read_all(err);
  return result;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

SmallTmpfs::SmallTmpfs(const fs::path& mount_point, const std::string& size) : mount_point_(mount_point) {
  std::error_code ignored;
  fs::create_directories(mount_point_, ignored);
  const std::string options = "size=" + size + ",mode=0755";
  mounted_ = ::geteuid() == 0 && ::mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, options.c_str()) == 0;
}

SmallTmpfs::~SmallTmpfs() {
  if (mounted_) ::umount2(mount_point_.c_str(), MNT_DETACH);
  std::error_code ignored;
  fs::remove_all(mount_point_, ignored);
  fs::remove(mount_point_.parent_path(), ignored);  // when the test's own directory is gone but for it
}

void SmallTmpfs::fill() {
  const int fd = ::open((mount_point_ / "filler").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create the filler");
  const std::string block(1 << 16, 'x');
  for (size_t size = block.size(); size > 0; size /= 2) {
    while (::write(fd, block.data(), size) == static_cast<ssize_t>(size)) {
    }
  }
  ::close(fd);
}

void SmallTmpfs::free_space() {
  std::error_code ignored;
  fs::remove(mount_point_ / "filler", ignored);
}

bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string contents((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // The state letter follows the parenthesised command name.
  size_t close = contents.rfind(')');
  return close == std::string::npos || close + 2 >= contents.size() || contents[close + 2] == 'Z' ||
         contents[close + 2] == 'X';
}

}  // namespace pesc::testing
