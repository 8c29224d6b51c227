#include "registry/outbox.h"

#include <algorithm>
#include <utility>

#include "registry/registry_conversion.h"

namespace pesc {
namespace {

// A batch of assignments or acks stays well under gRPC's 4 MiB message cap.
constexpr size_t kBatchBytes = 1 << 20;

}  // namespace

void Outbox::assign(const AttemptOrder& order, const std::shared_ptr<const v1::JobDescription>& job) {
  v1::Assignment assignment = to_proto(order);
  {
    absl::MutexLock lock(&mutex_);
    if (closed_) return;
    const bool describe = describe_locked(order.job_id);
    size_t bytes = assignment.ByteSizeLong();
    if (describe) bytes += job->ByteSizeLong();
    v1::Assignments& batch = *joinable(v1::CoordinatorMessage::kAssignBatch, bytes).mutable_assign_batch();
    if (describe) *batch.add_jobs() = *job;
    *batch.add_assignments() = std::move(assignment);
  }
  tell_ready();
}

void Outbox::forget(const std::string& job_id) {
  {
    absl::MutexLock lock(&mutex_);
    if (closed_ || !described_.contains(job_id)) return;
    forget_locked(job_id);
  }
  tell_ready();
}

bool Outbox::describe_locked(const std::string& job_id) {
  auto [described, first] = described_.try_emplace(job_id, 0);
  described->second = ++assigned_;
  if (first && described_.size() > kDescribedJobs) {
    auto least_recent = std::min_element(described_.begin(), described_.end(),
                                         [](const auto& a, const auto& b) { return a.second < b.second; });
    forget_locked(least_recent->first);
  }
  return first;
}

void Outbox::forget_locked(const std::string& job_id) {
  described_.erase(job_id);
  joinable(v1::CoordinatorMessage::kForgetJobs, job_id.size()).mutable_forget_jobs()->add_job_ids(job_id);
}

void Outbox::acknowledge(int64_t attempt_id) {
  {
    absl::MutexLock lock(&mutex_);
    if (closed_) return;
    joinable(v1::CoordinatorMessage::kAck, sizeof attempt_id).mutable_ack()->add_attempt_ids(attempt_id);
  }
  tell_ready();
}

void Outbox::answer_registration(const RegistrationAnswer& answer) {
  v1::CoordinatorMessage message;
  *message.mutable_registered() = to_proto(answer);
  push(std::move(message));
}

void Outbox::start_gang(const GangStart& start) {
  v1::CoordinatorMessage message;
  *message.mutable_start_gang() = to_proto(start);
  push(std::move(message));
}

void Outbox::cancel(const std::vector<int64_t>& attempts) {
  if (attempts.empty()) return;
  v1::CoordinatorMessage message;
  *message.mutable_cancel()->mutable_attempt_ids() = {attempts.begin(), attempts.end()};
  push(std::move(message));
}

void Outbox::read_output(int64_t request_id, int64_t attempt_id, int64_t offset, int max_bytes) {
  v1::CoordinatorMessage message;
  v1::ReadOutput& read = *message.mutable_read_output();
  read.set_request_id(request_id);
  read.set_attempt_id(attempt_id);
  read.set_offset(offset);
  read.set_max_bytes(max_bytes);
  push(std::move(message));
}

v1::CoordinatorMessage& Outbox::joinable(v1::CoordinatorMessage::MessageCase kind, size_t adding_bytes) {
  if (queue_.empty() || queue_.back().message_case() != kind || last_bytes_ + adding_bytes > kBatchBytes) {
    queue_.emplace_back();
    last_bytes_ = 0;
  }
  last_bytes_ += adding_bytes;
  return queue_.back();
}

void Outbox::push(v1::CoordinatorMessage message) {
  {
    absl::MutexLock lock(&mutex_);
    if (closed_) return;
    queue_.push_back(std::move(message));
    last_bytes_ = kBatchBytes;  // nothing joins a message of another kind
  }
  tell_ready();
}

std::optional<v1::CoordinatorMessage> Outbox::pop() {
  absl::MutexLock lock(&mutex_);
  if (closed_ || queue_.empty()) return std::nullopt;
  v1::CoordinatorMessage message = std::move(queue_.front());
  queue_.pop_front();
  return message;
}

bool Outbox::closed() {
  absl::MutexLock lock(&mutex_);
  return closed_;
}

void Outbox::close() {
  {
    absl::MutexLock lock(&mutex_);
    closed_ = true;
  }
  tell_ready();
}

void Outbox::on_ready(std::function<void()> ready) {
  absl::MutexLock lock(&mutex_);
  ready_ = std::move(ready);
}

void Outbox::tell_ready() {
  std::function<void()> ready;
  {
    absl::MutexLock lock(&mutex_);
    ready = ready_;
  }
  if (ready) ready();
}

}  // namespace pesc
