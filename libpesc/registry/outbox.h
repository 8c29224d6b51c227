#ifndef PESC_REGISTRY_OUTBOX_H_
#define PESC_REGISTRY_OUTBOX_H_

// Messages waiting to go down one worker's stream, which drains it when
// told it has something (coordinator/worker_stream.h). Assignments and
// acknowledgements pushed while an earlier one still waits join it, so a
// busy stream carries batches.
//
// An outbox lives as long as its stream, and knows which jobs the stream
// has described to the worker: a job's description goes with its first
// assignment, and again only after the worker was told to forget it (its
// job ended, or more jobs were described than a worker keeps). The worker
// keeps exactly what it was told and not told to forget on this stream.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "pesc/v1/pesc.pb.h"
#include "registry/worker_types.h"

namespace pesc {

class Outbox {
 public:
  // Described, past this many jobs a stream forgets the one it assigned
  // least recently.
  static constexpr size_t kDescribedJobs = 64;

  // `job` (never null): what every rank of the order's job runs, which
  // goes with it unless the stream described the job already.
  void assign(const AttemptOrder& order, const std::shared_ptr<const v1::JobDescription>& job);
  // The job ended: the worker drops its description, if it has it.
  void forget(const std::string& job_id);
  void acknowledge(int64_t attempt_id);
  // The worker's first message on this stream.
  void answer_registration(const RegistrationAnswer& answer);
  // Where the gang's ranks meet: the worker starts its attempts of it.
  void start_gang(const GangStart& start);
  // The worker stops these attempts, or drops them unstarted, and forgets them.
  void cancel(const std::vector<int64_t>& attempts);
  // Asks for output.txt of a running attempt from `offset`, at most
  // `max_bytes` of it; the worker answers with an OutputRead of `request_id`.
  void read_output(int64_t request_id, int64_t attempt_id, int64_t offset, int max_bytes);
  // The next message; nullopt when there is none or when closed.
  std::optional<v1::CoordinatorMessage> pop();
  bool closed();
  void close();
  // Called after a message was queued or the outbox closed, on the caller's
  // thread (often under FarmState's lock: it must not call back into it).
  void on_ready(std::function<void()> ready);

 private:
  void push(v1::CoordinatorMessage message);
  // The message that is still waiting last in line, when it is of this kind
  // and has room; otherwise a new one queued behind it.
  v1::CoordinatorMessage& joinable(v1::CoordinatorMessage::MessageCase kind, size_t adding_bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Calls on_ready's function, outside mutex_.
  void tell_ready();
  // Whether the job must be described now (the stream has not, or has
  // forgotten it); marks it described and assigned last.
  bool describe_locked(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Tells the worker to drop the description of a job the stream described.
  void forget_locked(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  absl::Mutex mutex_;
  std::function<void()> ready_ ABSL_GUARDED_BY(mutex_);
  std::deque<v1::CoordinatorMessage> queue_ ABSL_GUARDED_BY(mutex_);
  size_t last_bytes_ ABSL_GUARDED_BY(mutex_) = 0;  // of queue_.back(), roughly
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
  // The jobs the worker holds a description of, with when each was last
  // assigned (a count of assignments), to forget the least recent first.
  std::map<std::string, uint64_t> described_ ABSL_GUARDED_BY(mutex_);
  uint64_t assigned_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace pesc

#endif  // PESC_REGISTRY_OUTBOX_H_
