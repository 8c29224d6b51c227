#include "dispatch/straggler_policy.h"

#include <algorithm>
#include <map>
#include <vector>

namespace pesc {
namespace {

// A rank is a straggler, worth a duplicate on an idle worker, once it has
// run this many times a typical rank's time, and at least this long.
constexpr double kStragglerFactor = 2;
constexpr double kStragglerMinMs = 1000;
// Looked for a few times a second rather than in every round (after every
// batch of results): a straggler is not missed for long, and a look costs a
// pass over every worker and a query.
constexpr int64_t kStragglerScanMs = 200;

}  // namespace

bool StragglerPolicy::may_have_stragglers(const ActiveJob& job) {
  // A GPU rank's duplicate would need GPUs of its own; not worth holding them.
  return job.pending <= 0 && !job.spec.options.no_duplicates && !job.spec.options.parallel &&
         !job.spec.options.same_machine && job.spec.options.gpus == 0;
}

std::optional<int64_t> StragglerPolicy::next_round_unix_ms(const ActiveJobs& jobs, int64_t now_unix_ms) const {
  std::optional<int64_t> next;
  for (const auto& [job_id, job] : jobs) {
    if (!may_have_stragglers(job)) continue;
    const int64_t look = std::max({last_look_unix_ms_ + kStragglerScanMs,
                                   job.created_unix_ms + static_cast<int64_t>(kStragglerMinMs), now_unix_ms});
    next = std::min(next.value_or(look), look);
  }
  return next;
}

bool StragglerPolicy::time_to_look(DispatchRound& round) {
  // No rank is a straggler before kStragglerMinMs, nor older than its job:
  // until some job is that old there is nothing to look for.
  const int64_t now = round.now_unix_ms();
  if (now - last_look_unix_ms_ < kStragglerScanMs ||
      std::none_of(round.jobs().begin(), round.jobs().end(), [&](const auto& job) {
        return static_cast<double>(now - job.second.created_unix_ms) >= kStragglerMinMs;
      })) {
    return false;
  }
  last_look_unix_ms_ = now;
  return true;
}

void StragglerPolicy::place(DispatchRound& round) {
  if (round.has_failed() || !time_to_look(round)) return;
  const WorkerRegistry& workers = round.workers();
  std::vector<WorkerCapacity> idle = workers.idle_slots(round.held());
  std::erase_if(idle, [](const WorkerCapacity& worker) { return worker.free <= 0; });
  if (idle.empty()) return;
  std::stable_sort(idle.begin(), idle.end(), [&](const WorkerCapacity& a, const WorkerCapacity& b) {
    return workers.typical_rank_ms(a.worker_id) < workers.typical_rank_ms(b.worker_id);
  });
  for (const auto& [job_id, job] : round.jobs()) {
    if (!may_have_stragglers(job)) continue;
    auto running = round.ledger().running_attempts(job_id);
    if (!running.ok()) return round.failed("finding stragglers", running.status());
    std::map<int, int> attempts_of_rank;
    for (const AttemptRecord& attempt : *running) attempts_of_rank[attempt.rank] += 1;
    const QueuedJob placement_rules = job.queued(job_id);
    for (const AttemptRecord& attempt : *running) {  // longest running first
      if (static_cast<double>(round.now_unix_ms() - attempt.started_unix_ms) < kStragglerMinMs) continue;
      if (attempt.rank_count > 1 || attempts_of_rank[attempt.rank] > 1 || workers.find(attempt.worker_id) == nullptr) {
        continue;
      }
      auto helper = std::find_if(idle.begin(), idle.end(), [&](const WorkerCapacity& worker) {
        return worker.free > 0 && worker.worker_id != attempt.worker_id && may_run_on(placement_rules, worker);
      });
      if (helper == idle.end()) continue;
      const double expected_ms =
          std::min(workers.typical_rank_ms(helper->worker_id), workers.typical_rank_ms(attempt.worker_id));
      const auto ran_ms = static_cast<double>(round.now_unix_ms() - attempt.started_unix_ms);
      if (ran_ms < std::max(kStragglerMinMs, kStragglerFactor * expected_ms)) continue;
      auto started = round.ledger().start_duplicate(job_id, attempt.rank, helper->worker_id, round.now_unix_ms());
      if (!started.ok()) return round.failed("starting a straggler's duplicate", started.status());
      round.send(job_id, job, *started);
      attempts_of_rank[attempt.rank] += 1;
      helper->free -= 1;
    }
  }
}

}  // namespace pesc
