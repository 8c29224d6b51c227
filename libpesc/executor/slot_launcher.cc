#include "executor/slot_launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
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

// The launcher's log, for the message of a launcher that failed.
std::string what_it_said(const fs::path& log_file) {
  absl::StatusOr<std::string> text = read_file(log_file);
  if (!text.ok() || text->empty()) return "";
  return absl::StrCat(": ", absl::StripTrailingAsciiWhitespace(*text));
}

}  // namespace

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
  if (::poll(&ready, 1, kReadyTimeoutMs) != 1 || !launcher::receive_frame(launcher->socket_, body) || body[0] != launcher::kReady) {
    return absl::UnavailableError(absl::StrCat("the slot's sandbox launcher did not start", what_it_said(log_file)));
  }
  PESC_RETURN_IF_ERROR(launcher->find_sandbox());
  PESC_RETURN_IF_ERROR(launcher->probe(program, log_file));
  // A launcher that cannot clean up after its probe cannot after any rank:
  // on this machine ranks are better off each in a bubblewrap of its own.
  if (!launcher->finish_cleaning()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the slot's sandbox launcher cannot clean its sandbox", what_it_said(log_file)));
  }
  return launcher;
}

absl::Status SlotLauncher::probe(const fs::path& program, const fs::path& log_file) {
  const int log = ::open(log_file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (log < 0) return file_error("write", log_file, errno);
  SpawnPlan plan;
  plan.argv = {program.string(), "--probe"};
  plan.output_fd = log;
  plan.run_as = run_as_;
  plan.enter = entry_;
  absl::StatusOr<pid_t> pid = spawn(plan);
  ::close(log);
  if (!pid.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot enter the slot's sandbox: ", pid.status().message()));
  }
  int status = 0;
  while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !rank_ended()) {
    return absl::FailedPreconditionError("a process that entered the slot's sandbox failed");
  }
  return absl::OkStatus();
}

SlotLauncher::SlotLauncher(pid_t pid, int socket, Sandbox sandbox, std::optional<Credentials> run_as)
    : pid_(pid),
      socket_(socket),
      sandbox_(std::move(sandbox)),
      run_as_(std::move(run_as)),
      dirs_(identities(sandbox_.writable)) {}

SlotLauncher::~SlotLauncher() {
  for (int fd : {entry_.pidfd, entry_.root_fd}) {
    if (fd >= 0) ::close(fd);
  }
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

bool SlotLauncher::serves(const Sandbox& sandbox, const std::optional<Credentials>& run_as) {
  return finish_cleaning() && alive() && sandbox == sandbox_ && run_as == run_as_ &&
         identities(sandbox.writable) == dirs_;
}

bool SlotLauncher::finish_cleaning() {
  if (!cleaning_) return !broken_;
  cleaning_ = false;
  std::string body;
  if (!launcher::receive_frame(socket_, body) || body[0] != launcher::kCleaned) broken_ = true;
  return !broken_;
}

absl::Status SlotLauncher::find_sandbox() {
  // The launcher is bubblewrap's one child (--as-pid-1).
  std::ifstream children(absl::StrCat("/proc/", pid_, "/task/", pid_, "/children"));
  pid_t launcher = 0;
  if (!(children >> launcher) || launcher <= 0) {
    return absl::UnavailableError("cannot find the slot's sandbox launcher inside bubblewrap");
  }
  const std::string proc = absl::StrCat("/proc/", launcher);
  entry_.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, launcher, 0));
  entry_.root_fd = ::open(absl::StrCat(proc, "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (entry_.pidfd < 0 || entry_.root_fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot open the slot's sandbox: ", std::strerror(errno)));
  }
  // Only the namespaces that differ from ours: entering our own network
  // namespace (a job with the network) would need privileges here.
  constexpr std::pair<const char*, int> kNamespaces[] = {
      {"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS},   {"pid", CLONE_NEWPID},      {"net", CLONE_NEWNET},
      {"ipc", CLONE_NEWIPC},   {"uts", CLONE_NEWUTS}, {"cgroup", CLONE_NEWCGROUP}};
  for (const auto& [name, flag] : kNamespaces) {
    struct stat theirs, ours;
    if (::stat(absl::StrCat(proc, "/ns/", name).c_str(), &theirs) != 0 ||
        ::stat(absl::StrCat("/proc/self/ns/", name).c_str(), &ours) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot see the slot's sandbox's ", name, " namespace"));
    }
    if (theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev) entry_.namespaces |= flag;
  }
  if ((entry_.namespaces & (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID)) != (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID)) {
    return absl::UnavailableError("the slot's sandbox has no namespaces of its own");
  }
  return absl::OkStatus();
}

absl::StatusOr<SandboxToEnter> SlotLauncher::enter() {
  if (!finish_cleaning()) return absl::UnavailableError("the slot's sandbox launcher died");
  return entry_;
}

bool SlotLauncher::rank_ended() {
  // A launcher that ended took its sandbox's processes, the rank's too.
  pollfd launcher_state{entry_.pidfd, POLLIN, 0};
  if (::poll(&launcher_state, 1, 0) != 0) broken_ = true;
  if (broken_) return false;
  launcher::Frame clean(launcher::kClean);
  cleaning_ = launcher::send_frame(socket_, clean);
  if (!cleaning_) broken_ = true;
  return cleaning_;
}

}  // namespace pesc
