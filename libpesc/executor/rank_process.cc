#include "executor/rank_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <fstream>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "common/fault.h"
#include "executor/process_table.h"
#include "executor/program_file.h"
#include "executor/slot_launcher.h"
#include "executor/spawn.h"

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
      return job_fault(absl::InvalidArgumentError(
          absl::StrCat("an argument of ", launch.argv[0], " contains a NUL byte, which argv cannot carry")));
    }
  }
  for (const auto& [name, value] : launch.environment) {
    if (name.empty() || name.find_first_of(std::string_view("=\0", 2)) != std::string::npos ||
        value.find('\0') != std::string::npos) {
      return job_fault(absl::InvalidArgumentError(absl::StrCat("invalid environment variable name or value: ", name)));
    }
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

// Why the launch's program cannot start, in words about the user's file
// rather than exec's bare errno; OK when nothing is wrong with it. Only
// asked when a start failed (or before bubblewrap's), so ranks that start
// pay for none of it.
absl::Status explain_start_failure(const RankLaunch& launch) {
  PESC_RETURN_IF_ERROR(check_program_file(launch.argv[0]));
  // A bad cwd fails exec with the same ENOENT as a bad program.
  if (!launch.working_dir.empty()) PESC_RETURN_IF_ERROR(check_directory(launch.working_dir));
  return absl::OkStatus();
}

// The worker's environment with the launch's variables added or replacing
// the worker's, less the worker's own credentials.
std::vector<std::string> rank_environment(const std::vector<std::pair<std::string, std::string>>& variables) {
  std::vector<std::string> environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    std::string_view name = text.substr(0, text.find('='));
    if (name.substr(0, 10) == "PESC_TOKEN") continue;  // PESC_TOKEN, PESC_TOKEN_FILE
    bool replaced =
        std::any_of(variables.begin(), variables.end(), [&](const auto& v) { return v.first == name; });
    if (!replaced) environment.emplace_back(text);
  }
  for (size_t i = 0; i < variables.size(); ++i) {
    const std::string& name = variables[i].first;
    bool later_wins = std::any_of(variables.begin() + static_cast<std::ptrdiff_t>(i) + 1, variables.end(),
                                  [&](const auto& v) { return v.first == name; });
    if (!later_wins) environment.push_back(absl::StrCat(name, "=", variables[i].second));
  }
  return environment;
}

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

// Bytes of the regular files below `dir`; links are not followed.
int64_t directory_bytes(const std::filesystem::path& dir) {
  int64_t total = 0;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    std::error_code ignored;
    if (it->is_regular_file(ignored)) total += static_cast<int64_t>(it->file_size(ignored));
  }
  return total;
}

// Resident bytes of every process in `session` (a rank's processes and,
// when sandboxed, bubblewrap's).
int64_t session_rss_bytes(pid_t session) {
  static const int64_t kPageBytes = ::sysconf(_SC_PAGESIZE);
  int64_t pages = 0;
  for_each_process([&](pid_t, const std::vector<absl::string_view>& fields) {
    int64_t process_session = 0, rss = 0;
    if (absl::SimpleAtoi(fields[kStatSession], &process_session) && process_session == session &&
        absl::SimpleAtoi(fields[kStatResidentPages], &rss)) {
      pages += rss;
    }
  });
  return pages * kPageBytes;
}

// `signal` to every process of `group` but its leader.
void signal_group_but_leader(pid_t group, int signal) {
  for_each_process([&](pid_t pid, const std::vector<absl::string_view>& fields) {
    pid_t process_group = 0;
    if (pid != group && absl::SimpleAtoi(fields[kStatProcessGroup], &process_group) && process_group == group) {
      ::kill(pid, signal);
    }
  });
}

int64_t to_ms(const timeval& time) { return static_cast<int64_t>(time.tv_sec) * 1000 + time.tv_usec / 1000; }

}  // namespace

// The state that wait(), terminate(), the destructor and the delayed-kill
// thread share. The group id stays ours while the main process is
// unreaped (even a zombie keeps it), so every kill(-pid) happens under
// mutex_ with reaped_ false: a recycled pid can never be signalled.
struct RankProcess::Terminator {
 public:
  // `sandboxed`: the leader is bubblewrap, which SIGTERM would kill at
  // once, and the rank with it; only SIGKILL is for bubblewrap.
  Terminator(pid_t group, bool sandboxed) : pid_(group), sandboxed_(sandboxed) {}
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
  const bool sandboxed_;
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
  if (sandboxed_) {
    signal_group_but_leader(pid_, SIGTERM);
  } else {
    ::kill(-pid_, SIGTERM);
  }
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

// Looks at a running rank every kPollInterval for what no rlimit or cgroup
// enforces: output_dir's total size, and memory where no cgroup caps it.
// Kills the rank at the first limit it finds exceeded.
class RankProcess::LimitWatch {
 public:
  static constexpr absl::Duration kPollInterval = absl::Milliseconds(100);

  LimitWatch(pid_t session, const ResourceLimits& limits, std::filesystem::path output_dir, bool memory_by_cgroup,
             std::function<void()> kill)
      : session_(session),
        output_bytes_(limits.output_bytes),
        memory_bytes_(memory_by_cgroup ? 0 : limits.memory_bytes),
        output_dir_(std::move(output_dir)),
        kill_(std::move(kill)) {
    if (output_bytes_ > 0 || memory_bytes_ > 0) thread_ = std::thread([this] { watch(); });
  }
  ~LimitWatch() { stop(); }

  void stop() {
    if (!stopped_.HasBeenNotified()) stopped_.Notify();
    if (thread_.joinable()) thread_.join();
  }
  // Call after stop().
  const std::string& exceeded() const { return exceeded_; }

