// JobReport::to_text: the report as a person reads it in a terminal.
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

double seconds(std::chrono::milliseconds duration) { return static_cast<double>(duration.count()) / 1000.0; }

std::string utc(std::chrono::system_clock::time_point t) {
  const std::time_t time = std::chrono::system_clock::to_time_t(t);
  std::tm parts{};
  gmtime_r(&time, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &parts);
  return text;
}

// The first few reasons a worker paused for; a long job can collect many.
std::string reasons_in_brief(const std::vector<std::string>& reasons) {
  constexpr size_t kShown = 3;
  if (reasons.size() <= kShown) return absl::StrJoin(reasons, "; ");
  return absl::StrCat(absl::StrJoin(reasons.begin(), reasons.begin() + kShown, "; "), "; and ",
                      reasons.size() - kShown, " more");
}

}  // namespace

std::string JobReport::FailuresByClass::to_text() const {
  return absl::StrFormat("job %d, rank %d, worker %d, owner %d", job, rank, worker, owner);
}

std::string JobReport::to_text() const {
  std::string text = absl::StrFormat("job %s: %d ranks, %d succeeded, %d failed, %d cancelled", job_id, ranks,
                                     succeeded, failed, cancelled);
  if (never_ran > 0) absl::StrAppendFormat(&text, " (%d never ran)", never_ran);
  text += "\n";
  if (failed > 0) {
    absl::StrAppend(&text, "  failed by fault    ", failed_by_class.to_text(), "\n");
  }
  if (timeline.empty()) return text + "no rank ran, so there is nothing to report on\n";

  const double capacity = static_cast<double>(slots) * seconds(wall);
  absl::StrAppendFormat(&text, "  wall time          %10.3f s   %s to %s\n", seconds(wall), utc(started),
                        utc(finished));
  if (paused.count() > 0) {
    absl::StrAppendFormat(&text, "  paused             %10.3f s   %.1f %% of the wall time a worker took no ranks (%s)\n",
                          seconds(paused), 100.0 * seconds(paused) / std::max(seconds(wall), 1e-3),
                          reasons_in_brief(paused_reasons));
  }
  absl::StrAppendFormat(&text, "  sum of rank times  %10.3f s\n", seconds(rank_time));
  absl::StrAppendFormat(&text, "  speedup            %10.2f     on %d slot%s (efficiency %.1f %%)\n", speedup, slots,
                        slots == 1 ? "" : "s", 100.0 * efficiency);
  absl::StrAppendFormat(&text, "  slot-time lost     %10.3f s   of %.3f s (slots x wall), %.1f ms per rank:\n",
                        seconds(lost()), capacity, static_cast<double>(overhead_per_rank.count()) / 1000.0);
  const std::pair<const char*, std::chrono::milliseconds> parts[] = {
      {"before the first rank started (submit, upload, dispatch)", lost_before_first_start},
      {"slots that started after the first one", lost_ramp_up},
      {"idle between ranks in a slot (dispatch, staging)", lost_between_ranks},
      {"idle while the last ranks finished (imbalance)", lost_tail},
      {"after the last rank ended (collecting results)", lost_after_last_end},
      {"paused worker: owner present / CPU busy / disk full", lost_paused},
  };
  for (const auto& [what, lost_time] : parts) {
    absl::StrAppendFormat(&text, "    %-58s %9.3f s\n", what, seconds(lost_time));
  }

  size_t name_width = 6;
  for (const WorkerReport& worker : workers) name_width = std::max(name_width, worker.worker.size());
  const int width = static_cast<int>(name_width);
  absl::StrAppendFormat(&text, "\n  %-*s %5s %6s %9s %8s %8s %7s %5s %7s %6s %6s\n", width, "worker", "slots", "ranks",
                        "busy s", "mean s", "max s", "(rank)", "util", "retried", "lost", "failed");
  for (const WorkerReport& worker : workers) {
    absl::StrAppendFormat(&text, "  %-*s %5d %6d %9.3f %8.3f %8.3f %7s %4.0f%% %7d %6d %6d\n", width, worker.worker,
                          worker.slots, worker.ranks, seconds(worker.busy), seconds(worker.mean_rank_time),
                          seconds(worker.max_rank_time),
                          worker.max_rank < 0 ? std::string("-") : absl::StrCat("(", worker.max_rank, ")"),
                          100.0 * worker.utilization, worker.retried_ranks, worker.lost_attempts, worker.failed);
  }
  text +=
      "  (slots: inferred from how many ranks ran at once; retried: ranks that needed more than one attempt;\n"
      "   lost: its attempts whose result was not kept, such as those lost with it)\n";
  return text;
}

}  // namespace pesc
