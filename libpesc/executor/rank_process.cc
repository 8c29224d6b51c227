#include "executor/rank_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/status_macros.h"

extern char** environ;

namespace pesc {
namespace {

std::string errno_text(int error) { return std::strerror(error); }

absl::Status check_launch(const RankLaunch& launch) {
  if (launch.argv.empty() || launch.argv[0].empty() || launch.argv[0].front() != '/') {
    return absl::InvalidArgumentError("a rank's argv[0] must be an absolute path");
  }
  for (const std::string& word : launch.argv) {
    if (word.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("an argument of ", launch.argv[0], " contains a NUL byte, which argv cannot carry"));
    }
  }
  for (const auto& [name, value] : launch.environment) {
    if (name.empty() || name.find_first_of(std::string_view("=\0", 2)) != std::string::npos ||
        value.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("invalid environment variable name or value: ", name));
    }
  }
  return absl::OkStatus();
}

// posix_spawn reports a failed exec too, but checking first gives the
// user a message about their file rather than a bare errno.
absl::Status check_executable(const std::string& program) {
  struct stat info;
  if (::stat(program.c_str(), &info) != 0) {
    int error = errno;
    return absl::NotFoundError(absl::StrCat("cannot start rank: ", program, ": ", errno_text(error)));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start rank: ", program, " is not a regular file"));
  }
  if (::access(program.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cannot start rank: %s is not executable (mode %04o)", program, info.st_mode & 07777));
  }
  return absl::OkStatus();
}

absl::Status check_directory(const std::filesystem::path& dir) {
  struct stat info;
  if (::stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    return absl::NotFoundError(
        absl::StrCat("cannot start rank: working directory ", dir.string(), " does not exist"));
  }
  return absl::OkStatus();
}

absl::Status spawn_error(int error, const std::string& program) {
  std::string hint;
  if (error == ENOEXEC) hint = " (a script needs a #! line, or a domain such as shell or python)";
  if (error == ENOENT) hint = " (is the interpreter on its #! line installed?)";
  return absl::FailedPreconditionError(
      absl::StrCat("cannot execute ", program, ": ", errno_text(error), hint));
}

// The worker's environment with the launch's variables added or replacing
// the worker's; envp points into environ and into `added`.
class Environment {
 public:
  explicit Environment(const std::vector<std::pair<std::string, std::string>>& variables) {
    added_.reserve(variables.size());
    for (size_t i = 0; i < variables.size(); ++i) {
      const std::string& name = variables[i].first;
      bool later_wins = std::any_of(variables.begin() + static_cast<std::ptrdiff_t>(i) + 1, variables.end(),
                                    [&](const auto& v) { return v.first == name; });
      if (!later_wins) added_.push_back(absl::StrCat(name, "=", variables[i].second));
    }
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
      std::string_view text(*entry);
      std::string_view name = text.substr(0, text.find('='));
      bool replaced =
          std::any_of(variables.begin(), variables.end(), [&](const auto& v) { return v.first == name; });
      if (!replaced) envp_.push_back(*entry);
    }
    for (std::string& text : added_) envp_.push_back(text.data());
    envp_.push_back(nullptr);
  }

  char* const* envp() const { return envp_.data(); }

 private:
  std::vector<std::string> added_;
  std::vector<char*> envp_;
};

