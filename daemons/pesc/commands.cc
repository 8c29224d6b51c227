#include "commands.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>

#include "admin_commands.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "executor/domain.h"
#include "client/client_types.h"
#include "farm/connection.h"
#include "pesc/pesc.h"
#include "progress.h"
#include "daemon_support.h"

namespace pesc::cli {
namespace {

FarmOptions farm_options(const Target& target) {
  FarmOptions options;
  options.coordinator = target.coordinator;
  options.state_dir = target.state_dir;
  options.slots = target.slots;
  options.token_file = target.token_file;
  options.tls_ca = target.tls_ca;
  options.tls_cert = target.tls_cert;
  options.tls_key = target.tls_key;
  return options;
}

int report_error(const Error& error) {
  std::cerr << "pesc: " << error.what() << "\n";
  return error.code() == ErrorCode::kInvalidArgument || error.code() == ErrorCode::kNotFound ? kExitUsage
                                                                                              : kExitFarmError;
}

// Commands about existing jobs need a farm that outlives this process.
std::optional<int> require_coordinator(const Target& target) {
  if (!coordinator_address(farm_options(target)).empty()) return std::nullopt;
  std::cerr << "pesc: this command needs a running coordinator: pass --coordinator HOST:PORT or set "
               "PESC_COORDINATOR (the embedded farm lives only as long as `pesc run`)\n";
  return kExitUsage;
}

// Prints each rank's output as soon as every lower rank's has been printed.
class OrderedPrinter {
 public:
  explicit OrderedPrinter(int repetitions) : pending_(static_cast<size_t>(repetitions)) {}
  void add(const RankResult& rank) {
    pending_[static_cast<size_t>(rank.rank)] = rank.output;
    while (next_ < pending_.size() && pending_[next_]) {
      std::fwrite(pending_[next_]->data(), 1, pending_[next_]->size(), stdout);
      pending_[next_].reset();
      ++next_;
    }
    std::fflush(stdout);
  }

