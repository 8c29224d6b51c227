#include "worker/rank_throttle.h"

#include <signal.h>
#include <sys/resource.h>

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "executor/process_table.h"

namespace pesc {
namespace {

// Short enough that a rank's progress looks smooth, long enough that the
// signals cost next to nothing.
constexpr absl::Duration kPeriod = absl::Milliseconds(200);
constexpr int kLowestPriority = 19;

std::vector<pid_t> processes_of(const std::set<pid_t>& sessions) {
  std::vector<pid_t> pids;
  for_each_process([&](pid_t pid, const std::vector<absl::string_view>& fields) {
    pid_t session = 0;
    if (absl::SimpleAtoi(fields[kStatSession], &session) && sessions.contains(session)) pids.push_back(pid);
  });
  return pids;
}

void signal_all(const std::vector<pid_t>& pids, int signal) {
  for (pid_t pid : pids) ::kill(pid, signal);
}

}  // namespace

RankThrottle::RankThrottle() : thread_([this] { duty_cycle(); }) {}

RankThrottle::~RankThrottle() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  thread_.join();
}

void RankThrottle::hold(std::set<pid_t> rank_sessions, double share) {
  absl::MutexLock lock(&mutex_);
  sessions_ = std::move(rank_sessions);
  share_ = share;
}

void RankThrottle::release() { hold({}, 1); }

void RankThrottle::duty_cycle() {
  std::vector<pid_t> stopped;
  absl::MutexLock lock(&mutex_);
  auto holding = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return !sessions_.empty() && share_ < 1; };
  auto holding_or_stopping = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping_ || holding(); };
  auto released_or_stopping = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping_ || !holding(); };
  while (true) {
    if (!holding()) {
      signal_all(stopped, SIGCONT);
      stopped.clear();
    }
    mutex_.Await(absl::Condition(&holding_or_stopping));
    if (stopping_) break;
    // Once niced, a rank stays so: the farm's work comes last on a desktop.
    std::vector<pid_t> pids = processes_of(sessions_);
    for (pid_t pid : pids) ::setpriority(PRIO_PROCESS, static_cast<id_t>(pid), kLowestPriority);
    signal_all(stopped, SIGCONT);
    signal_all(pids, SIGCONT);
    stopped.clear();
    if (mutex_.AwaitWithTimeout(absl::Condition(&released_or_stopping), kPeriod * share_)) continue;
    // Children forked while it ran are stopped with it.
    stopped = processes_of(sessions_);
    signal_all(stopped, SIGSTOP);
    mutex_.AwaitWithTimeout(absl::Condition(&released_or_stopping), kPeriod * (1 - share_));
  }
  signal_all(stopped, SIGCONT);
}

}  // namespace pesc
