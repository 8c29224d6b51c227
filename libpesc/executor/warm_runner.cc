#include "executor/warm_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
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

// CPU time the process has used so far, in milliseconds (user + system):
// one clock_gettime, where /proc/PID/stat would cost an open, a read and a
// close twice per rank.
int64_t cpu_ms_of(pid_t pid) {
  clockid_t clock;
  timespec used;
  if (::clock_getcpuclockid(pid, &clock) != 0 || ::clock_gettime(clock, &used) != 0) return 0;
  return static_cast<int64_t>(used.tv_sec) * 1000 + used.tv_nsec / 1000000;
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
    // A runner takes a few milliseconds to exit, and the next job's runner
    // waits for it: look often.
    absl::SleepFor(absl::Milliseconds(1));
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

bool WarmRunner::read_more() {
  char buffer[16 * 1024];
  while (true) {
    ssize_t got = ::read(answers_fd_, buffer, sizeof buffer);
    if (got > 0) {
      pending_.append(buffer, static_cast<size_t>(got));
      return true;
    }
    if (got < 0 && errno == EINTR) continue;
    return false;
  }
}

absl::StatusOr<std::string> WarmRunner::read_answer() {
  size_t newline;
  while ((newline = pending_.find('\n')) == std::string::npos) {
    if (!read_more()) return absl::AbortedError("the rank's interpreter died before it finished the rank");
  }
  std::string line = pending_.substr(0, newline);
  pending_.erase(0, newline + 1);
  return line;
}

absl::StatusOr<std::string> WarmRunner::read_bytes(size_t size) {
  while (pending_.size() < size) {
    if (!read_more()) return absl::AbortedError("the rank's interpreter died while it handed over the rank's value");
  }
  std::string bytes = pending_.substr(0, size);
  pending_.erase(0, size);
  return bytes;
}

absl::StatusOr<RunnerAnswer> parse_runner_answer(const std::string& line) {
  std::vector<std::string> fields = absl::StrSplit(line, '\t');
  RunnerAnswer answer;
  const bool well_formed = (fields.size() == 2 || fields.size() == 4) && fields[0] == "done" &&
                           absl::SimpleAtoi(fields[1], &answer.status) &&
                           (fields.size() == 2 || absl::SimpleAtoi(fields[3], &answer.file_size));
  if (!well_formed) {
    return absl::DataLossError(absl::StrCat("the rank's interpreter answered \"", absl::CHexEscape(line),
                                            "\" instead of done<TAB>status: is the process a pesc runner?"));
  }
  if (fields.size() == 2) return answer;
  answer.file_name = std::move(fields[2]);
  const std::string& name = answer.file_name;
  if (name.empty() || name == "." || name == ".." || name == "output.txt" ||
      name.find_first_of(std::string("/\0", 2)) != std::string::npos) {
    return absl::DataLossError(absl::StrCat("the rank's interpreter handed over a file named \"",
                                            absl::CHexEscape(name), "\", which is not a plain name in output_dir"));
  }
  if (answer.file_size > kMaxPipedFileBytes) {
    return absl::DataLossError(absl::StrCat("the rank's interpreter handed over ", answer.file_size,
                                            " bytes; values over ", kMaxPipedFileBytes,
                                            " bytes belong in output_dir"));
  }
  return answer;
}

absl::StatusOr<RankExit> WarmRunner::run(int rank, const std::filesystem::path& output_dir,
                                         const std::filesystem::path& checkpoint_dir) {
  PESC_RETURN_IF_ERROR(send(rank, output_dir, checkpoint_dir));
  return receive();
}

absl::Status WarmRunner::send(int rank, const std::filesystem::path& output_dir,
                              const std::filesystem::path& checkpoint_dir) {
  if (cpu_ms_ < 0) cpu_ms_ = cpu_ms_of(process_->pid());
  const std::string command = absl::StrCat("rank\t", rank, "\t", output_dir.string(), "\t", checkpoint_dir.string(), "\n");
  if (!write_without_sigpipe(commands_fd_, command)) {
    alive_ = false;
    return absl::AbortedError("the rank's interpreter is gone");
  }
  sent_unix_ms_.push_back(now_unix_ms());
  return absl::OkStatus();
}

absl::StatusOr<RankExit> WarmRunner::receive() {
  RankExit exit;
  // Ranks queued at the runner start as the one before them ends.
  exit.start_unix_ms = sent_unix_ms_.empty() ? now_unix_ms() : std::max(sent_unix_ms_.front(), answered_unix_ms_);
  if (!sent_unix_ms_.empty()) sent_unix_ms_.pop_front();
  auto answer = read_answer();
  exit.end_unix_ms = answered_unix_ms_ = now_unix_ms();
  if (!answer.ok()) {
    alive_ = false;
    return answer.status();
  }
  auto parsed = parse_runner_answer(*answer);
  if (parsed.ok() && !parsed->file_name.empty()) {
    auto bytes = read_bytes(parsed->file_size);
    if (bytes.ok()) {
      exit.piped_file = PipedFile{std::move(parsed->file_name), *std::move(bytes)};
    } else {
      parsed = bytes.status();
    }
  }
  if (!parsed.ok()) {
    alive_ = false;
    return parsed.status();
  }
  exit.exit_code = parsed->status;
  // The runner idles between ranks: what it used since its last answer is this rank's.
  const int64_t cpu_before = cpu_ms_;
  cpu_ms_ = cpu_ms_of(process_->pid());
  exit.cpu_ms = cpu_ms_ - cpu_before;
  return exit;
}

}  // namespace pesc
