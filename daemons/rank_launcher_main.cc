// pesc-rank-launcher: lives in one worker slot's bubblewrap sandbox and
// starts that slot's ranks there on the worker's request, so a sandboxed
// rank costs a fork and an exec instead of new namespaces
// (libpesc/executor/slot_launcher.h starts it, once per slot and sandbox).
//
// Between ranks it kills whatever the last one left running in the sandbox
// and empties the sandbox's private /tmp, /dev/shm and System V IPC, so a
// rank finds nothing of the one before; everything else a rank may write is
// the slot's directories, which the worker empties. When it cannot clean,
// or the worker goes, it exits, and the sandbox dies with it.
//
// Talks to the worker over descriptor 3 (executor/launcher_protocol.h). It
// runs as the ranks' user, as the sandbox's init: a rank can neither signal
// it (init gets no signal from inside that it has no handler for) nor trace
// it (it is not dumpable), and the processes a rank orphans are its to reap.

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "executor/launcher_protocol.h"

namespace {

using pesc::launcher::Frame;
using pesc::launcher::FrameReader;

constexpr int kWorker = 3;
// The priority the worker started it at.
const int kStartedNice = ::getpriority(PRIO_PROCESS, 0);

[[noreturn]] void quit(const char* why) {
  std::fprintf(stderr, "pesc-rank-launcher: %s: %s\n", why, std::strerror(errno));
  std::exit(1);
}

struct RankRequest {
  std::string working_dir;
  std::vector<std::string> argv;
  std::vector<std::string> environment;
  std::vector<std::pair<int, rlimit>> limits;
};

bool parse(const std::string& body, RankRequest& request) {
  FrameReader reader(body);
  request.working_dir = reader.text();
  request.argv = reader.words();
  request.environment = reader.words();
  const int64_t count = reader.integer();
  for (int64_t i = 0; i < count && reader.ok(); ++i) {
    const int resource = static_cast<int>(reader.integer());
    const rlim_t soft = static_cast<rlim_t>(reader.integer());
    const rlim_t hard = static_cast<rlim_t>(reader.integer());
    request.limits.push_back({resource, rlimit{soft, hard}});
  }
  return reader.ok() && !request.argv.empty();
}

std::vector<char*> pointers_to(std::vector<std::string>& words) {
  std::vector<char*> pointers;
  for (std::string& word : words) pointers.push_back(word.data());
  pointers.push_back(nullptr);
  return pointers;
}

// What a rank's child needs, prepared before vfork: the child shares this
// process's memory, so it may only make system calls.
struct ChildPlan {
  std::vector<char*> argv;
  std::vector<char*> envp;
  const char* working_dir;
  const std::vector<std::pair<int, rlimit>>* limits;
  int null_fd;
  int output_fd;
  // Set by the child when a step fails: which, and errno.
  const char* failed_step = nullptr;
  int error = 0;
};

[[noreturn]] void fail_in_child(ChildPlan& plan, const char* step) {
  plan.failed_step = step;
  plan.error = errno;
  ::_exit(127);
}

// In the vfork child: becomes the rank's process.
[[noreturn]] void become_rank(ChildPlan& plan) {
  struct sigaction default_action{};
  default_action.sa_handler = SIG_DFL;
  for (int signal = 1; signal < NSIG; ++signal) {
    if (signal != SIGKILL && signal != SIGSTOP) ::sigaction(signal, &default_action, nullptr);
  }
  // A group of its own: the worker's signals reach the rank and what it
  // starts, never this launcher.
  if (::setpgid(0, 0) != 0) fail_in_child(plan, "setpgid");
  for (const auto& [resource, value] : *plan.limits) {
    if (::setrlimit(static_cast<__rlimit_resource>(resource), &value) != 0) fail_in_child(plan, "setrlimit");
  }
  if (::dup2(plan.null_fd, STDIN_FILENO) < 0) fail_in_child(plan, "stdin");
  if (::dup2(plan.output_fd, STDOUT_FILENO) < 0 || ::dup2(plan.output_fd, STDERR_FILENO) < 0) {
    fail_in_child(plan, "stdout");
  }
  if (::syscall(SYS_close_range, STDERR_FILENO + 1, ~0U, 0) != 0) fail_in_child(plan, "close_range");
  if (plan.working_dir[0] != '\0' && ::chdir(plan.working_dir) != 0) fail_in_child(plan, "chdir");
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(plan.argv[0], plan.argv.data(), plan.envp.data());
  fail_in_child(plan, "exec");
}

// Whether a process other than the namespace's init (1) and this one is
// still there and not a zombie.
bool others_alive() {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) quit("cannot list /proc");
  const pid_t self = ::getpid();
  bool alive = false;
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (*end != '\0' || pid <= 1 || pid == self) continue;
    std::ifstream stat(std::string("/proc/") + entry->d_name + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;  // gone meanwhile
    const size_t after_name = line.rfind(')');
    if (after_name == std::string::npos || after_name + 2 >= line.size() || line[after_name + 2] != 'Z') {
      alive = true;
      break;
    }
  }
  ::closedir(proc);
  return alive;
}