 private:
  void watch() {
    while (!stopped_.WaitForNotificationWithTimeout(kPollInterval)) {
      if (output_bytes_ > 0 && directory_bytes(output_dir_) > output_bytes_) exceeded_ = "output";
      if (memory_bytes_ > 0 && session_rss_bytes(session_) > memory_bytes_) exceeded_ = "memory";
      if (!exceeded_.empty()) {
        kill_();
        return;
      }
    }
  }

  const pid_t session_;
  const int64_t output_bytes_;
  const int64_t memory_bytes_;
  const std::filesystem::path output_dir_;
  const std::function<void()> kill_;
  absl::Notification stopped_;
  std::string exceeded_;  // written by the thread, read after it is joined
  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<RankProcess>> RankProcess::start(const RankLaunch& launch) {
  PESC_RETURN_IF_ERROR(check_launch(launch));
  // Bubblewrap execs the program itself and would only print why it could
  // not: its own sandbox is checked first.
  if (launch.sandbox && !launch.launcher) PESC_RETURN_IF_ERROR(explain_start_failure(launch));

  FileDescriptor output(::open(launch.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (output.get() < 0) {
    int error = errno;
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", launch.output_file.string(), ": ", errno_text(error)));
  }
  std::unique_ptr<RankCgroup> cgroup;
  if (launch.cgroups && (launch.limits.memory_bytes > 0 || launch.limits.processes > 0)) {
    PESC_ASSIGN_OR_RETURN(cgroup, launch.cgroups->create(launch.limits));
  }
  SpawnPlan plan;
  plan.argv = launch.sandbox ? sandboxed_argv(*launch.sandbox, launch.working_dir, launch.argv) : launch.argv;
  plan.environment = rank_environment(launch.environment);
  plan.working_dir = launch.working_dir.string();
  plan.output_fd = output.get();
  plan.inherited_fds = launch.inherited_fds;
  if (cgroup) plan.cgroup_fds = cgroup->join_fds();
  plan.limits = rlimits_for(launch.limits, /*processes_by_rlimit=*/cgroup == nullptr);
  plan.run_as = launch.run_as;

  if (launch.launcher) {
    plan.argv = launch.argv;
    PESC_ASSIGN_OR_RETURN(plan.enter, launch.launcher->enter());
  }
  const int64_t start_unix_ms = now_unix_ms();
  absl::StatusOr<pid_t> spawned = spawn(plan);
  if (!spawned.ok()) {
    PESC_RETURN_IF_ERROR(explain_start_failure(launch));
    return spawned.status();
  }
  const pid_t pid = *spawned;
  // In a bubblewrap of its own, the group's leader is bubblewrap.
  const bool under_bubblewrap = launch.sandbox.has_value() && !launch.launcher;
  std::unique_ptr<RankProcess> process(new RankProcess(pid, start_unix_ms, under_bubblewrap));
  process->launcher_ = launch.launcher;
  process->limits_ = launch.limits;
  process->output_dir_ = launch.output_dir;
  process->cgroup_ = std::move(cgroup);
  RankProcess* raw = process.get();
  process->watch_ = std::make_unique<LimitWatch>(pid, launch.limits, launch.output_dir,
                                                 raw->cgroup_ != nullptr && launch.limits.memory_bytes > 0,
                                                 [raw] { raw->kill_everything(); });
  return process;
}

RankProcess::RankProcess(pid_t pid, int64_t start_unix_ms, bool sandboxed)
    : pid_(pid), start_unix_ms_(start_unix_ms), terminator_(std::make_unique<Terminator>(pid, sandboxed)) {}

RankProcess::~RankProcess() {
  kill_everything();
  wait();
}

void RankProcess::kill_everything() {
  terminator_->kill_group();
  if (cgroup_) cgroup_->kill_all();
}

RankExit RankProcess::wait() {
  RankExit exit = terminator_->wait(start_unix_ms_);
  // Whatever the rank left in its slot's sandbox goes before the next rank.
  if (launcher_ && !std::exchange(launcher_told_, true) && !launcher_->rank_ended()) launcher_lost_ = true;
  if (launcher_lost_) {
    exit.not_run = absl::UnavailableError(
        "the slot's sandbox launcher died while the rank ran (the worker starts a new one)");
  }
  if (watch_) watch_->stop();
  // What left the process group (setsid, a daemonising child) dies too.
  if (cgroup_) cgroup_->kill_all();
  exit.limit_exceeded = limit_exceeded(exit);
  return exit;
}

std::string RankProcess::limit_exceeded(const RankExit& exit) const {
  if (watch_ && !watch_->exceeded().empty()) return watch_->exceeded();
  if (cgroup_ && limits_.memory_bytes > 0 && cgroup_->oom_killed()) return "memory";
  // A sandboxed rank's signal reaches us as bubblewrap's exit code 128 + N.
  const int signal = exit.signal != 0 ? exit.signal : (exit.exit_code > 128 ? exit.exit_code - 128 : 0);
  // A process that RLIMIT_FSIZE stopped may end before the watch looks.
  if (limits_.output_bytes > 0 && (signal == SIGXFSZ || directory_bytes(output_dir_) > limits_.output_bytes)) {
    return "output";
  }
  if (limits_.cpu_ms > 0 && (signal == SIGXCPU || (signal == SIGKILL && exit.cpu_ms >= limits_.cpu_ms))) {
    return "cpu";
  }
  return "";
}

void RankProcess::terminate(std::chrono::milliseconds grace) {
  terminator_->terminate(absl::FromChrono(grace));
}

}  // namespace pesc
