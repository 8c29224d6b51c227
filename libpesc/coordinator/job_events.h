#ifndef PESC_COORDINATOR_JOB_EVENTS_H_
#define PESC_COORDINATOR_JOB_EVENTS_H_

// Wakes whoever watches jobs once something they may want has committed:
// results, a job's progress, its end. Watchers sleep between news; nothing
// polls. Listeners are called on the notifier's own thread, never under
// the lock of whoever published, so they may read the farm's state; news
// that comes while they are being called wakes them once more, not once per
// publication.
//
// Thread-safe.

#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace pesc {

class JobEvents {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    // Something committed since the last call: read what is new.
    virtual void on_news() = 0;
  };

  JobEvents();
  ~JobEvents();
  JobEvents(const JobEvents&) = delete;
  JobEvents& operator=(const JobEvents&) = delete;

  // Held weakly: a listener that is gone is dropped.
  void subscribe(std::weak_ptr<Listener> listener);
  // After a commit, never before: listeners read the store at once.
  void published();
  // For what changes with time alone (why a job waits shows after a grace;
  // a count kept for a moment): listeners are called at `when`.
  void published_at(absl::Time when);

 private:
  void run();

  absl::Mutex mutex_;
  bool news_ ABSL_GUARDED_BY(mutex_) = false;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::weak_ptr<Listener>> listeners_ ABSL_GUARDED_BY(mutex_);
  std::set<absl::Time> timers_ ABSL_GUARDED_BY(mutex_);
  bool timer_sooner_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace pesc

#endif  // PESC_COORDINATOR_JOB_EVENTS_H_
