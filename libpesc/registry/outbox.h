#ifndef PESC_REGISTRY_OUTBOX_H_
#define PESC_REGISTRY_OUTBOX_H_

// Messages waiting to go down one worker's stream, which drains it when
// told it has something (coordinator/worker_stream.h). Assignments and
// acknowledgements pushed while an earlier one still waits join it, so a
// busy stream carries batches.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

class Outbox {
 public:
  void assign(v1::Assignment assignment);
  void acknowledge(int64_t attempt_id);
  void push(v1::CoordinatorMessage message);
  // The next message; nullopt when there is none or when closed.
  std::optional<v1::CoordinatorMessage> pop();
  bool closed();
  void close();
  // Called after a message was queued or the outbox closed, on the caller's
  // thread (often under FarmState's lock: it must not call back into it).
  void on_ready(std::function<void()> ready);

 private:
  // The message that is still waiting last in line, when it is of this kind
  // and has room; otherwise a new one queued behind it.
  v1::CoordinatorMessage& joinable(v1::CoordinatorMessage::MessageCase kind, size_t adding_bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Calls on_ready's function, outside mutex_.
  void tell_ready();

  absl::Mutex mutex_;
  std::function<void()> ready_ ABSL_GUARDED_BY(mutex_);
  std::deque<v1::CoordinatorMessage> queue_ ABSL_GUARDED_BY(mutex_);
  size_t last_bytes_ ABSL_GUARDED_BY(mutex_) = 0;  // of queue_.back(), roughly
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace pesc

#endif  // PESC_REGISTRY_OUTBOX_H_
