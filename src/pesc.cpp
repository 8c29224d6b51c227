// The R face of libpesc: thin Rcpp glue, the R API is in ../R/.
//
// Every function runs on R's main thread; libpesc's own threads never call
// into R (RcppParallel's lesson). pesc::Error becomes an R error through
// Rcpp::stop, with the code's name in front so R code can tell them apart.

#include <Rcpp.h>
#include <pthread.h>
#include <signal.h>

#include <pesc/pesc.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

// A Job keeps the Farm it came from alive: the R object holding the job
// holds the farm's pointer too, but the order R finalizes them in is not
// ours to choose.
struct JobHandle {
  std::shared_ptr<pesc::Farm> farm;
  pesc::Job job;
};

// Finalized when R exits too, so an embedded farm's temporary state goes
// even when the session never collects its garbage.
template <typename T>
using OwnedPtr = Rcpp::XPtr<T, Rcpp::PreserveStorage, Rcpp::standard_delete_finalizer<T>, true>;
using FarmPtr = OwnedPtr<std::shared_ptr<pesc::Farm>>;
using JobPtr = OwnedPtr<JobHandle>;
using ResultsPtr = OwnedPtr<pesc::Results>;
using RankLogPtr = OwnedPtr<pesc::RankLog>;

const char* code_name(pesc::ErrorCode code) {
  switch (code) {
    case pesc::ErrorCode::kCancelled: return "cancelled";
    case pesc::ErrorCode::kInvalidArgument: return "invalid_argument";
    case pesc::ErrorCode::kDeadlineExceeded: return "deadline_exceeded";
    case pesc::ErrorCode::kNotFound: return "not_found";
    case pesc::ErrorCode::kAlreadyExists: return "already_exists";
    case pesc::ErrorCode::kPermissionDenied: return "permission_denied";
    case pesc::ErrorCode::kResourceExhausted: return "resource_exhausted";
    case pesc::ErrorCode::kFailedPrecondition: return "failed_precondition";
    case pesc::ErrorCode::kAborted: return "aborted";
    case pesc::ErrorCode::kOutOfRange: return "out_of_range";
    case pesc::ErrorCode::kUnimplemented: return "unimplemented";
    case pesc::ErrorCode::kInternal: return "internal";
    case pesc::ErrorCode::kUnavailable: return "unavailable";
    case pesc::ErrorCode::kDataLoss: return "data_loss";
    case pesc::ErrorCode::kUnauthenticated: return "unauthenticated";
    default: return "unknown";
  }
}

// R's signal handlers (parallel's SIGCHLD handler, say) do not keep errno,
// and a futex wait in one of libpesc's or gRPC's threads that such a handler
// interrupts reads the handler's errno and aborts the process. So each call
// runs with asynchronous signals blocked: the threads it starts inherit that
// mask and leave every signal to R's own thread, which gets what arrived
// meanwhile when the call returns.
class AsyncSignalsHeld {
 public:
  AsyncSignalsHeld() {
    sigset_t held;
    sigfillset(&held);
    for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP}) sigdelset(&held, fault);
    pthread_sigmask(SIG_BLOCK, &held, &saved_);
  }
  AsyncSignalsHeld(const AsyncSignalsHeld&) = delete;
  AsyncSignalsHeld& operator=(const AsyncSignalsHeld&) = delete;
  ~AsyncSignalsHeld() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }

 private:
  sigset_t saved_;
};

// Runs `body`, turning pesc::Error into an R error "pesc [code]: message".
template <typename F>
auto guarded(F&& body) -> decltype(body()) {
  AsyncSignalsHeld signals;
  try {
    return body();
  } catch (const pesc::Error& error) {
    Rcpp::stop("pesc [%s]: %s", code_name(error.code()), error.what());
  }
}

double seconds_since_epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Entries left out of a rank's files, one string per rank for a data.frame column.
std::string joined_entries(const std::vector<std::string>& entries) {
  std::string joined;
  for (const std::string& entry : entries) joined += (joined.empty() ? "" : ", ") + entry;
  return joined;
}

