#ifndef PESC_COORDINATOR_OUTPUT_READS_H_
#define PESC_COORDINATOR_OUTPUT_READS_H_

// Reads of running ranks' output.txt (`pesc logs -f`) waiting for the
// worker's answer.
//
// Why a read and not a stream: a running rank's output stays where the rank
// writes it, in its output_dir on the worker. A follower's call asks that
// worker for the bytes past what the follower has (ReadOutput on the
// worker's stream) and waits a moment for them (OutputRead); a follower
// calls again and again until the rank ends, and then reads its result. So
// nothing flows while no one follows, nothing of a rank's output is kept
// twice, and a follower that goes away leaves nothing behind.
//
// Thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "ledger/job_types.h"

namespace pesc {

class OutputReads {
 public:
  struct Pending {
    absl::Notification answered;
    OutputAnswer answer;  // set before `answered`
  };
  // A new read of `worker_id`'s: the request_id for its ReadOutput, and
  // where its answer lands.
  std::pair<int64_t, std::shared_ptr<Pending>> open(const std::string& worker_id);
  // A worker's answer; ignored unless that worker was asked and is still waited for.
  void answer(const std::string& worker_id, OutputAnswer answer);
  // The reader stopped waiting (answered or not).
  void close(int64_t request_id);

 private:
  struct Asked {
    std::string worker_id;
    std::shared_ptr<Pending> pending;
  };
  absl::Mutex mutex_;
  int64_t last_id_ ABSL_GUARDED_BY(mutex_) = 0;
  std::map<int64_t, Asked> asked_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace pesc

#endif  // PESC_COORDINATOR_OUTPUT_READS_H_