 private:
  std::vector<std::optional<std::string>> pending_;
  size_t next_ = 0;
};


// Ctrl-C or SIGTERM while a job is followed cancels it, on the signal
// thread, so that a wait stuck on a lost connection cannot hold it up.
// The wait then ends as any cancelled job's does (what came back is saved);
// should it not end soon after, the process ends at once.
constexpr absl::Duration kWaitAfterCancel = absl::Seconds(2);
std::atomic<Job*> followed_job{nullptr};
std::atomic<bool> interrupted{false};
absl::Notification cancel_settled;
std::string cancel_outcome;  // written before cancel_settled is notified
absl::Notification follow_ended;

void cancel_followed_job(int) {
  // `timeout` and a terminal send the signal to the process group as well.
  if (interrupted.exchange(true)) return;
  Job* followed = followed_job.load();
  cancel_outcome = followed != nullptr ? followed->cancel_for_interrupt() : "interrupted";
  cancel_settled.Notify();
  if (!follow_ended.WaitForNotificationWithTimeout(kWaitAfterCancel)) {
    std::cerr << "pesc: " << cancel_outcome << std::endl;
    std::_Exit(kExitInterrupted);
  }
}

// Follows a job to its end, printing outputs in rank order; Ctrl-C cancels it.
int follow(Job& job, const std::string& out_dir) {
  followed_job = &job;
  on_termination_signal(cancel_followed_job);
  ProgressLine progress;
  OrderedPrinter printer(job.repetitions());
  std::string said_waiting;  // a job whose ranks have nowhere to run looks hung: say why, once
  while (!job.done()) {
    if (auto rank = job.next(std::chrono::milliseconds(200))) {
      progress.clear();
      printer.add(*rank);
    }
    const Progress now = job.progress();
    if (!now.waiting.empty() && now.waiting != said_waiting) {
      said_waiting = now.waiting;
      progress.clear();
      std::cerr << "pesc: the ranks wait: " << now.waiting << "\n";
    }
    progress.update(now);
  }
  progress.clear();
  Results results = job.wait();
  if (!out_dir.empty()) results.save(out_dir);
  for (const RankResult& rank : results) {
    if (rank.left_out.empty()) continue;
    std::cerr << "pesc: rank " << rank.rank << ": left out of its files (links leading outside its output_dir): "
              << absl::StrJoin(rank.left_out, ", ") << "\n";
  }
  if (interrupted) {
    cancel_settled.WaitForNotification();
    followed_job = nullptr;
    follow_ended.Notify();
    std::cerr << "pesc: interrupted; " << cancel_outcome << "\n";
    return kExitInterrupted;
  }
  followed_job = nullptr;
  std::vector<int> failed = results.failed_ranks();
  if (failed.empty()) return kExitOk;
  std::vector<int> shown(failed.begin(), failed.begin() + std::min<size_t>(failed.size(), 20));
  std::cerr << absl::StrFormat("pesc: %d of %d ranks failed (rank%s %s%s); their output is above\n", failed.size(),
                               results.size(), failed.size() == 1 ? "" : "s", absl::StrJoin(shown, ", "),
                               failed.size() > shown.size() ? ", ..." : "");
  for (int rank : shown) {
    const RankResult& result = results[static_cast<size_t>(rank)];
    if (!result.error.empty()) {
      std::cerr << "pesc: rank " << rank << " (" << to_string(result.failure_class) << "'s fault): " << result.error
                << "\n";
    }
  }
  return kExitRanksFailed;
}

const char* job_state_name(JobState state) {
  switch (state) {
    case JobState::kRunning: return "running";
    case JobState::kFinished: return "finished";
    case JobState::kCancelled: return "cancelled";
    case JobState::kFailed: return "failed";
    case JobState::kUnknown: return "unknown";
  }
  return "unknown";
}

template <typename T>
T or_throw(absl::StatusOr<T> value) {
  if (!value.ok()) throw Error(static_cast<ErrorCode>(value.status().code()), std::string(value.status().message()));
  return *std::move(value);
}

// Every rank's result, also of a job that failed as a whole: its failure
// is told, then its ranks are the results.
Results results_of(Job& job) {
  try {
    return job.wait();
  } catch (const Error& error) {
    if (!job.done()) throw;
    std::cerr << "pesc: " << error.what() << "\n";
    return job.wait();
  }
}

// The job's failed ranks so far, counted by whose fault it was.
JobReport::FailuresByClass failures_by_class(const Target& target, const std::string& job_id) {
  Farm farm("native", farm_options(target));
  Job job = farm.attach(job_id);
  std::vector<RankResult> finished;
  try {
    while (auto rank = job.next(std::chrono::milliseconds(200))) finished.push_back(*std::move(rank));
  } catch (const Error&) {
    // A failed job's watch ends with its failure, which status prints apart.
  }
  return JobReport::from(job_id, finished).failed_by_class;
}

std::shared_ptr<Connection> connect(const Target& target) { return or_throw(Connection::open(farm_options(target))); }

}  // namespace

int run(const Target& target, const RunArguments& arguments) {
  try {
    std::string domain = arguments.domain.empty() ? domain_for_file(arguments.process) : arguments.domain;
    if (arguments.detach && coordinator_address(farm_options(target)).empty()) {
      std::cerr << "pesc: --detach needs a running coordinator (--coordinator or PESC_COORDINATOR): the embedded "
                   "farm ends with this command\n";
      return kExitUsage;
    }
    Farm farm(domain, farm_options(target));
    Job job = farm.map(arguments.process, arguments.repetitions, arguments.parameters, arguments.options);
    if (arguments.detach) {
      std::cout << job.id() << "\n";
      return kExitOk;
    }
    return follow(job, arguments.out_dir);
  } catch (const Error& error) {
    return report_error(error);
  }
}

int wait(const Target& target, const std::string& job_id) {
  if (auto code = require_coordinator(target)) return *code;
  try {
    Farm farm("native", farm_options(target));
    Job job = farm.attach(job_id);
    return follow(job, "");
  } catch (const Error& error) {
    return report_error(error);
  }
}

int results(const Target& target, const std::string& job_id, const std::string& out_dir) {
  if (auto code = require_coordinator(target)) return *code;
  if (out_dir.empty()) {
    std::cerr << "pesc: results needs --out DIR\n";
    return kExitUsage;
  }
  try {
    Farm farm("native", farm_options(target));
    Job job = farm.attach(job_id);
    Results results = results_of(job);
    results.save(out_dir);
    std::cerr << "pesc: saved " << results.size() << " ranks to " << out_dir << "\n";
    return results.ok() ? kExitOk : kExitRanksFailed;
  } catch (const Error& error) {
    return report_error(error);
  }
}

int report(const Target& target, const std::string& job_id, const std::string& svg_file) {
  if (auto code = require_coordinator(target)) return *code;
  try {
    Farm farm("native", farm_options(target));
    Job job = farm.attach(job_id);
    JobReport report = results_of(job).report();
    std::cout << report.to_text();
    if (!svg_file.empty()) {
      std::ofstream svg(svg_file, std::ios::binary | std::ios::trunc);
      svg << report.timeline_svg();
      svg.close();
      if (!svg) {
        std::cerr << "pesc: cannot write the timeline to " << svg_file << "\n";
        return kExitUsage;
      }
      std::cerr << "pesc: timeline written to " << svg_file << "\n";
    }
    return kExitOk;
  } catch (const Error& error) {
    return report_error(error);
  }
}

int status(const Target& target, const std::string& job_id) {
  if (auto code = require_coordinator(target)) return *code;
  try {
    JobSummary job = or_throw(connect(target)->client().job(job_id));
    const Progress& p = job.progress;
    std::cout << absl::StrFormat(
        "job %s (%s): %s\n  %d ranks: %d pending, %d queued at workers, %d running, %d succeeded, %d failed, "
        "%d cancelled\n",
        job.id, job.name, job_state_name(job.state), p.total, p.pending, p.queued_at_workers, p.running,
        p.succeeded, p.failed, p.cancelled);
    if (p.failed > 0) std::cout << "  failed by fault: " << failures_by_class(target, job_id).to_text() << "\n";
    if (!job.failure.empty()) std::cout << "  failed: " << job.failure << "\n";
    if (!p.waiting.empty()) std::cout << "  waiting: " << p.waiting << "\n";
    return kExitOk;
  } catch (const Error& error) {
    return report_error(error);
  }
}

int cancel(const Target& target, const std::string& job_id) {
  if (auto code = require_coordinator(target)) return *code;
  try {
    JobSummary job = or_throw(connect(target)->client().cancel(job_id));
    std::cout << "job " << job.id << " " << job_state_name(job.state) << "\n";
    return kExitOk;
  } catch (const Error& error) {
    return report_error(error);
  }
}

int remove(const Target& target, const std::string& job_id) {
  if (auto code = require_coordinator(target)) return *code;
  try {
    uint64_t freed = or_throw(connect(target)->client().delete_job(job_id));
    std::cout << "job " << job_id << " deleted, " << freed << " bytes freed\n";
    return kExitOk;
  } catch (const Error& error) {
    return report_error(error);
  }
}

int jobs(const Target& target) {
  if (auto code = require_coordinator(target)) return *code;
  try {
    // Asked before the header is printed: an error comes alone, not under a table.
    const auto jobs = or_throw(connect(target)->client().jobs());
    std::cout << absl::StrFormat("%-14s %-10s %-10s %8s %8s %8s  %s\n", "JOB", "USER", "STATE", "RANKS", "DONE",
                                 "FAILED", "NAME");
    for (const JobSummary& job : jobs) {
      const Progress& p = job.progress;
      std::cout << absl::StrFormat("%-14s %-10s %-10s %8d %8d %8d  %s\n", job.id, job.user, job_state_name(job.state),
                                   p.total, p.succeeded + p.failed, p.failed, job.name);
    }
    return kExitOk;
  } catch (const Error& error) {
    return report_error(error);
  }
}

int workers(const Target& target) {
  if (auto code = require_coordinator(target)) return *code;
  try {
    const auto workers = or_throw(connect(target)->client().workers());  // before the header, as in jobs()
    std::cout << absl::StrFormat("%-24s %-16s %-11s %6s %8s %10s %5s %-8s %s\n", "WORKER", "HOST", "STATE", "SLOTS",
                                 "RUNNING", "RANKS DONE", "CPU", "VERSION", "ROOMS");
    for (const WorkerSummary& worker : workers) {
      const char* state = !worker.quarantined.empty() ? "quarantined"
                          : !worker.online            ? "offline"
                          : !worker.paused.empty()    ? "paused"
                          : !worker.throttled.empty() ? "throttled"
                                                      : "online";
      const std::string cpu =
          worker.online && worker.host_cpu_percent >= 0 ? absl::StrFormat("%.0f%%", worker.host_cpu_percent) : "-";
      std::cout << absl::StrFormat("%-24s %-16s %-11s %6d %8d %10d %5s %-8s %s\n", worker.id, worker.host, state,
                                   worker.slots, worker.running, worker.ranks_done, cpu,
                                   worker.version.empty() ? "-" : worker.version, absl::StrJoin(worker.rooms, ","));
      if (!worker.quarantined.empty()) {
        std::cout << "  no ranks for " << worker.id << " until it rejoins: " << worker.quarantined << "\n";
      }
      if (!worker.gpus.empty()) {
        std::vector<std::string> gpus;
        for (const WorkerGpu& gpu : worker.gpus) {
          gpus.push_back(absl::StrFormat("%d %s (capability %.1f, %d MiB)", gpu.index, gpu.name,
                                         gpu.compute_capability, gpu.memory_bytes >> 20));
        }
        std::cout << "  GPUs: " << absl::StrJoin(gpus, ", ") << "\n";
      }
      for (const UnavailableDomain& domain : worker.unavailable_domains) {
        std::cout << "  cannot run the " << domain.domain << " domain: " << domain.why << "\n";
      }
      if (!worker.paused.empty()) std::cout << "  takes no new ranks: " << worker.paused << "\n";
      if (!worker.throttled.empty()) std::cout << "  ranks held back: " << worker.throttled << "\n";
      if (worker.allocation_end != std::chrono::system_clock::time_point()) {
        std::cout << "  a pilot; its batch allocation ends "
                  << absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromChrono(worker.allocation_end),
                                      absl::LocalTimeZone())
                  << "\n";
      }
    }
    print_pool_troubles(target);
    return kExitOk;
  } catch (const Error& error) {
    return report_error(error);
  }
}

