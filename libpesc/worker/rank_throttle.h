#ifndef PESC_WORKER_RANK_THROTTLE_H_
#define PESC_WORKER_RANK_THROTTLE_H_

// Holds running ranks to a small share of the CPU while a person uses the
// machine: every process of theirs goes to nice 19 and is stopped and
// continued in turn (SIGSTOP, SIGCONT), running `share` of each short
// period. With no more ranks than cores, the ranks together then get at most
// `share` of the machine.
//
// Thread-safety: hold() and release() from any thread.

#include <sys/types.h>

#include <set>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace pesc {

class RankThrottle {
 public:
  RankThrottle();
  ~RankThrottle();  // every rank it stopped runs again
  RankThrottle(const RankThrottle&) = delete;
  RankThrottle& operator=(const RankThrottle&) = delete;

  // The processes of these sessions (the ranks') run `share` (0 to 1) of
  // the time from now on; ranks that come later are named in the next call.
  void hold(std::set<pid_t> rank_sessions, double share);
  // Lets them run freely again.
  void release();

 private:
  void duty_cycle();

  absl::Mutex mutex_;
  std::set<pid_t> sessions_ ABSL_GUARDED_BY(mutex_);
  double share_ ABSL_GUARDED_BY(mutex_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace pesc

#endif  // PESC_WORKER_RANK_THROTTLE_H_
