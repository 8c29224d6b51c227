// pesc-rank-launcher: the init of one worker slot's bubblewrap sandbox,
// kept from rank to rank (libpesc/executor/slot_launcher.h starts it, once
// per slot and sandbox). Ranks enter the sandbox's namespaces as the
// worker's children; this process reaps what they orphan and, when the
// worker says a rank ended, kills whatever the rank left running and
// empties the sandbox's private /tmp, /dev/shm and System V IPC, so the
// next rank finds nothing of it. Everything else a rank may write is the
// slot's directories, which the worker empties. When it cannot clean, or
// the worker goes, it exits, and the sandbox dies with it.
//
// Talks to the worker over descriptor 3 (executor/launcher_protocol.h);
// `pesc-rank-launcher --probe`, run inside the sandbox, just exits 0. It
// runs as the ranks' user; as the sandbox's init, a rank can neither signal
// it (init gets no signal from inside that it has no handler for) nor
// trace it (it is not dumpable).

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

constexpr int kWorker = 3;

[[noreturn]] void quit(const char* why) {
  std::fprintf(stderr, "pesc-rank-launcher: %s: %s\n", why, std::strerror(errno));
  std::exit(1);
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
    // A mount (a dir, or a file such as this launcher when it lives below
    // /tmp) is on another device than the private /tmp.
    if (info.st_dev != device) {
      holds_mount = true;
      continue;
    }
    if (!S_ISDIR(info.st_mode)) {
      if (::unlinkat(dir, name.c_str(), 0) != 0) emptied = false;
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

// Reaps the sandbox's processes that ended: a rank's orphans are this
// init's children.
void reap_orphans(int orphans) {
  signalfd_siginfo ignored;
  while (::read(orphans, &ignored, sizeof ignored) > 0) {
  }
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Run by the worker inside a new sandbox to see that it can enter it.
  if (argc == 2 && std::strcmp(argv[1], "--probe") == 0) return 0;
  // Not even a process of the same user may trace this one.
  ::prctl(PR_SET_DUMPABLE, 0);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t child_ended;
  sigemptyset(&child_ended);
  sigaddset(&child_ended, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &child_ended, nullptr);
  const int orphans = ::signalfd(-1, &child_ended, SFD_NONBLOCK | SFD_CLOEXEC);
  if (orphans < 0) quit("signalfd");
  send(Frame(pesc::launcher::kReady));
  pollfd watched[2] = {{kWorker, POLLIN, 0}, {orphans, POLLIN, 0}};
  while (true) {
    if (::poll(watched, 2, -1) < 0) {
      if (errno == EINTR) continue;
      quit("poll");
    }
    if (watched[1].revents != 0) reap_orphans(orphans);
    if (watched[0].revents == 0) continue;
    std::string body;
    if (!pesc::launcher::receive_frame(kWorker, body)) return 0;  // the worker went: so does the sandbox
    if (body[0] != pesc::launcher::kClean) {
      errno = EPROTO;
      quit("the worker sent something unexpected");
    }
    clean_after_rank();
    send(Frame(pesc::launcher::kCleaned));
  }
}
