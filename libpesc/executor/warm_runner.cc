#include "executor/warm_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/status_macros.h"

namespace pesc {
namespace {

// Well above 3 and 4, so dup2 into the child's 3 and 4 never overwrites a
// descriptor it still has to copy.
constexpr int kFirstPrivateFd = 64;

struct Pipe {
  int read = -1;
  int write = -1;
};

absl::StatusOr<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  Pipe pipe;
  pipe.read = ::fcntl(fds[0], F_DUPFD_CLOEXEC, kFirstPrivateFd);
  pipe.write = ::fcntl(fds[1], F_DUPFD_CLOEXEC, kFirstPrivateFd);
  ::close(fds[0]);
  ::close(fds[1]);
  if (pipe.read < 0 || pipe.write < 0) return absl::InternalError("cannot place the runner's pipes");
  return pipe;
}

// CPU seconds the process has used so far, in milliseconds (utime + stime).
// Read twice per rank, so with one read(2) and no streams.
int64_t cpu_ms_of(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[1024];
  const ssize_t got = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (got <= 0) return 0;
  text[got] = '\0';
  const char* close = std::strrchr(text, ')');
  if (close == nullptr) return 0;
  // Fields 14 and 15 (utime, stime) follow the command's ')' and 11 others.
  const std::vector<absl::string_view> fields = absl::StrSplit(absl::string_view(close + 2), ' ');
  int64_t user = 0, system = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &user) || !absl::SimpleAtoi(fields[12], &system)) return 0;
  return (user + system) * 1000 / ::sysconf(_SC_CLK_TCK);
}

// Writes all of `data`; false when the reader is gone. A dead runner leaves
// a broken pipe, and the SIGPIPE that writing to it raises must not end the
// worker (or the Python or R session the worker is embedded in): it is
// blocked for this thread and swallowed, the usual way.
bool write_without_sigpipe(int fd, const std::string& data) {
  sigset_t pipe_signal, old_mask;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, &old_mask);
  size_t written = 0;
  bool ok = true;
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    written += static_cast<size_t>(n);
  }
  if (!ok) {
    const timespec no_wait = {0, 0};
    while (sigtimedwait(&pipe_signal, nullptr, &no_wait) > 0) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return ok;
}

// Whether `pid` (our unreaped child) has exited within `patience`.
bool exits_within(pid_t pid, absl::Duration patience) {
  const absl::Time deadline = absl::Now() + patience;
  const std::string stat_path = "/proc/" + std::to_string(pid) + "/stat";
  while (true) {
    std::ifstream stat(stat_path);
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const size_t close = text.rfind(')');
    if (close == std::string::npos || close + 2 >= text.size() || text[close + 2] == 'Z') return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<WarmRunner>> WarmRunner::start(RankLaunch launch) {
  auto commands = make_pipe();
  if (!commands.ok()) return commands.status();
  auto answers = make_pipe();
  if (!answers.ok()) {
    ::close(commands->read);
    ::close(commands->write);
    return answers.status();
  }
  launch.inherited_fds = {commands->read, answers->write};
  launch.environment.emplace_back("PESC_RUNNER_FDS", "3,4");
  if (launch.run_as) {
    // R opens its ends by path (/dev/fd/3), which checks the pipe's owner:
    // they must belong to the user the runner becomes, not the root worker.
    for (int fd : launch.inherited_fds) {
      if (::fchown(fd, launch.run_as->uid, launch.run_as->gid) != 0) {
        for (int end : {commands->read, commands->write, answers->read, answers->write}) ::close(end);
        return absl::InternalError(absl::StrCat("cannot give the runner's pipe to user ", launch.run_as->name, ": ",
                                                std::strerror(errno)));
      }
    }
  }
  auto process = RankProcess::start(launch);
  // The child holds its own copies now.
  ::close(commands->read);
  ::close(answers->write);
  if (!process.ok()) {
    ::close(commands->write);
    ::close(answers->read);
    return process.status();
  }
  return std::unique_ptr<WarmRunner>(new WarmRunner(*std::move(process), commands->write, answers->read));
}

WarmRunner::WarmRunner(std::unique_ptr<RankProcess> process, int commands_fd, int answers_fd)
    : process_(std::move(process)), commands_fd_(commands_fd), answers_fd_(answers_fd) {}

WarmRunner::~WarmRunner() {
  ::close(commands_fd_);  // EOF: the runner's cue to exit
  ::close(answers_fd_);
  // Let it end on its own (R and Python then remove their temporary files);
  // a runner stuck in a rank is ended by the group's TERM, then KILL.
  if (!exits_within(process_->pid(), absl::Seconds(1))) process_->terminate(std::chrono::milliseconds(500));
  process_->wait();
}

void WarmRunner::terminate(std::chrono::milliseconds grace) { process_->terminate(grace); }

absl::StatusOr<std::string> WarmRunner::read_answer() {
  while (true) {
    if (size_t newline = pending_.find('\n'); newline != std::string::npos) {
      std::string line = pending_.substr(0, newline);
      pending_.erase(0, newline + 1);
      return line;
    }
    char buffer[256];
    ssize_t got = ::read(answers_fd_, buffer, sizeof buffer);
    if (got > 0) {
      pending_.append(buffer, static_cast<size_t>(got));
    } else if (got < 0 && errno == EINTR) {
      continue;
    } else {
      return absl::AbortedError("the rank's interpreter died before it finished the rank");
    }
  }
}

absl::StatusOr<int> parse_runner_answer(const std::string& line) {
  std::vector<std::string> fields = absl::StrSplit(line, '\t');
  int status = 0;
  if (fields.size() != 2 || fields[0] != "done" || !absl::SimpleAtoi(fields[1], &status)) {
    return absl::DataLossError(absl::StrCat("the rank's interpreter answered \"", absl::CHexEscape(line),
                                            "\" instead of done<TAB>status: is the process a pesc runner?"));
  }
  return status;
}

absl::StatusOr<RankExit> WarmRunner::run(int rank, const std::filesystem::path& output_dir,
                                         const std::filesystem::path& checkpoint_dir) {
  PESC_RETURN_IF_ERROR(send(rank, output_dir, checkpoint_dir));
  return receive();
}

absl::Status WarmRunner::send(int rank, const std::filesystem::path& output_dir,
                              const std::filesystem::path& checkpoint_dir) {
  sent_unix_ms_ = now_unix_ms();
  // What the runner used up to the end of its last rank: it idles between ranks.
  cpu_at_send_ = cpu_ms_ >= 0 ? cpu_ms_ : cpu_ms_of(process_->pid());
  const std::string command = absl::StrCat("rank\t", rank, "\t", output_dir.string(), "\t", checkpoint_dir.string(), "\n");
  if (!write_without_sigpipe(commands_fd_, command)) {
    alive_ = false;
    return absl::AbortedError("the rank's interpreter is gone");
  }
  return absl::OkStatus();
}

absl::StatusOr<RankExit> WarmRunner::receive() {
  RankExit exit;
  exit.start_unix_ms = sent_unix_ms_;
  auto answer = read_answer();
  exit.end_unix_ms = now_unix_ms();
  if (!answer.ok()) {
    alive_ = false;
    return answer.status();
  }
  auto status = parse_runner_answer(*answer);
  if (!status.ok()) {
    alive_ = false;
    return status.status();
  }
  exit.exit_code = *status;
  cpu_ms_ = cpu_ms_of(process_->pid());
  exit.cpu_ms = cpu_ms_ - cpu_at_send_;
  return exit;
}

}  // namespace pesc
