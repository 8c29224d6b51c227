#include "coordinator/job_watch.h"

#include <utility>

#include "absl/time/clock.h"
#include "ledger/ledger_conversion.h"
#include "transport/transport.h"

namespace pesc {
namespace {

// A client's default cap on a message it receives is 4 MiB.
constexpr size_t kEventBytes = 1 << 20;

// While a running job's results keep coming, reads of them are at least this
// far apart: what commits meanwhile goes in one event, not in an event (and
// a read of the store) per commit. The first result after a quiet spell and
// the job's end are read at once.
constexpr absl::Duration kStreamingPause = absl::Milliseconds(5);

bool same_progress(const v1::JobProgress& a, const v1::JobProgress& b) {
  return a.pending() == b.pending() && a.running() == b.running() && a.succeeded() == b.succeeded() &&
         a.failed() == b.failed() && a.cancelled() == b.cancelled() && a.waiting() == b.waiting() &&
         a.queued_at_workers() == b.queued_at_workers();
}

// Results in as few events as stay under kEventBytes each.
void add_results(std::vector<v1::RankResult>& results, std::deque<v1::JobEvent>& events) {
  size_t bytes = kEventBytes;  // so the first result opens an event
  for (v1::RankResult& result : results) {
    const size_t size = result.ByteSizeLong();
    if (bytes > 0 && bytes + size > kEventBytes) {
      events.emplace_back();
      bytes = 0;
    }
    bytes += size;
    *events.back().mutable_ranks_finished()->add_results() = std::move(result);
  }
}

}  // namespace

grpc::ServerWriteReactor<v1::JobEvent>* JobWatch::start(FarmState& state, Access& access,
                                                        grpc::CallbackServerContext* context,
                                                        const v1::WatchJobRequest& request) {
  std::shared_ptr<JobWatch> watch(new JobWatch(state, request.job_id(), request.after_seq()));
  watch->self_ = watch;
  auto caller = access.authorize_job(*context, request.job_id());
  if (!caller.ok()) {
    watch->finish(to_grpc(caller.status()));
    return watch.get();
  }
  watch->session_ = access.hold(*caller, context);
  state.events().subscribe(watch);
  watch->on_news();
  return watch.get();
}

JobWatch::JobWatch(FarmState& state, std::string job_id, int64_t after_seq)
    : state_(state), job_id_(std::move(job_id)), after_seq_(after_seq) {}

void JobWatch::on_news() {
  {
    absl::MutexLock lock(&mutex_);
    news_ = true;
    if (busy_ || finished_) return;
    busy_ = true;
  }
  write_next();
}

void JobWatch::OnWriteDone(bool ok) {
  if (!ok) {
    finish(grpc::Status::CANCELLED);
    return;
  }
  write_next();
}

void JobWatch::OnCancel() {
  {
    absl::MutexLock lock(&mutex_);
    cancelled_ = true;
    if (busy_) return;  // the turn's holder ends the call
    busy_ = true;
  }
  finish(grpc::Status::CANCELLED);
}

void JobWatch::OnDone() {
  session_.reset();  // before the context goes
  self_.reset();     // may delete this
}

void JobWatch::write_next() {
  while (waiting_.empty()) {
    if (ended_) {
      finish(grpc::Status::OK);
      return;
    }
    bool cancelled;
    std::optional<absl::Time> wake_at;  // the news waits until then
    {
      absl::MutexLock lock(&mutex_);
      cancelled = cancelled_;
      if (!news_ && !cancelled) {
        busy_ = false;
        return;
      }
      const absl::Time due = streaming_read_at_ + kStreamingPause;
      if (!cancelled && absl::Now() < due) {
        busy_ = false;  // news_ stays, for the wake-up at `due`
        if (wake_asked_for_ == due) return;
        wake_asked_for_ = due;
        wake_at = due;
      } else {
        news_ = false;
      }
    }
    if (wake_at) {
      state_.events().published_at(*wake_at);
      return;
    }
    if (cancelled) {
      finish(grpc::Status::CANCELLED);
      return;
    }
    if (absl::Status read = read_news(); !read.ok()) {
      finish(to_grpc(read));
      return;
    }
  }
  writing_ = std::move(waiting_.front());
  waiting_.pop_front();
  StartWrite(&writing_);
}

absl::Status JobWatch::read_news() {
  if (state_.shutting_down()) return absl::UnavailableError("the coordinator is shutting down");
  // The job first: once it has ended, every result of it is in the store,
  // so the results read next hold all that the end may close.
  auto view = state_.job(job_id_);
  if (!view.ok()) return view.status();
  v1::JobInfo job = to_proto(*view);
  auto results = state_.results_after(job_id_, after_seq_);
  if (!results.ok()) return results.status();
  if (!results->empty()) {
    after_seq_ = results->back().finish_seq;
    // A full batch may have more behind it.
    absl::MutexLock lock(&mutex_);
    news_ = true;
  }
  const bool more_results = !results->empty();
  const bool running = job.state() == v1::JOB_STATE_RUNNING;
  streaming_read_at_ = more_results && running ? absl::Now() : absl::InfinitePast();
  std::vector<v1::RankResult> finished = to_proto(*results);
  add_results(finished, waiting_);
  if (!last_progress_ || !same_progress(*last_progress_, job.progress())) {
    last_progress_ = job.progress();
    *waiting_.emplace_back().mutable_progress() = *last_progress_;
  }
  if (!running && !more_results) {
    *waiting_.emplace_back().mutable_job_done() = std::move(job);
    ended_ = true;
  }
  return absl::OkStatus();
}

void JobWatch::finish(const grpc::Status& status) {
  {
    absl::MutexLock lock(&mutex_);
    if (finished_) return;
    finished_ = true;
  }
  Finish(status);
}

}  // namespace pesc
