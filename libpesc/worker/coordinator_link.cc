#include "worker/coordinator_link.h"

#include <utility>

namespace pesc {

std::shared_ptr<CoordinatorLink> CoordinatorLink::open(v1::Workers::Stub& stub, grpc::ClientContext& context,
                                                       v1::WorkerMessage hello, OnMessage on_message) {
  std::shared_ptr<CoordinatorLink> link(new CoordinatorLink(std::move(on_message)));
  link->self_ = link;
  stub.async()->Connect(&context, link.get());
  link->send(std::move(hello));
  link->StartRead(&link->incoming_);
  link->StartCall();
  return link;
}

bool CoordinatorLink::send(v1::WorkerMessage message) {
  const v1::WorkerMessage* write = nullptr;
  {
    absl::MutexLock lock(&mutex_);
    if (ending_) return false;
    outgoing_.push_back(std::move(message));
    write = next_write();
  }
  // Outside the lock: gRPC may call OnWriteDone before StartWrite returns.
  if (write != nullptr) StartWrite(write);
  return true;
}

const v1::WorkerMessage* CoordinatorLink::next_write() {
  if (writing_ || ending_ || outgoing_.empty()) return nullptr;
  writing_ = true;
  return &outgoing_.front();  // a deque's front stays put while others are pushed
}

void CoordinatorLink::OnWriteDone(bool ok) {
  const v1::WorkerMessage* write = nullptr;
  {
    absl::MutexLock lock(&mutex_);
    outgoing_.pop_front();
    writing_ = false;
    if (!ok) ending_ = true;  // the stream broke
    write = next_write();
  }
  if (write != nullptr) StartWrite(write);
}

void CoordinatorLink::OnReadDone(bool ok) {
  if (!ok) {
    // No write starts after this, so OnDone follows once the one under way
    // (if any) ends.
    absl::MutexLock lock(&mutex_);
    ending_ = true;
    return;
  }
  on_message_(*this, incoming_);
  StartRead(&incoming_);
}

void CoordinatorLink::OnDone(const grpc::Status& status) {
  std::shared_ptr<CoordinatorLink> self = std::move(self_);  // let go last, after the lock
  absl::MutexLock lock(&mutex_);
  ended_ = status;
}

grpc::Status CoordinatorLink::wait() {
  absl::MutexLock lock(&mutex_);
  mutex_.Await(absl::Condition(
      +[](std::optional<grpc::Status>* ended) { return ended->has_value(); }, &ended_));
  return *ended_;
}

}  // namespace pesc