Rcpp::List rank_row(const pesc::RankResult& r) {
  return Rcpp::List::create(
      Rcpp::Named("rank") = r.rank, Rcpp::Named("status") = pesc::to_string(r.status),
      Rcpp::Named("exit_code") = r.exit_code, Rcpp::Named("signal") = r.signal,
      Rcpp::Named("worker") = r.worker, Rcpp::Named("start") = seconds_since_epoch(r.start),
      Rcpp::Named("end") = seconds_since_epoch(r.end),
      Rcpp::Named("duration") = std::chrono::duration<double>(r.duration).count(),
      Rcpp::Named("cpu_time") = std::chrono::duration<double>(r.cpu_time).count(),
      Rcpp::Named("max_rss_kb") = static_cast<double>(r.max_rss_kb), Rcpp::Named("has_files") = r.has_files,
      Rcpp::Named("error") = r.error, Rcpp::Named("limit_exceeded") = r.limit_exceeded,
      Rcpp::Named("failure_class") = pesc::to_string(r.failure_class),
      Rcpp::Named("left_out") = joined_entries(r.left_out), Rcpp::Named("output") = r.output);
}

}  // namespace

// [[Rcpp::export(.pesc_farm_new)]]
SEXP pesc_farm_new(std::string domain, std::string coordinator, int slots, std::string state_dir) {
  return guarded([&] {
    pesc::FarmOptions options;
    options.coordinator = coordinator;
    options.slots = slots;
    options.state_dir = state_dir;
    auto farm = std::make_shared<pesc::Farm>(domain, options);
    return FarmPtr(new std::shared_ptr<pesc::Farm>(std::move(farm)), true);
  });
}

// [[Rcpp::export(.pesc_farm_describe)]]
std::string pesc_farm_describe(SEXP farm) {
  return guarded([&] { return (*FarmPtr(farm))->describe(); });
}

// `options`: a named list of character vectors, MapOptions by name
// (pesc::map_options_from reads and checks them).
pesc::NamedOptions named_options(const Rcpp::List& options) {
  pesc::NamedOptions named;
  if (options.size() == 0) return named;
  const Rcpp::CharacterVector names = options.names();
  for (R_xlen_t i = 0; i < options.size(); ++i) {
    named[Rcpp::as<std::string>(names[i])] = Rcpp::as<std::vector<std::string>>(options[i]);
  }
  return named;
}

// [[Rcpp::export(.pesc_farm_map)]]
SEXP pesc_farm_map(SEXP farm, std::string process, int repetitions, std::vector<std::string> parameters,
                   Rcpp::List options) {
  return guarded([&] {
    std::shared_ptr<pesc::Farm> owner = *FarmPtr(farm);
    pesc::Job job = owner->map(process, repetitions, parameters, pesc::map_options_from(named_options(options)));
    return JobPtr(new JobHandle{owner, std::move(job)}, true);
  });
}

// A farm whose ranks run on batch-system pilots of a session (`pool`: a
// named list of character vectors, PoolOptions by name).
// [[Rcpp::export(.pesc_farm_session)]]
SEXP pesc_farm_session(std::string domain, std::string state_dir, Rcpp::List pool) {
  return guarded([&] {
    pesc::FarmOptions options;
    options.state_dir = state_dir;
    options.pool = pesc::pool_options_from(named_options(pool));
    auto farm = std::make_shared<pesc::Farm>(domain, options);
    return FarmPtr(new std::shared_ptr<pesc::Farm>(std::move(farm)), true);
  });
}

// Ends a pool's session: its pilots are cancelled; nothing for other farms.
// [[Rcpp::export(.pesc_farm_close)]]
void pesc_farm_close(SEXP farm) {
  guarded([&] { (*FarmPtr(farm))->close(); });
}

// Stops with the error map() would give for these options, so that a
// mistake shows where they are set, not at the first submit.
// [[Rcpp::export(.pesc_check_options)]]
void pesc_check_options(Rcpp::List options) {
  guarded([&] { pesc::map_options_from(named_options(options)); });
}