// The same for every rank, so built once; posix_spawn only reads it.
const posix_spawnattr_t& spawn_attributes() {
  static const posix_spawnattr_t* const kAttributes = [] {
    auto* attributes = new posix_spawnattr_t;
    posix_spawnattr_init(attributes);
    // The embedding process (Python ignores SIGPIPE) must not pass on its
    // ignored or blocked signals, or the rank would not die as expected.
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(attributes, &all);
    posix_spawnattr_setsigmask(attributes, &none);
    posix_spawnattr_setpgroup(attributes, 0);
    posix_spawnattr_setflags(attributes,
                             POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    return attributes;
  }();
  return *kAttributes;
}

class FileActions {
 public:
  FileActions() { posix_spawn_file_actions_init(&actions_); }
  ~FileActions() { posix_spawn_file_actions_destroy(&actions_); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;

  absl::Status build(int output_fd, const std::vector<int>& inherited_fds,
                     const std::filesystem::path& working_dir) {
    // Both stdout and stderr share one open file description, so what the
    // rank writes to either lands in output.txt in the order written.
    int error = posix_spawn_file_actions_addopen(&actions_, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (error == 0) error = posix_spawn_file_actions_adddup2(&actions_, output_fd, STDOUT_FILENO);
    if (error == 0) error = posix_spawn_file_actions_adddup2(&actions_, output_fd, STDERR_FILENO);
    int next_fd = STDERR_FILENO + 1;
    for (int fd : inherited_fds) {
      if (error == 0) error = posix_spawn_file_actions_adddup2(&actions_, fd, next_fd++);
    }
    // Sockets and files the worker opened without O_CLOEXEC stay with it.
    if (error == 0) error = posix_spawn_file_actions_addclosefrom_np(&actions_, next_fd);
    if (error == 0 && !working_dir.empty()) {
      error = posix_spawn_file_actions_addchdir_np(&actions_, working_dir.c_str());
    }
    if (error != 0) return absl::InternalError(absl::StrCat("posix_spawn_file_actions: ", errno_text(error)));
    return absl::OkStatus();
  }

  const posix_spawn_file_actions_t* get() const { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

int64_t to_ms(const timeval& time) { return static_cast<int64_t>(time.tv_sec) * 1000 + time.tv_usec / 1000; }

}  // namespace

// The state that wait(), terminate(), the destructor and the delayed-kill
// thread share. The group id stays ours while the main process is
// unreaped (even a zombie keeps it), so every kill(-pid) happens under
// mutex_ with reaped_ false: a recycled pid can never be signalled.
struct RankProcess::Terminator {
 public:
  explicit Terminator(pid_t group) : pid_(group) {}
  ~Terminator() {
    if (killer_.joinable()) killer_.join();
  }

  RankExit wait(int64_t start_unix_ms);
  void terminate(absl::Duration grace);
  void kill_group() {
    absl::MutexLock lock(&mutex_);
    if (!reaped_) ::kill(-pid_, SIGKILL);
  }

 private:
  void kill_after_deadline();

  const pid_t pid_;
  absl::Mutex mutex_;
  bool reaped_ ABSL_GUARDED_BY(mutex_) = false;
  RankExit exit_ ABSL_GUARDED_BY(mutex_);
  absl::Time kill_deadline_ ABSL_GUARDED_BY(mutex_) = absl::InfiniteFuture();
  std::thread killer_;  // started by the first terminate(), joined at the end
};

RankExit RankProcess::Terminator::wait(int64_t start_unix_ms) {
  {
    absl::MutexLock lock(&mutex_);
    if (reaped_) return exit_;
  }
  // WNOWAIT leaves a zombie, which pins the group id until we reap below.
  siginfo_t info;
  int waited;
  do {
    std::memset(&info, 0, sizeof(info));
    waited = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT);
  } while (waited == -1 && errno == EINTR);
  const int64_t end_unix_ms = now_unix_ms();

  absl::MutexLock lock(&mutex_);
  if (reaped_) return exit_;  // another thread's wait() got here first
  reaped_ = true;
  exit_.start_unix_ms = start_unix_ms;
  exit_.end_unix_ms = end_unix_ms;
  if (waited == -1) {
    // Someone else reaped it (SIGCHLD ignored, or a waitpid(-1) in the
    // embedding process): the status is lost and the group id may not be
    // ours any more, so it is left alone.
    exit_.exit_code = -1;
    return exit_;
  }
  if (info.si_code == CLD_EXITED) {
    exit_.exit_code = info.si_status;
  } else {
    exit_.signal = info.si_status;
    exit_.exit_code = 128 + info.si_status;
  }
  ::kill(-pid_, SIGKILL);  // whatever the rank left running in its group
  rusage usage{};
  pid_t reaped;
  do {
    reaped = ::wait4(pid_, nullptr, 0, &usage);
  } while (reaped == -1 && errno == EINTR);
  if (reaped == pid_) {
    exit_.cpu_ms = to_ms(usage.ru_utime) + to_ms(usage.ru_stime);
    exit_.max_rss_kb = usage.ru_maxrss;  // Linux reports kilobytes
  }
  return exit_;
}

void RankProcess::Terminator::terminate(absl::Duration grace) {
  absl::MutexLock lock(&mutex_);
  if (reaped_) return;
  if (grace <= absl::ZeroDuration()) {
    ::kill(-pid_, SIGKILL);
    return;
  }
  ::kill(-pid_, SIGTERM);
  ::kill(-pid_, SIGCONT);  // a stopped rank could not act on SIGTERM
  kill_deadline_ = std::min(kill_deadline_, absl::Now() + grace);
  if (!killer_.joinable()) killer_ = std::thread([this] { kill_after_deadline(); });
}

void RankProcess::Terminator::kill_after_deadline() {
  absl::MutexLock lock(&mutex_);
  while (!reaped_) {
    const absl::Time deadline = kill_deadline_;
    // A later terminate() may bring the deadline forward.
    auto reaped_or_sooner = [this, deadline]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return reaped_ || kill_deadline_ < deadline;
    };
    if (!mutex_.AwaitWithDeadline(absl::Condition(&reaped_or_sooner), deadline)) {
      ::kill(-pid_, SIGKILL);
      return;
    }
  }
}

absl::StatusOr<std::unique_ptr<RankProcess>> RankProcess::start(const RankLaunch& launch) {
  PESC_RETURN_IF_ERROR(check_launch(launch));
  const std::string& program = launch.argv[0];
  PESC_RETURN_IF_ERROR(check_executable(program));
  // posix_spawn would report a bad cwd as the same ENOENT as a bad program.
  if (!launch.working_dir.empty()) PESC_RETURN_IF_ERROR(check_directory(launch.working_dir));

  FileDescriptor output(::open(launch.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (output.get() < 0) {
    int error = errno;
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", launch.output_file.string(), ": ", errno_text(error)));
  }
  FileActions actions;
  PESC_RETURN_IF_ERROR(actions.build(output.get(), launch.inherited_fds, launch.working_dir));
  Environment environment(launch.environment);
  std::vector<char*> argv;
  argv.reserve(launch.argv.size() + 1);
  for (const std::string& word : launch.argv) argv.push_back(const_cast<char*>(word.c_str()));
  argv.push_back(nullptr);

  const int64_t start_unix_ms = now_unix_ms();
  pid_t pid = 0;
  // glibc returns the child's exec error here and reaps that child itself.
  int error = ::posix_spawn(&pid, program.c_str(), actions.get(), &spawn_attributes(), argv.data(),
                            environment.envp());
  if (error != 0) return spawn_error(error, program);
  return std::unique_ptr<RankProcess>(new RankProcess(pid, start_unix_ms));
}

RankProcess::RankProcess(pid_t pid, int64_t start_unix_ms)
    : pid_(pid), start_unix_ms_(start_unix_ms), terminator_(std::make_unique<Terminator>(pid)) {}

RankProcess::~RankProcess() {
  terminator_->kill_group();
  terminator_->wait(start_unix_ms_);
}

RankExit RankProcess::wait() { return terminator_->wait(start_unix_ms_); }

void RankProcess::terminate(std::chrono::milliseconds grace) {
  terminator_->terminate(absl::FromChrono(grace));
}

}  // namespace pesc
