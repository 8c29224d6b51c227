#ifndef PESC_WORKER_COORDINATOR_LINK_H_
#define PESC_WORKER_COORDINATOR_LINK_H_

#include <deque>
#include <functional>
#include <memory>
#include <optional>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "pesc/v1/pesc.grpc.pb.h"

namespace pesc {

// A worker's stream to its coordinator, as a gRPC callback reactor: no
// thread of the worker waits on it. Messages go out in the order sent, one
// write at a time, from any thread; each message that comes in is handed to
// `on_message` on gRPC's thread, which must not block for long.
//
// send() may run a write's completion on the calling thread, so no caller
// may hold a lock that `on_message` takes.
class CoordinatorLink final : public grpc::ClientBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>,
                              public std::enable_shared_from_this<CoordinatorLink> {
 public:
  using OnMessage = std::function<void(CoordinatorLink& link, const v1::CoordinatorMessage& message)>;

  // Opens the stream with `hello` as its first message. `context` must
  // outlive wait().
  static std::shared_ptr<CoordinatorLink> open(v1::Workers::Stub& stub, grpc::ClientContext& context,
                                               v1::WorkerMessage hello, OnMessage on_message);

  // Queues a message; false once the stream is ending, when it is dropped
  // (what must arrive is sent again on the next stream).
  bool send(v1::WorkerMessage message);

  // Blocks until the stream ended; how it ended.
  grpc::Status wait();

 private:
  explicit CoordinatorLink(OnMessage on_message) : on_message_(std::move(on_message)) {}

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;
  // The message to write next, marked as being written; null when a write
  // is under way, nothing waits or the stream is ending.
  const v1::WorkerMessage* next_write() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const OnMessage on_message_;
  v1::CoordinatorMessage incoming_;  // gRPC fills it until OnReadDone
  absl::Mutex mutex_;
  std::deque<v1::WorkerMessage> outgoing_ ABSL_GUARDED_BY(mutex_);  // its front is being written while writing_
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool ending_ ABSL_GUARDED_BY(mutex_) = false;
  std::optional<grpc::Status> ended_ ABSL_GUARDED_BY(mutex_);
  // Keeps the reactor alive until gRPC is done with it, however soon the
  // opener lets go.
  std::shared_ptr<CoordinatorLink> self_;
};

}  // namespace pesc

#endif  // PESC_WORKER_COORDINATOR_LINK_H_