// The built-in domain a file's name suggests, as the pesc CLI infers it.
// [[Rcpp::export(.pesc_domain_for_file)]]
std::string pesc_domain_for_file(std::string file_name) { return pesc::domain_for_file(file_name); }

// [[Rcpp::export(.pesc_farm_attach)]]
SEXP pesc_farm_attach(SEXP farm, std::string job_id) {
  return guarded([&] {
    std::shared_ptr<pesc::Farm> owner = *FarmPtr(farm);
    return JobPtr(new JobHandle{owner, owner->attach(job_id)}, true);
  });
}

// [[Rcpp::export(.pesc_job_id)]]
std::string pesc_job_id(SEXP job) { return JobPtr(job)->job.id(); }

// [[Rcpp::export(.pesc_job_warm_runner)]]
bool pesc_job_warm_runner(SEXP job) { return JobPtr(job)->job.warm_runner(); }

// The next rank to finish (a list), or NULL when none did within
// `timeout_ms`. Polls in short slices and checks for a user interrupt in
// between: on one, the job is cancelled on the farm and the interrupt goes
// on to R, so the session stays usable and no rank keeps running.
// [[Rcpp::export(.pesc_job_next)]]
SEXP pesc_job_next(SEXP job, int timeout_ms) {
  JobHandle* handle = JobPtr(job);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  return guarded([&]() -> SEXP {
    while (true) {
      std::optional<pesc::RankResult> rank = handle->job.next(std::chrono::milliseconds(50));
      if (rank) return rank_row(*rank);
      if (handle->job.done() || std::chrono::steady_clock::now() >= deadline) return R_NilValue;
      try {
        Rcpp::checkUserInterrupt();
      } catch (Rcpp::internal::InterruptedException&) {
        // Whether the job is really stopped; the interrupt itself goes on.
        REprintf("pesc: %s\n", handle->job.cancel_for_interrupt().c_str());
        throw;
      }
    }
  });
}

// [[Rcpp::export(.pesc_job_progress)]]
Rcpp::IntegerVector pesc_job_progress(SEXP job) {
  pesc::Progress p = JobPtr(job)->job.progress();
  return Rcpp::IntegerVector::create(Rcpp::Named("total") = p.total, Rcpp::Named("pending") = p.pending,
                                     Rcpp::Named("running") = p.running, Rcpp::Named("succeeded") = p.succeeded,
                                     Rcpp::Named("failed") = p.failed, Rcpp::Named("cancelled") = p.cancelled,
                                     Rcpp::Named("queued_at_workers") = p.queued_at_workers);
}

// [[Rcpp::export(.pesc_job_waiting)]]
std::string pesc_job_waiting(SEXP job) { return JobPtr(job)->job.progress().waiting; }

// [[Rcpp::export(.pesc_job_done)]]
bool pesc_job_done(SEXP job) { return JobPtr(job)->job.done(); }

// [[Rcpp::export(.pesc_job_cancel)]]
void pesc_job_cancel(SEXP job) {
  guarded([&] { JobPtr(job)->job.cancel(); });
}

// Every rank's result once all are in (call after .pesc_job_next returned
// every rank).
// [[Rcpp::export(.pesc_job_results)]]
SEXP pesc_job_results(SEXP job) {
  return guarded([&] { return ResultsPtr(new pesc::Results(JobPtr(job)->job.wait()), true); });
}

// The job of these results, running their failed ranks (or `ranks`) again.
// [[Rcpp::export(.pesc_results_retry)]]
SEXP pesc_results_retry(SEXP results, std::vector<int> ranks) {
  // The job reaches its farm through the results' connection; no Farm to hold.
  return guarded([&] { return JobPtr(new JobHandle{nullptr, ResultsPtr(results)->retry(ranks)}, true); });
}

// [[Rcpp::export(.pesc_job_log)]]
SEXP pesc_job_log(SEXP job, int rank, bool follow) {
  return guarded([&] { return RankLogPtr(new pesc::RankLog(JobPtr(job)->job.log(rank, follow)), true); });
}

