#ifndef PESC_COORDINATOR_WORKER_STREAM_H_
#define PESC_COORDINATOR_WORKER_STREAM_H_

// One worker's Connect stream, driven by gRPC's callbacks: the worker's
// messages go to FarmState as they arrive, and its Outbox is written out
// whenever it has something. No thread waits on a stream, so idle workers
// cost the coordinator only their heartbeats. A worker silent past its
// lease is cut by FarmState, which closes its outbox.

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/access.h"
#include "coordinator/farm_state.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

class WorkerStream final : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage> {
 public:
  // The reactor for gRPC to drive; it frees itself when the call is done.
  static grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* start(
      FarmState& state, Access& access, grpc::CallbackServerContext* context);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  WorkerStream(FarmState& state, grpc::CallbackServerContext* context, Caller caller);
  // The first message: it must register the worker.
  absl::Status register_worker();
  void handle(const v1::WorkerMessage& message);
  // The outbox has news, or the stream should end: the writing turn goes
  // to this thread unless another holds it.
  void outbox_ready();
  void end(const grpc::Status& status);
  // Only the holder of the writing turn: writes the outbox's next message,
  // or finishes the call once it should end.
  void write_next();

  FarmState& state_;
  grpc::CallbackServerContext* const context_;
  const Caller caller_;
  std::unique_ptr<Access::Session> session_;
  std::shared_ptr<WorkerStream> self_;  // alive until OnDone
  std::string worker_id_;               // once registered; read by gRPC's reads only
  v1::WorkerMessage reading_;
  v1::CoordinatorMessage writing_;  // gRPC reads it until OnWriteDone

  absl::Mutex mutex_;
  std::shared_ptr<Outbox> outbox_ ABSL_GUARDED_BY(mutex_);  // once registered
  bool turn_taken_ ABSL_GUARDED_BY(mutex_) = false;
  bool ready_ ABSL_GUARDED_BY(mutex_) = false;
  bool ending_ ABSL_GUARDED_BY(mutex_) = false;
  grpc::Status end_status_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace pesc

#endif  // PESC_COORDINATOR_WORKER_STREAM_H_
