#include "executor/slot_launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "executor/launcher_protocol.h"

namespace pesc {
namespace fs = std::filesystem;
namespace {

// bubblewrap makes its namespaces in milliseconds; a launcher not ready by
// then is stuck.
constexpr int kReadyTimeoutMs = 10'000;

void reap(pid_t pid) {
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

// A rank the launcher runs: whether it started, its end and its usage
// come as the launcher's frames, and its signals go as kSignal frames.
class SlotLauncher::Control : public RankControl {
 public:
  Control(std::shared_ptr<SlotLauncher> launcher, std::string program)
      : launcher_(std::move(launcher)), program_(std::move(program)) {}

 protected:
  void await_end() override { received_ = launcher_->receive(body_); }

  RankExit collect() override {
    RankExit exit;
    exit.exit_code = 127;
    launcher::FrameReader reader(body_);
    if (received_ && body_[0] == launcher::kFailed) {
      const std::string step = reader.text();
      const int error = static_cast<int>(reader.integer());
      // Only a program that cannot be executed is the job's or the rank's;
      // another step failing means the sandbox is not as it should be.
      if (step != "exec") launcher_->broken_ = true;
      exit.not_run = spawn_failure(SpawnPlan{.argv = {program_}}, step, error, launcher_->run_as_);
      return exit;
    }
    const int status = static_cast<int>(reader.integer());
    exit.cpu_ms = reader.integer();
    exit.max_rss_kb = reader.integer();
    if (reader.integer() != 0) launcher_->broken_ = true;  // it retires
    if (!received_ || body_[0] != launcher::kExited || !reader.ok()) {
      launcher_->broken_ = true;
      exit.not_run = absl::UnavailableError(
          "the slot's sandbox launcher died while the rank ran (the worker starts a new one)");
      return exit;
    }
    if (WIFSIGNALED(status)) {
      exit.signal = WTERMSIG(status);
      exit.exit_code = 128 + exit.signal;
    } else {
      exit.exit_code = WEXITSTATUS(status);
    }
    return exit;
  }

  void send(int signal) override { launcher_->send_signal(signal); }

 private:
  const std::shared_ptr<SlotLauncher> launcher_;
  const std::string program_;
  std::string body_;  // await_end's, read by collect() on the same thread
  bool received_ = false;
};

absl::StatusOr<std::shared_ptr<SlotLauncher>> SlotLauncher::start(const fs::path& program, const Sandbox& sandbox,
                                                                   const std::optional<Credentials>& run_as,
                                                                   const fs::path& log_file) {
  int sockets[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot make a socket pair: ", std::strerror(errno)));
  }
  const int log = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) {
    const int error = errno;
    ::close(sockets[0]);
    ::close(sockets[1]);
    return file_error("write", log_file, error);
  }
  // The launcher alone is shown of wherever it is installed. As the
  // sandbox's init, no rank can kill it (the kernel drops signals to an
  // init from inside its namespace that it has no handler for).
  Sandbox with_launcher = sandbox;
  with_launcher.read_only.push_back(program);
  with_launcher.command_is_init = true;
  SpawnPlan plan;
  plan.argv = sandboxed_argv(with_launcher, "/", {program.string()});
  plan.environment = {"PATH=/usr/bin:/bin"};
  plan.output_fd = log;
  plan.inherited_fds = {sockets[1]};
  plan.run_as = run_as;
  absl::StatusOr<pid_t> pid = spawn(plan);
  ::close(log);
  ::close(sockets[1]);
  if (!pid.ok()) {
    ::close(sockets[0]);
    return pid.status();
  }
  std::shared_ptr<SlotLauncher> launcher(new SlotLauncher(*pid, sockets[0], sandbox, run_as));
  pollfd ready{sockets[0], POLLIN, 0};
  std::string body;
  if (::poll(&ready, 1, kReadyTimeoutMs) != 1 || !launcher->receive(body) || body[0] != launcher::kReady) {
    std::string said;
    if (auto text = read_file(log_file); text.ok()) said = absl::StrCat(": ", *text);
    return absl::UnavailableError(absl::StrCat("the slot's sandbox launcher did not start", said));
  }
  return launcher;
}

SlotLauncher::SlotLauncher(pid_t pid, int socket, Sandbox sandbox, std::optional<Credentials> run_as)
    : pid_(pid),
      socket_(socket),
      sandbox_(std::move(sandbox)),
      run_as_(std::move(run_as)),
      dirs_(identities(sandbox_.writable)) {}

SlotLauncher::~SlotLauncher() {
  ::close(socket_);
  // bubblewrap takes its namespace's processes with it (--die-with-parent).
  ::kill(pid_, SIGKILL);
  reap(pid_);
}

std::vector<SlotLauncher::DirIdentity> SlotLauncher::identities(const std::vector<fs::path>& dirs) {
  std::vector<DirIdentity> result;
  for (const fs::path& dir : dirs) {
    struct stat info;
    if (::stat(dir.c_str(), &info) == 0) {
      result.push_back({info.st_dev, info.st_ino});
    } else {
      result.push_back({});
    }
  }
  return result;
}

bool SlotLauncher::alive() const {
  if (broken_) return false;
  // Between ranks the launcher says nothing: anything readable is its end.
  pollfd state{socket_, POLLIN, 0};
  return ::poll(&state, 1, 0) == 0;
}

bool SlotLauncher::serves(const Sandbox& sandbox, const std::optional<Credentials>& run_as) const {
  return alive() && sandbox == sandbox_ && run_as == run_as_ && identities(sandbox.writable) == dirs_;
}

bool SlotLauncher::receive(std::string& body) { return launcher::receive_frame(socket_, body); }

bool SlotLauncher::send_signal(int signal) {
  launcher::Frame frame(launcher::kSignal);
  frame.add(int64_t{signal});
  absl::MutexLock lock(&send_mutex_);
  return launcher::send_frame(socket_, frame);
}

absl::StatusOr<std::unique_ptr<RankControl>> SlotLauncher::start_rank(const SpawnPlan& plan) {
  launcher::Frame request(launcher::kStart);
  request.add(plan.working_dir).add(plan.argv).add(plan.environment).add(static_cast<int64_t>(plan.limits.size()));
  for (const auto& [resource, value] : plan.limits) {
    request.add(int64_t{resource}).add(static_cast<int64_t>(value.rlim_cur)).add(static_cast<int64_t>(value.rlim_max));
  }
  absl::MutexLock lock(&send_mutex_);
  if (!launcher::send_frame(socket_, request, plan.output_fd)) {
    broken_ = true;
    return absl::UnavailableError("the slot's sandbox launcher died before the rank started");
  }
  return std::make_unique<Control>(shared_from_this(), plan.argv.at(0));
}

}  // namespace pesc