// The next piece of the rank's output (raw), or NULL when none came within `timeout_ms`.
// [[Rcpp::export(.pesc_log_next)]]
SEXP pesc_log_next(SEXP log, int timeout_ms) {
  return guarded([&]() -> SEXP {
    std::optional<std::string> piece = RankLogPtr(log)->next(std::chrono::milliseconds(timeout_ms));
    if (!piece) return R_NilValue;
    Rcpp::RawVector bytes(piece->size());
    std::copy(piece->begin(), piece->end(), bytes.begin());
    return bytes;
  });
}

// [[Rcpp::export(.pesc_log_ended)]]
bool pesc_log_ended(SEXP log) { return RankLogPtr(log)->ended(); }

// [[Rcpp::export(.pesc_results_ranks)]]
Rcpp::List pesc_results_ranks(SEXP results) {
  const pesc::Results& r = *ResultsPtr(results);
  Rcpp::List rows(r.size());
  for (size_t i = 0; i < r.size(); ++i) rows[i] = rank_row(r[i]);
  return rows;
}

// [[Rcpp::export(.pesc_results_output)]]
std::string pesc_results_output(SEXP results) { return ResultsPtr(results)->output(); }

// [[Rcpp::export(.pesc_results_job_id)]]
std::string pesc_results_job_id(SEXP results) { return ResultsPtr(results)->job_id(); }

// The bytes of a file rank `rank` left in its output_dir, or NULL when it
// left none by that name.
// [[Rcpp::export(.pesc_results_read_file)]]
SEXP pesc_results_read_file(SEXP results, int rank, std::string relative) {
  return guarded([&]() -> SEXP {
    std::string bytes;
    try {
      bytes = ResultsPtr(results)->read_file(static_cast<size_t>(rank), relative);
    } catch (const pesc::Error& error) {
      if (error.code() == pesc::ErrorCode::kNotFound) return R_NilValue;
      throw;
    }
    Rcpp::RawVector raw(bytes.size());
    std::copy(bytes.begin(), bytes.end(), raw.begin());
    return raw;
  });
}

// [[Rcpp::export(.pesc_results_save)]]
void pesc_results_save(SEXP results, std::string dir) {
  guarded([&] { ResultsPtr(results)->save(dir); });
}

