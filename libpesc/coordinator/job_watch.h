#ifndef PESC_COORDINATOR_JOB_WATCH_H_
#define PESC_COORDINATOR_JOB_WATCH_H_

// One WatchJob call: it sends what is new of its job (results in finish
// order, progress when it changes, the job's end) whenever JobEvents says
// something committed, and sleeps otherwise. It holds no thread while it
// waits, so many watching clients cost nothing but memory. While one write
// is on its way, what commits meanwhile waits and goes together after it;
// while results stream in, reads come at most every few milliseconds.

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/access.h"
#include "coordinator/farm_state.h"
#include "coordinator/job_events.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

class JobWatch final : public grpc::ServerWriteReactor<v1::JobEvent>, public JobEvents::Listener {
 public:
  // The reactor for gRPC to drive; it frees itself when the call is done.
  static grpc::ServerWriteReactor<v1::JobEvent>* start(FarmState& state, Access& access,
                                                        grpc::CallbackServerContext* context,
                                                        const v1::WatchJobRequest& request);

  void on_news() override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  JobWatch(FarmState& state, std::string job_id, int64_t after_seq);
  // Writes the next waiting event, reading the state first when none waits
  // and there is news; ends the call after the job's end. Only the holder
  // of the turn (busy_) calls it.
  void write_next();
  // What is new since the last read, into waiting_.
  absl::Status read_news();
  void finish(const grpc::Status& status);

  FarmState& state_;
  const std::string job_id_;
  std::unique_ptr<Access::Session> session_;
  std::shared_ptr<JobWatch> self_;  // alive until OnDone

  // Touched only by the holder of the turn.
  int64_t after_seq_;
  std::optional<v1::JobProgress> last_progress_;
  std::deque<v1::JobEvent> waiting_;
  bool ended_ = false;  // the job's end is in waiting_ or written
  // When a read last found results of the still running job; the next
  // read waits for kStreamingPause after it.
  absl::Time streaming_read_at_ = absl::InfinitePast();
  v1::JobEvent writing_;  // gRPC reads it until OnWriteDone

  absl::Mutex mutex_;
  bool news_ ABSL_GUARDED_BY(mutex_) = true;  // the first read is due
  bool busy_ ABSL_GUARDED_BY(mutex_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mutex_) = false;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  // The wake-up asked of JobEvents for news held back; asked once.
  absl::Time wake_asked_for_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
};

}  // namespace pesc

#endif  // PESC_COORDINATOR_JOB_WATCH_H_