// Kills everything the rank left in the sandbox (processes it started that
// left its group, daemons, traced children), waiting until they are gone.
void kill_leftovers() {
  for (int round = 0; round < 5000; ++round) {
    ::kill(-1, SIGKILL);  // every process here but init and this one
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    if (!others_alive()) return;
    ::usleep(1000);
  }
  errno = EBUSY;
  quit("a rank's processes outlived SIGKILL");
}

// Removes everything below `dir` (an open directory on `device`), making
// dirs the rank made unreadable readable first; false when something
// stays. Mounts are left alone, with the dirs that lead to them: below a
// work dir in /tmp, the worker's bind mounts of the slot's own dirs.
bool empty_directory(int dir, dev_t device, bool& holds_mount) {
  DIR* listing = ::fdopendir(::dup(dir));
  if (listing == nullptr) return false;
  bool emptied = true;
  while (dirent* entry = ::readdir(listing)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    struct stat info;
    if (::fstatat(dir, name.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0) {
      emptied = false;
      continue;
    }
    if (!S_ISDIR(info.st_mode)) {
      if (::unlinkat(dir, name.c_str(), 0) != 0) emptied = false;
      continue;
    }
    if (info.st_dev != device) {
      holds_mount = true;
      continue;
    }
    ::fchmodat(dir, name.c_str(), 0700, 0);
    const int child = ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    bool child_holds_mount = false;
    emptied = child >= 0 && empty_directory(child, device, child_holds_mount) && emptied;
    if (child >= 0) ::close(child);
    if (child_holds_mount) {
      holds_mount = true;
    } else if (::unlinkat(dir, name.c_str(), AT_REMOVEDIR) != 0) {
      emptied = false;
    }
  }
  ::closedir(listing);
  return emptied;
}

void empty_private_directory(const char* path) {
  const int dir = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    if (errno == ENOENT) return;
    quit(path);
  }
  struct stat info;
  bool holds_mount = false;
  const bool emptied = ::fstat(dir, &info) == 0 && empty_directory(dir, info.st_dev, holds_mount);
  ::close(dir);
  if (!emptied) {
    errno = ENOTEMPTY;
    quit(path);
  }
}

// Removes the System V IPC objects listed in /proc/sysvipc/`kind` (the
// sandbox's own IPC namespace): the id is each line's second field.
template <typename Remove>
void remove_ipc(const char* kind, Remove remove) {
  std::ifstream table(std::string("/proc/sysvipc/") + kind);
  std::string line;
  std::getline(table, line);  // the header
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    long key = 0;
    int id = -1;
    if (fields >> key >> id && remove(id) != 0) quit("cannot remove a rank's System V IPC object");
  }
}

// Leaves the sandbox as the next rank must find it.
void clean_after_rank() {
  kill_leftovers();
  empty_private_directory("/tmp");
  empty_private_directory("/dev/shm");
  // The *_INFO counts say in one call each whether there is anything to list.
  shm_info segments{};
  if (::shmctl(0, SHM_INFO, reinterpret_cast<shmid_ds*>(&segments)) != 0 || segments.used_ids > 0) {
    remove_ipc("shm", [](int id) { return ::shmctl(id, IPC_RMID, nullptr); });
  }
  seminfo semaphores{};
  if (::semctl(0, 0, SEM_INFO, &semaphores) < 0 || semaphores.semusz > 0) {
    remove_ipc("sem", [](int id) { return ::semctl(id, 0, IPC_RMID); });
  }
  msginfo queues{};
  if (::msgctl(0, MSG_INFO, reinterpret_cast<msqid_ds*>(&queues)) < 0 || queues.msgpool > 0) {
    remove_ipc("msg", [](int id) { return ::msgctl(id, IPC_RMID, nullptr); });
  }
}

