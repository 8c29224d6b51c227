#ifndef PESC_HTTP_EVENT_STREAM_H_
#define PESC_HTTP_EVENT_STREAM_H_

// GET /api/v1/events: server-sent events for the dashboard. Each stream
// sleeps until the farm's JobEvents (the news WatchJob wakes on) says
// something committed, then sends the jobs and workers that changed since it
// last wrote; a comment line every 15 s keeps proxies from closing it.
//
// Thread-safe.

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/coordinator.h"

namespace pesc::http {

class Api;

class EventStreams {
 public:
  explicit EventStreams(CoordinatorCore core);
  ~EventStreams();

  // How many times news came; a stream waits for it to move.
  int64_t generation();
  // Until the generation passes `seen`, `timeout` passes or stop(); false
  // once stopped.
  bool wait(int64_t seen, absl::Duration timeout);
  // Ends every stream, for the server to shut down.
  void stop();

  // A stream holds one of the server's threads while open: past `max_open`
  // streams a new one is refused, so that requests always find a thread.
  // The returned handle counts the stream until it is dropped.
  absl::StatusOr<std::shared_ptr<void>> open_one(int max_open);

 private:
  class Hub;
  std::shared_ptr<Hub> hub_;
};

void add_event_routes(Api& api, EventStreams& events, int max_open);

}  // namespace pesc::http

#endif  // PESC_HTTP_EVENT_STREAM_H_