// The job's report (libpesc's JobReport) as plain R values: durations in
// seconds, the per-worker table and the timeline as column lists.
// [[Rcpp::export(.pesc_results_report)]]
Rcpp::List pesc_results_report(SEXP results) {
  return guarded([&] {
    const pesc::JobReport report = ResultsPtr(results)->report();
    auto seconds = [](std::chrono::milliseconds duration) { return std::chrono::duration<double>(duration).count(); };
    const size_t workers = report.workers.size();
    Rcpp::CharacterVector worker(workers);
    Rcpp::IntegerVector first_lane(workers), slots(workers), ranks(workers), failed(workers), max_rank(workers),
        retried(workers), lost_attempts(workers);
    Rcpp::NumericVector busy(workers), mean_time(workers), max_time(workers), utilization(workers), paused(workers);
    for (size_t i = 0; i < workers; ++i) {
      const pesc::WorkerReport& w = report.workers[i];
      worker[i] = w.worker;
      first_lane[i] = w.first_lane;
      slots[i] = w.slots;
      ranks[i] = w.ranks;
      failed[i] = w.failed;
      busy[i] = seconds(w.busy);
      mean_time[i] = seconds(w.mean_rank_time);
      max_time[i] = seconds(w.max_rank_time);
      max_rank[i] = w.max_rank;
      retried[i] = w.retried_ranks;
      lost_attempts[i] = w.lost_attempts;
      utilization[i] = w.utilization;
      paused[i] = seconds(w.paused);
    }
    const size_t stretches = report.paused_stretches.size();
    Rcpp::IntegerVector stretch_lane(stretches), stretch_lanes(stretches);
    Rcpp::NumericVector stretch_start(stretches), stretch_end(stretches);
    Rcpp::CharacterVector stretch_reason(stretches);
    for (size_t i = 0; i < stretches; ++i) {
      const pesc::PausedStretch& stretch = report.paused_stretches[i];
      stretch_lane[i] = stretch.first_lane;
      stretch_lanes[i] = stretch.lanes;
      stretch_start[i] = seconds(stretch.start);
      stretch_end[i] = seconds(stretch.end);
      stretch_reason[i] = stretch.reason;
    }
    const size_t bars = report.timeline.size();
    Rcpp::IntegerVector bar_rank(bars), bar_lane(bars);
    Rcpp::NumericVector bar_start(bars), bar_end(bars);
    Rcpp::CharacterVector bar_status(bars);
    for (size_t i = 0; i < bars; ++i) {
      const pesc::TimelineBar& bar = report.timeline[i];
      bar_rank[i] = bar.rank;
      bar_lane[i] = bar.lane;
      bar_start[i] = seconds(bar.start);
      bar_end[i] = seconds(bar.end);
      bar_status[i] = pesc::to_string(bar.status);
    }
    Rcpp::NumericVector lost = Rcpp::NumericVector::create(
        Rcpp::Named("before_first_start") = seconds(report.lost_before_first_start),
        Rcpp::Named("ramp_up") = seconds(report.lost_ramp_up),
        Rcpp::Named("between_ranks") = seconds(report.lost_between_ranks), Rcpp::Named("tail") = seconds(report.lost_tail),
        Rcpp::Named("after_last_end") = seconds(report.lost_after_last_end),
        Rcpp::Named("paused") = seconds(report.lost_paused));
    Rcpp::List figures = Rcpp::List::create(
        Rcpp::Named("job_id") = report.job_id, Rcpp::Named("ranks") = report.ranks,
        Rcpp::Named("succeeded") = report.succeeded, Rcpp::Named("failed") = report.failed,
        Rcpp::Named("cancelled") = report.cancelled, Rcpp::Named("never_ran") = report.never_ran,
        Rcpp::Named("slots") = report.slots, Rcpp::Named("wall") = seconds(report.wall),
        Rcpp::Named("rank_time") = seconds(report.rank_time), Rcpp::Named("speedup") = report.speedup,
        Rcpp::Named("efficiency") = report.efficiency, Rcpp::Named("lost") = lost,
        Rcpp::Named("overhead_per_rank") = static_cast<double>(report.overhead_per_rank.count()) / 1e6,
        Rcpp::Named("paused") = seconds(report.paused), Rcpp::Named("paused_reasons") = Rcpp::wrap(report.paused_reasons));
    return Rcpp::List::create(
        Rcpp::Named("figures") = figures, Rcpp::Named("lanes") = Rcpp::wrap(report.lanes),
        Rcpp::Named("workers") = Rcpp::List::create(
            Rcpp::Named("worker") = worker, Rcpp::Named("first_lane") = first_lane, Rcpp::Named("slots") = slots,
            Rcpp::Named("ranks") = ranks, Rcpp::Named("failed") = failed, Rcpp::Named("busy") = busy,
            Rcpp::Named("mean_rank_time") = mean_time, Rcpp::Named("max_rank_time") = max_time,
            Rcpp::Named("max_rank") = max_rank, Rcpp::Named("retried_ranks") = retried,
            Rcpp::Named("lost_attempts") = lost_attempts, Rcpp::Named("utilization") = utilization,
            Rcpp::Named("paused") = paused),
        Rcpp::Named("timeline") = Rcpp::List::create(Rcpp::Named("rank") = bar_rank, Rcpp::Named("lane") = bar_lane,
                                                     Rcpp::Named("start") = bar_start, Rcpp::Named("end") = bar_end,
                                                     Rcpp::Named("status") = bar_status),
        Rcpp::Named("paused_stretches") =
            Rcpp::List::create(Rcpp::Named("first_lane") = stretch_lane, Rcpp::Named("lanes") = stretch_lanes,
                               Rcpp::Named("start") = stretch_start, Rcpp::Named("end") = stretch_end,
                               Rcpp::Named("reason") = stretch_reason),
        Rcpp::Named("text") = report.to_text(), Rcpp::Named("svg") = report.timeline_svg());
  });
}
