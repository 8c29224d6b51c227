#include "coordinator/output_reads.h"

#include <utility>

namespace pesc {

std::pair<int64_t, std::shared_ptr<OutputReads::Pending>> OutputReads::open(const std::string& worker_id) {
  absl::MutexLock lock(&mutex_);
  auto pending = std::make_shared<Pending>();
  asked_[++last_id_] = Asked{.worker_id = worker_id, .pending = pending};
  return {last_id_, pending};
}

void OutputReads::answer(const std::string& worker_id, OutputAnswer answer) {
  absl::MutexLock lock(&mutex_);
  auto asked = asked_.find(answer.request_id);
  if (asked == asked_.end() || asked->second.worker_id != worker_id) return;
  asked->second.pending->answer = std::move(answer);
  asked->second.pending->answered.Notify();
  asked_.erase(asked);
}

void OutputReads::close(int64_t request_id) {
  absl::MutexLock lock(&mutex_);
  asked_.erase(request_id);
}

}  // namespace pesc