void send(Frame frame) {
  if (!pesc::launcher::send_frame(kWorker, frame)) quit("cannot write to the worker");
}

// Reaps the processes the rank orphaned that have ended, but not the rank
// itself (its status and usage are read when its descriptor says it ended).
void reap_orphans(int orphans, pid_t rank) {
  signalfd_siginfo ignored;
  while (::read(orphans, &ignored, sizeof ignored) > 0) {
  }
  while (true) {
    siginfo_t ended{};
    if (::waitid(P_ALL, 0, &ended, WEXITED | WNOHANG | WNOWAIT) != 0 || ended.si_pid == 0 || ended.si_pid == rank) {
      return;
    }
    ::waitpid(ended.si_pid, nullptr, 0);
  }
}

// Runs one rank to its end, passing on the worker's signals meanwhile.
// `orphans`: a signalfd for SIGCHLD.
void run_rank(RankRequest& request, int output_fd, int orphans) {
  ChildPlan plan{pointers_to(request.argv), pointers_to(request.environment), request.working_dir.c_str(),
                 &request.limits, ::open("/dev/null", O_RDONLY | O_CLOEXEC), output_fd};
  if (plan.null_fd < 0) quit("cannot open /dev/null");
  // vfork: this process waits until the rank's program is executing (or
  // could not be), without copying its own memory for it.
  const pid_t child = ::vfork();
  if (child == 0) become_rank(plan);
  ::close(plan.null_fd);
  ::close(output_fd);
  if (child < 0) quit("vfork");
  if (plan.failed_step != nullptr) {
    while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
    send(std::move(Frame(pesc::launcher::kFailed).add(std::string(plan.failed_step)).add(int64_t{plan.error})));
    return;
  }
  const int child_fd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
  if (child_fd < 0) quit("pidfd_open");
  pollfd watched[3] = {{kWorker, POLLIN, 0}, {child_fd, POLLIN, 0}, {orphans, POLLIN, 0}};
  while (true) {
    if (::poll(watched, 3, -1) < 0) {
      if (errno == EINTR) continue;
      quit("poll");
    }
    if (watched[1].revents != 0) break;
    if (watched[2].revents != 0) reap_orphans(orphans, child);
    if (watched[0].revents != 0) {
      std::string body;
      if (!pesc::launcher::receive_frame(kWorker, body)) std::exit(0);  // the worker went: so does the sandbox
      if (body[0] == pesc::launcher::kSignal) ::kill(-child, static_cast<int>(FrameReader(body).integer()));
    }
  }
  ::close(child_fd);
  int status = 0;
  rusage usage{};
  while (::wait4(child, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  clean_after_rank();
  // The worker renices every process of a rank's session while the
  // machine's owner is busy, this one too, and later ranks would inherit
  // that for good: a launcher reniced retires after this rank.
  const bool retiring = ::getpriority(PRIO_PROCESS, 0) != kStartedNice;
  auto ms = [](const timeval& time) { return int64_t{time.tv_sec} * 1000 + time.tv_usec / 1000; };
  send(std::move(Frame(pesc::launcher::kExited)
                     .add(int64_t{status})
                     .add(ms(usage.ru_utime) + ms(usage.ru_stime))
                     .add(int64_t{usage.ru_maxrss})
                     .add(int64_t{retiring})));
  if (retiring) std::exit(0);
}

}  // namespace

int main() {
  // Neither a rank (the same user) nor anyone else may trace this process.
  ::prctl(PR_SET_DUMPABLE, 0);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t child_ended;
  sigemptyset(&child_ended);
  sigaddset(&child_ended, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &child_ended, nullptr);
  const int orphans = ::signalfd(-1, &child_ended, SFD_NONBLOCK | SFD_CLOEXEC);
  if (orphans < 0) quit("signalfd");
  send(Frame(pesc::launcher::kReady));
  while (true) {
    std::string body;
    int output_fd = -1;
    if (!pesc::launcher::receive_frame(kWorker, body, &output_fd)) return 0;
    if (body[0] == pesc::launcher::kSignal) continue;  // for a rank already gone
    RankRequest request;
    if (body[0] != pesc::launcher::kStart || output_fd < 0 || !parse(body, request)) {
      errno = EPROTO;
      quit("the worker sent something unexpected");
    }
    run_rank(request, output_fd, orphans);
  }
}
