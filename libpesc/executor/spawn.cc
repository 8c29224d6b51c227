#include "executor/spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/fault.h"

namespace pesc {
namespace {

constexpr size_t kChildStack = 256 * 1024;

// Everything the child needs, prepared by the parent: the child may not
// allocate or take locks, since it shares the parent's memory.
struct ChildState {
  const SpawnPlan* plan;
  const char* program;
  char* const* argv;
  char* const* envp;
  int null_fd;
  int* staged_fds;  // room for a copy of each inherited descriptor
  char* second_stack;  // top of the program's own stack when entering a sandbox
  // Set by the child when a step fails: which, and errno.
  const char* failed_step = nullptr;
  int error = 0;
  pid_t program_pid = 0;  // entering a sandbox: the process that runs the program
  pid_t parent_pid = ::getpid();
};

// The stacks of a thread's children, unmapped when the thread ends.
struct ChildStacks {
  ChildStacks()
      : base(::mmap(nullptr, 2 * kChildStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0)) {}
  ~ChildStacks() {
    if (base != MAP_FAILED) ::munmap(base, 2 * kChildStack);
  }
  ChildStacks(const ChildStacks&) = delete;
  ChildStacks& operator=(const ChildStacks&) = delete;
  void* const base;
};

[[noreturn]] void fail(ChildState& state, const char* step) {
  state.failed_step = step;
  state.error = errno;
  ::_exit(127);
}

void reset_signals() {
  struct sigaction default_action;
  std::memset(&default_action, 0, sizeof default_action);
  default_action.sa_handler = SIG_DFL;
  for (int signal = 1; signal < NSIG; ++signal) {
    if (signal != SIGKILL && signal != SIGSTOP) ::sigaction(signal, &default_action, nullptr);
  }
}

void place_descriptors(ChildState& state) {
  const SpawnPlan& plan = *state.plan;
  if (::dup2(state.null_fd, STDIN_FILENO) < 0) fail(state, "stdin");
  if (::dup2(plan.output_fd, STDOUT_FILENO) < 0 || ::dup2(plan.output_fd, STDERR_FILENO) < 0) fail(state, "stdout");
  // Copies above 3 + n first, so placing one never overwrites another
  // still to be placed; the copies are not close-on-exec, as a dup2 onto
  // the same number would leave them.
  const int first_free = STDERR_FILENO + 1 + static_cast<int>(plan.inherited_fds.size());
  for (size_t i = 0; i < plan.inherited_fds.size(); ++i) {
    state.staged_fds[i] = ::fcntl(plan.inherited_fds[i], F_DUPFD, first_free);
    if (state.staged_fds[i] < 0) fail(state, "inherited descriptor");
  }
  int next_fd = STDERR_FILENO + 1;
  for (size_t i = 0; i < plan.inherited_fds.size(); ++i) {
    if (::dup2(state.staged_fds[i], next_fd++) < 0) fail(state, "inherited descriptor");
  }
  // Sockets and files the worker opened without O_CLOEXEC stay with it.
  if (::syscall(SYS_close_range, next_fd, ~0U, 0) != 0) fail(state, "close_range");
}

// Raw system calls: glibc's setuid family would signal every thread of the
// parent to change them too, and this child shares the parent's memory.
void drop_to(ChildState& state, const Credentials& user) {
  gid_t groups[1] = {user.gid};
  if (::syscall(SYS_setgroups, 1, groups) != 0) fail(state, "setgroups");
  if (::syscall(SYS_setresgid, user.gid, user.gid, user.gid) != 0) fail(state, "setgid");
  if (::syscall(SYS_setresuid, user.uid, user.uid, user.uid) != 0) fail(state, "setuid");
}

[[noreturn]] void execute(ChildState& state) {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(state.program, state.argv, state.envp);
  fail(state, "exec");
}

// The program's process inside an entered sandbox: our child (CLONE_PARENT)
// in its pid namespace.
int program_in_sandbox(void* argument) {
  ChildState& state = *static_cast<ChildState*>(argument);
  if (::setsid() < 0) fail(state, "setsid");
  execute(state);
}

// Enters the plan's sandbox as its user and starts the program there: a
// pid namespace takes only children, so this process makes one and ends.
[[noreturn]] void enter_sandbox(ChildState& state) {
  const SpawnPlan& plan = *state.plan;
  if (plan.run_as) drop_to(state, *plan.run_as);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(state, "no_new_privs");
  if (::setns(plan.enter->pidfd, plan.enter->namespaces) != 0) fail(state, "setns");
  if (::fchdir(plan.enter->root_fd) != 0 || ::chroot(".") != 0) fail(state, "chroot");
  if (!plan.working_dir.empty() && ::chdir(plan.working_dir.c_str()) != 0) fail(state, "chdir");
  place_descriptors(state);
  state.program_pid = ::clone(program_in_sandbox, state.second_stack, CLONE_PARENT | CLONE_VM | CLONE_VFORK | SIGCHLD,
                              &state);
  if (state.program_pid < 0) fail(state, "clone");
  ::_exit(0);
}

int child_main(void* argument) {
  ChildState& state = *static_cast<ChildState*>(argument);
  const SpawnPlan& plan = *state.plan;
  reset_signals();
  if (!plan.enter && ::setsid() < 0) fail(state, "setsid");
  for (int fd : plan.cgroup_fds) {
    if (::write(fd, "0", 1) != 1) fail(state, "joining the rank's cgroup");
  }
  for (const auto& [resource, value] : plan.limits) {
    if (::setrlimit(static_cast<__rlimit_resource>(resource), &value) != 0) fail(state, "setrlimit");
  }
  if (plan.enter) enter_sandbox(state);
  place_descriptors(state);
  if (!plan.working_dir.empty() && ::chdir(plan.working_dir.c_str()) != 0) fail(state, "chdir");
  if (plan.run_as) drop_to(state, *plan.run_as);
  // A worker killed outright takes its unsandboxed ranks with it, as
  // bubblewrap's --die-with-parent does for sandboxed ones; a rank left
  // spinning would compete with its own retry elsewhere. Set after the
  // change of user, which clears it.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(state, "prctl");
  if (::getppid() != state.parent_pid) ::_exit(127);
  execute(state);
}

std::vector<char*> pointers_to(const std::vector<std::string>& words) {
  std::vector<char*> pointers;
  pointers.reserve(words.size() + 1);
  for (const std::string& word : words) pointers.push_back(const_cast<char*>(word.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

// Errors of exec that another worker would meet too: they come from the
// file or the arguments the job gave, not from this machine.
bool exec_refused_the_job(int error) {
  switch (error) {
    case ENOEXEC:
    case EACCES:
    case ENOENT:
    case ENOTDIR:
    case EISDIR:
    case ELOOP:
    case ENAMETOOLONG:
    case E2BIG:
    case ELIBBAD:
      return true;
    default:
      return false;
  }
}

// Every rank's stdin: one /dev/null, open for the process's life, as ranks
// start by the thousand. -1 (errno set) while it cannot be opened.
int dev_null() {
  static std::atomic<int> opened{-1};
  if (const int fd = opened.load(); fd >= 0) return fd;
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int none = -1;
  if (opened.compare_exchange_strong(none, fd)) return fd;
  ::close(fd);  // another thread's came first
  return none;
}

}  // namespace

absl::Status spawn_failure(const SpawnPlan& plan, std::string_view step, int error,
                           const std::optional<Credentials>& run_as) {
  const std::string& program = plan.argv[0];
  std::string hint;
  if (step == "exec") {
    if (error == ENOEXEC) hint = " (a script needs a #! line, or a domain such as shell or python)";
    if (error == ENOENT) hint = " (is the interpreter on its #! line installed?)";
    if (error == E2BIG) {
      hint = " (its parameters and environment together exceed what the kernel passes to a process)";
    }
    if (error == EACCES && run_as) {
      hint = absl::StrCat(" (ranks run as user ", run_as->name, ", who must be able to read it)");
    }
    absl::Status refused =
        absl::FailedPreconditionError(absl::StrCat("cannot execute ", program, ": ", std::strerror(error), hint));
    if (exec_refused_the_job(error)) return job_fault(std::move(refused));
    return absl::ResourceExhaustedError(refused.message());
  }
  return absl::ResourceExhaustedError(absl::StrCat("cannot start ", program, ": ", std::string(step), ": ", std::strerror(error)));
}

absl::StatusOr<pid_t> spawn(const SpawnPlan& plan) {
  std::vector<char*> argv = pointers_to(plan.argv);
  std::vector<char*> envp = pointers_to(plan.environment);
  const int null_fd = dev_null();
  if (null_fd < 0) return absl::InternalError(absl::StrCat("cannot open /dev/null: ", std::strerror(errno)));
  // Two stacks: entering a sandbox, the program's process starts from the
  // child. Kept for the thread's next spawn: the children are done with
  // them when clone returns (CLONE_VFORK), and mapping and unmapping them
  // each time would cost page faults and TLB shootdowns across the
  // worker's threads.
  thread_local const ChildStacks stacks;
  void* const stack = stacks.base;
  if (stack == MAP_FAILED) return absl::ResourceExhaustedError("cannot map a stack for the rank's child");
  std::vector<int> staged_fds(plan.inherited_fds.size());
  ChildState state{&plan,          plan.argv[0].c_str(), argv.data(), envp.data(), null_fd, staged_fds.data(),
                   static_cast<char*>(stack) + 2 * kChildStack};
  // No handler of the parent's may run in the child before it resets them.
  sigset_t all, old_mask;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old_mask);
  const pid_t pid = ::clone(child_main, static_cast<char*>(stack) + kChildStack, CLONE_VM | CLONE_VFORK | SIGCHLD,
                            &state);
  const int clone_error = errno;
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  if (pid < 0) return absl::ResourceExhaustedError(absl::StrCat("cannot start a rank: ", std::strerror(clone_error)));
  auto reap = [](pid_t child) {
    while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
  };
  if (plan.enter) reap(pid);  // it ended once the program's process started
  if (state.failed_step != nullptr) {
    if (!plan.enter) reap(pid);
    if (state.program_pid > 0) reap(state.program_pid);
    return spawn_failure(plan, state.failed_step, state.error, plan.run_as);
  }
  return plan.enter ? state.program_pid : pid;
}

std::vector<std::pair<int, rlimit>> rlimits_for(const ResourceLimits& limits, bool processes_by_rlimit) {
  std::vector<std::pair<int, rlimit>> result;
  auto cap = [&result](int resource, rlim_t soft, rlim_t hard) {
    rlimit current{};
    ::getrlimit(static_cast<__rlimit_resource>(resource), &current);
    // Only root may raise a hard limit; asking more than it is no limit.
    hard = std::min(hard, current.rlim_max);
    result.emplace_back(resource, rlimit{std::min(soft, hard), hard});
  };
  if (limits.cpu_ms > 0) {
    // Whole seconds: SIGXCPU at the limit, SIGKILL a second later if caught.
    const rlim_t seconds = static_cast<rlim_t>((limits.cpu_ms + 999) / 1000);
    cap(RLIMIT_CPU, seconds, seconds + 1);
  }
  if (limits.open_files > 0) cap(RLIMIT_NOFILE, limits.open_files, limits.open_files);
  if (limits.processes > 0 && processes_by_rlimit) cap(RLIMIT_NPROC, limits.processes, limits.processes);
  if (limits.output_bytes > 0) {
    // One byte over, so the watch sees output_dir over its limit and ends
    // the whole rank, not just the process that wrote the file.
    const rlim_t file_bytes = static_cast<rlim_t>(limits.output_bytes) + 1;
    cap(RLIMIT_FSIZE, file_bytes, file_bytes);
  }
  return result;
}

}  // namespace pesc
