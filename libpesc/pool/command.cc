#include "pool/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

extern char** environ;

namespace pesc {
namespace {

struct Pipe {
  int read_end = -1;
  int write_end = -1;
  ~Pipe() {
    if (read_end >= 0) ::close(read_end);
    if (write_end >= 0) ::close(write_end);
  }
};

absl::Status open_pipe(Pipe& pipe) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  pipe.read_end = fds[0];
  pipe.write_end = fds[1];
  return absl::OkStatus();
}

// Reads both pipes until they close or the deadline passes; false then.
bool drain(Pipe& out, Pipe& err, CommandOutput& output, absl::Time deadline) {
  pollfd fds[2] = {{out.read_end, POLLIN, 0}, {err.read_end, POLLIN, 0}};
  std::string* into[2] = {&output.out, &output.err};
  int open = 2;
  char buffer[4096];
  while (open > 0) {
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) return false;
    if (::poll(fds, 2, static_cast<int>(left_ms)) < 0 && errno != EINTR) return false;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t got = ::read(fds[i].fd, buffer, sizeof buffer);
      if (got > 0) {
        into[i]->append(buffer, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open;
      }
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<CommandOutput> run_command(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  if (argv.empty()) return absl::InvalidArgumentError("an empty command line");
  Pipe out, err;
  if (absl::Status opened = open_pipe(out); !opened.ok()) return opened;
  if (absl::Status opened = open_pipe(err); !opened.ok()) return opened;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out.write_end, 1);
  posix_spawn_file_actions_adddup2(&actions, err.write_end, 2);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    const std::string why = absl::StrCat("cannot run ", argv[0], ": ", std::strerror(spawned));
    return spawned == ENOENT ? absl::NotFoundError(why) : absl::InternalError(why);
  }
  ::close(out.write_end);
  ::close(err.write_end);
  out.write_end = err.write_end = -1;
  CommandOutput output;
  const bool finished = drain(out, err, output, absl::Now() + absl::FromChrono(timeout));
  if (!finished) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!finished) {
    return absl::DeadlineExceededError(
        absl::StrCat(argv[0], " did not answer within ", timeout.count(), " s; it was killed"));
  }
  output.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return output;
}

std::string describe_failure(const std::vector<std::string>& argv, const CommandOutput& output) {
  std::string words(absl::StripAsciiWhitespace(output.err.empty() ? output.out : output.err));
  if (words.empty()) words = absl::StrCat("exit status ", output.exit_code);
  for (char& c : words) {
    if (c == '\n') c = ' ';
  }
  return absl::StrCat(argv.empty() ? "" : argv[0], " failed: ", words);
}

}  // namespace pesc
