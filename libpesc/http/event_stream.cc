#include "http/event_stream.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "coordinator/farm_state.h"
#include "http/api.h"
#include "http/json_views.h"
#include "ledger/ledger_conversion.h"
#include "registry/registry_conversion.h"

namespace pesc::http {

constexpr absl::Duration kKeepAlive = absl::Seconds(15);
// News comes with every batch of results; a stream sends what changed at
// most this often, so a busy farm costs each stream a few reads a second.
constexpr absl::Duration kMinGap = absl::Milliseconds(250);

class EventStreams::Hub final : public JobEvents::Listener {
 public:
  void on_news() override {
    absl::MutexLock lock(&mutex_);
    ++generation_;
  }
  int64_t generation() {
    absl::MutexLock lock(&mutex_);
    return generation_;
  }
  bool wait(int64_t seen, absl::Duration timeout) {
    absl::MutexLock lock(&mutex_);
    auto moved = [this, seen]() ABSL_SHARED_LOCKS_REQUIRED(mutex_) { return stopped_ || generation_ != seen; };
    mutex_.AwaitWithTimeout(absl::Condition(&moved), timeout);
    return !stopped_;
  }
  void stop() {
    absl::MutexLock lock(&mutex_);
    stopped_ = true;
  }
  bool try_open(int max_open) {
    absl::MutexLock lock(&mutex_);
    if (open_ >= max_open) return false;
    ++open_;
    return true;
  }
  void closed() {
    absl::MutexLock lock(&mutex_);
    --open_;
  }

 private:
  absl::Mutex mutex_;
  int open_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t generation_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mutex_) = false;
};

EventStreams::EventStreams(CoordinatorCore core) : hub_(std::make_shared<Hub>()) {
  core.state.events().subscribe(hub_);
}
EventStreams::~EventStreams() { stop(); }
int64_t EventStreams::generation() { return hub_->generation(); }
bool EventStreams::wait(int64_t seen, absl::Duration timeout) { return hub_->wait(seen, timeout); }
void EventStreams::stop() { hub_->stop(); }

absl::StatusOr<std::shared_ptr<void>> EventStreams::open_one(int max_open) {
  if (!hub_->try_open(max_open)) {
    return absl::UnavailableError(absl::StrCat("the coordinator serves ", max_open,
                                               " live event streams already; close a dashboard tab, or reload later"));
  }
  return std::shared_ptr<void>(nullptr, [hub = hub_](void*) { hub->closed(); });
}

namespace {

// One client's stream: what it was sent last, to send only what changed.
class Stream {
 public:
  Stream(Api& api, EventStreams& events, Caller caller, std::string token, std::string job_id)
      : api_(api), events_(events), caller_(std::move(caller)), token_(std::move(token)), job_id_(std::move(job_id)) {}

  enum class Turn { kWrote, kEnded, kReaderGone };

  // One turn: waits for news (not on the first), writes what changed. The
  // stream ends with the server, or once its token is revoked.
  Turn next(httplib::DataSink& sink) {
    if (started_) {
      if (!events_.wait(seen_, kKeepAlive)) return Turn::kEnded;
      if (const absl::Duration since = absl::Now() - last_sent_; since < kMinGap) absl::SleepFor(kMinGap - since);
      if (absl::Status still = api_.core().access.authenticate_token(token_, Needs::kUser).status(); !still.ok()) {
        const std::string out =
            absl::StrCat("event: error\ndata: ", nlohmann::json{{"error", still.message()}}.dump(), "\n\n");
        return sink.write(out.data(), out.size()) ? Turn::kEnded : Turn::kReaderGone;
      }
    }
    started_ = true;
    const int64_t generation = events_.generation();
    if (generation == seen_ && sent_anything_) return written(sink, ": keepalive\n\n");
    seen_ = generation;
    sent_anything_ = true;
    last_sent_ = absl::Now();
    std::string out;
    if (absl::Status read = changes(out); !read.ok()) {
      absl::StrAppend(&out, "event: error\ndata: ", nlohmann::json{{"error", read.message()}}.dump(), "\n\n");
    }
    if (out.empty()) out = ": nothing new\n\n";
    return written(sink, out);
  }

 private:
  static Turn written(httplib::DataSink& sink, std::string_view out) {
    return sink.write(out.data(), out.size()) ? Turn::kWrote : Turn::kReaderGone;
  }

  absl::Status changes(std::string& out) {
    auto jobs = api_.core().access.visible_jobs(caller_);
    if (!jobs.ok()) return jobs.status();
    for (const JobRecord& job : *jobs) {
      if (!job_id_.empty() && job.id != job_id_) continue;
      add_if_changed(out, "job", job.id, job_json(to_proto(job)).dump(), last_jobs_);
    }
    auto workers = api_.core().state.workers();
    if (!workers.ok()) return workers.status();
    for (const v1::WorkerInfo& worker : to_proto(*workers)) {
      add_if_changed(out, "worker", worker.id(), worker_json(worker).dump(), last_workers_);
    }
    return absl::OkStatus();
  }

  static void add_if_changed(std::string& out, const char* event, const std::string& id, std::string data,
                             std::map<std::string, std::string>& last) {
    std::string& previous = last[id];
    if (previous == data) return;
    absl::StrAppend(&out, "event: ", event, "\ndata: ", data, "\n\n");
    previous = std::move(data);
  }

  Api& api_;
  EventStreams& events_;
  const Caller caller_;
  const std::string token_;
  const std::string job_id_;
  bool started_ = false;
  bool sent_anything_ = false;
  int64_t seen_ = -1;
  absl::Time last_sent_ = absl::InfinitePast();
  std::map<std::string, std::string> last_jobs_;
  std::map<std::string, std::string> last_workers_;
};

}  // namespace

void add_event_routes(Api& api, EventStreams& events, int max_open) {
  api.get("/api/v1/events", Needs::kUser, [&api, &events, max_open](Call& call) -> absl::Status {
    std::string job_id = call.request.get_param_value("job");
    if (!job_id.empty()) {
      if (absl::Status allowed = api.check_job(call.caller, job_id); !allowed.ok()) return allowed;
    }
    auto held = events.open_one(max_open);
    if (!held.ok()) return held.status();
    auto stream = std::make_shared<Stream>(api, events, call.caller, call.token, std::move(job_id));
    call.response.set_header("Cache-Control", "no-store");
    call.response.set_header("X-Accel-Buffering", "no");
    call.response.set_chunked_content_provider("text/event-stream", [stream, held = *held](size_t,
                                                                                           httplib::DataSink& sink) {
      switch (stream->next(sink)) {
        case Stream::Turn::kWrote: return true;
        case Stream::Turn::kEnded: sink.done(); return true;
        case Stream::Turn::kReaderGone: return false;
      }
      return false;
    });
    return absl::OkStatus();
  });
}

}  // namespace pesc::http