namespace {

// "3,7-9" -> 3, 7, 8, 9.
absl::StatusOr<std::vector<int>> parse_ranks(const std::string& text) {
  std::vector<int> ranks;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    std::pair<std::string, std::string> bounds = absl::StrSplit(part, absl::MaxSplits('-', 1));
    int first = 0;
    int last = 0;
    if (!absl::SimpleAtoi(bounds.first, &first) ||
        !absl::SimpleAtoi(bounds.second.empty() ? bounds.first : bounds.second, &last) || first < 0 ||
        last < first || last - first > 10'000'000) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--ranks takes rank numbers and ranges separated by commas, e.g. 3,7-9; \"", part, "\" is neither"));
    }
    for (int rank = first; rank <= last; ++rank) ranks.push_back(rank);
  }
  if (ranks.empty()) return absl::InvalidArgumentError("--ranks names no rank; e.g. --ranks 3,7-9");
  return ranks;
}

// A retry or a log the job's state refuses is the user's to change.
int report_refusal(const Error& error) {
  if (error.code() != ErrorCode::kFailedPrecondition && error.code() != ErrorCode::kOutOfRange) {
    return report_error(error);
  }
  std::cerr << "pesc: " << error.what() << "\n";
  return kExitUsage;
}

}  // namespace

int retry(const Target& target, const std::string& job_id, const std::string& ranks_text) {
  if (auto code = require_coordinator(target)) return *code;
  std::vector<int> ranks;
  if (!ranks_text.empty()) {
    absl::StatusOr<std::vector<int>> parsed = parse_ranks(ranks_text);
    if (!parsed.ok()) {
      std::cerr << "pesc: " << parsed.status().message() << "\n";
      return kExitUsage;
    }
    ranks = *std::move(parsed);
  }
  try {
    Farm farm("native", farm_options(target));
    Job job = farm.attach(job_id);
    std::vector<int> retried = job.retry(ranks);
    std::cerr << "pesc: job " << job_id << ": rank" << (retried.size() == 1 ? " " : "s ")
              << absl::StrJoin(retried, ", ") << " run again\n";
    return follow(job, "");
  } catch (const Error& error) {
    return report_refusal(error);
  }
}

int logs(const Target& target, const std::string& job_id, int rank, bool follow) {
  if (auto code = require_coordinator(target)) return *code;
  try {
    Farm farm("native", farm_options(target));
    RankLog log = farm.log(job_id, rank, follow);
    while (!log.ended()) {
      if (std::optional<std::string> piece = log.next(std::chrono::milliseconds(500))) {
        std::fwrite(piece->data(), 1, piece->size(), stdout);
        std::fflush(stdout);
      }
    }
    return kExitOk;
  } catch (const Error& error) {
    return report_refusal(error);
  }
}

}  // namespace pesc::cli
