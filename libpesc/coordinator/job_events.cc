#include "coordinator/job_events.h"

#include <utility>

namespace pesc {

JobEvents::JobEvents() : thread_([this] { run(); }) {}

JobEvents::~JobEvents() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  thread_.join();
}

void JobEvents::subscribe(std::weak_ptr<Listener> listener) {
  absl::MutexLock lock(&mutex_);
  listeners_.push_back(std::move(listener));
}

void JobEvents::published() {
  absl::MutexLock lock(&mutex_);
  news_ = true;
}

void JobEvents::published_at(absl::Time when) {
  absl::MutexLock lock(&mutex_);
  if (timers_.empty() || when < *timers_.begin()) timer_sooner_ = true;  // the wait's deadline moves up
  timers_.insert(when);
}

void JobEvents::run() {
  while (true) {
    std::vector<std::shared_ptr<Listener>> to_call;
    {
      absl::MutexLock lock(&mutex_);
      auto woken = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return news_ || stopping_ || timer_sooner_; };
      const absl::Time next_timer = timers_.empty() ? absl::InfiniteFuture() : *timers_.begin();
      mutex_.AwaitWithDeadline(absl::Condition(&woken), next_timer);
      if (stopping_) return;
      timer_sooner_ = false;
      const absl::Time now = absl::Now();
      const bool timer_due = !timers_.empty() && *timers_.begin() <= now;
      timers_.erase(timers_.begin(), timers_.upper_bound(now));
      if (!news_ && !timer_due) continue;  // a sooner timer came meanwhile
      news_ = false;
      std::erase_if(listeners_, [&](const std::weak_ptr<Listener>& weak) {
        std::shared_ptr<Listener> listener = weak.lock();
        if (!listener) return true;
        to_call.push_back(std::move(listener));
        return false;
      });
    }
    for (const std::shared_ptr<Listener>& listener : to_call) listener->on_news();
  }
}

}  // namespace pesc
