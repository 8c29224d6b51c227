// JobReport::from: the figures of a finished job, from its ranks' results.
//
// Lanes: a worker's ranks, sorted by start, each take the lowest-numbered
// lane that is free at their start (greedy interval partitioning). That uses
// exactly as many lanes as the most ranks that ran at once, which is the
// fewest slots the worker can have had.
//
// A worker's idle lanes while it was paused (its owner at it, its disk
// full) are charged to lost_paused, not to the part they fell in.
#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/rank_time.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

using std::chrono::milliseconds;
using TimePoint = std::chrono::system_clock::time_point;

bool known(TimePoint t) { return t.time_since_epoch().count() > 0; }

milliseconds between(TimePoint from, TimePoint to) {
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(to - from));
}

struct Span {
  TimePoint from, to;
};

// The spans sorted, with overlapping ones joined.
std::vector<Span> merged(std::vector<Span> spans) {
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.from < b.from; });
  std::vector<Span> out;
  for (const Span& span : spans) {
    if (!out.empty() && span.from <= out.back().to) {
      out.back().to = std::max(out.back().to, span.to);
    } else {
      out.push_back(span);
    }
  }
  return out;
}

milliseconds total(const std::vector<Span>& disjoint) {
  milliseconds sum{0};
  for (const Span& span : disjoint) sum += between(span.from, span.to);
  return sum;
}

milliseconds overlap(const std::vector<Span>& disjoint, TimePoint from, TimePoint to) {
  milliseconds sum{0};
  for (const Span& span : disjoint) sum += between(std::max(span.from, from), std::min(span.to, to));
  return sum;
}

// Each worker's pauses clipped to [started, finished]; one still going ends at `finished`.
std::map<std::string, std::vector<WorkerPause>> pauses_by_worker(const std::vector<WorkerPause>& pauses,
                                                                 TimePoint started, TimePoint finished) {
  std::map<std::string, std::vector<WorkerPause>> by_worker;
  for (WorkerPause pause : pauses) {
    pause.start = std::max(pause.start, started);
    pause.end = std::min(known(pause.end) ? pause.end : finished, finished);
    if (pause.end > pause.start) by_worker[pause.worker].push_back(std::move(pause));
  }
  for (auto& [worker, its_pauses] : by_worker) {
    std::sort(its_pauses.begin(), its_pauses.end(),
              [](const WorkerPause& a, const WorkerPause& b) { return a.start < b.start; });
  }
  return by_worker;
}

std::vector<Span> spans_of(const std::vector<WorkerPause>& pauses) {
  std::vector<Span> spans;
  for (const WorkerPause& pause : pauses) spans.push_back({pause.start, pause.end});
  return merged(std::move(spans));
}

// Assigns each of one worker's ranks (sorted by start) a lane from 0; returns how many lanes it took.
int assign_lanes(const std::vector<const RankResult*>& sorted, std::vector<int>& lane_of) {
  std::vector<TimePoint> lane_free_at;
  lane_of.assign(sorted.size(), 0);
  for (size_t i = 0; i < sorted.size(); ++i) {
    auto free = std::find_if(lane_free_at.begin(), lane_free_at.end(),
                             [&](TimePoint end) { return end <= sorted[i]->start; });
    if (free == lane_free_at.end()) free = lane_free_at.insert(free, sorted[i]->end);
    *free = sorted[i]->end;
    lane_of[i] = static_cast<int>(free - lane_free_at.begin());
  }
  return static_cast<int>(lane_free_at.size());
}

// Each attempt not kept goes to the worker that ran it, which may have kept
// none of its ranks (a worker lost with them): it is listed all the same.
void charge_lost_attempts(const std::vector<RankResult>& ranks, JobReport& report) {
  for (const RankResult& rank : ranks) {
    for (const std::string& name : rank.other_attempt_workers) {
      auto worker = std::find_if(report.workers.begin(), report.workers.end(),
                                 [&](const WorkerReport& listed) { return listed.worker == name; });
      if (worker == report.workers.end()) {
        worker = report.workers.insert(report.workers.end(), WorkerReport{.worker = name, .first_lane = report.slots});
      }
      ++worker->lost_attempts;
    }
  }
  std::stable_sort(report.workers.begin(), report.workers.end(),
                   [](const WorkerReport& a, const WorkerReport& b) { return a.worker < b.worker; });
}

void count_failure(FailureClass failure_class, JobReport::FailuresByClass& counts) {
  switch (failure_class) {
    case FailureClass::kNone: break;
    case FailureClass::kJob: ++counts.job; break;
    case FailureClass::kRank: ++counts.rank; break;
    case FailureClass::kWorker: ++counts.worker; break;
    case FailureClass::kOwner: ++counts.owner; break;
  }
}

}  // namespace

JobReport JobReport::from(const std::string& job_id, const std::vector<RankResult>& ranks, TimePoint submitted,
                          TimePoint finished, const std::vector<WorkerPause>& pauses) {
  JobReport report;
  report.job_id = job_id;
  report.ranks = static_cast<int>(ranks.size());

  std::map<std::string, std::vector<const RankResult*>> by_worker;
  TimePoint first_start = TimePoint::max(), last_end = TimePoint::min();
  for (const RankResult& rank : ranks) {
    if (rank.status == RankStatus::kSucceeded) ++report.succeeded;
    if (rank.status == RankStatus::kFailed) ++report.failed;
    count_failure(rank.failure_class, report.failed_by_class);
    if (rank.status == RankStatus::kCancelled) ++report.cancelled;
    if (!rank_ran(rank)) {
      ++report.never_ran;
      continue;
    }
    by_worker[rank.worker].push_back(&rank);
    first_start = std::min(first_start, rank.start);
    last_end = std::max(last_end, rank.end);
  }
  if (by_worker.empty()) {
    charge_lost_attempts(ranks, report);
    report.started = submitted;
    report.finished = known(finished) ? finished : submitted;
    report.wall = between(report.started, report.finished);
    return report;
  }
  // A worker clock ahead of the coordinator's would put ranks before the
  // submit; keep every figure inside [started, finished].
  report.started = known(submitted) ? std::min(submitted, first_start) : first_start;
  report.finished = known(finished) ? std::max(finished, last_end) : last_end;
  report.wall = between(report.started, report.finished);

  const auto worker_pauses = pauses_by_worker(pauses, report.started, report.finished);
  std::vector<Span> any_paused;
  std::set<std::string> reasons;
  int ran_count = 0;
  for (auto& [name, worker_ranks] : by_worker) {
    const auto paused_here = worker_pauses.find(name);
    const std::vector<WorkerPause> no_pauses;
    const std::vector<WorkerPause>& own_pauses = paused_here == worker_pauses.end() ? no_pauses : paused_here->second;
    const std::vector<Span> paused_spans = spans_of(own_pauses);
    // An idle stretch of one lane: its paused part is lost_paused, the rest `part`.
    auto idle = [&](TimePoint from, TimePoint to, milliseconds& part) {
      const milliseconds paused = overlap(paused_spans, from, to);
      report.lost_paused += paused;
      part += between(from, to) - paused;
    };
    std::sort(worker_ranks.begin(), worker_ranks.end(), [](const RankResult* a, const RankResult* b) {
      return std::tie(a->start, a->end, a->rank) < std::tie(b->start, b->end, b->rank);
    });
    std::vector<int> lane_of;
    WorkerReport worker;
    worker.worker = name;
    worker.first_lane = report.slots;
    worker.slots = assign_lanes(worker_ranks, lane_of);
    report.slots += worker.slots;
    for (int slot = 0; slot < worker.slots; ++slot) report.lanes.push_back(absl::StrCat(name, " #", slot));

    std::vector<TimePoint> lane_end(static_cast<size_t>(worker.slots), TimePoint::min());
    for (size_t i = 0; i < worker_ranks.size(); ++i) {
      const RankResult& rank = *worker_ranks[i];
      const milliseconds run_time = between(rank.start, rank.end);
      TimePoint& previous_end = lane_end[static_cast<size_t>(lane_of[i])];
      if (previous_end == TimePoint::min()) {
        idle(report.started, first_start, report.lost_before_first_start);
        idle(first_start, rank.start, report.lost_ramp_up);
      } else {
        idle(previous_end, rank.start, report.lost_between_ranks);
      }
      previous_end = rank.end;

      ++worker.ranks;
      if (rank.status != RankStatus::kSucceeded) ++worker.failed;
      worker.busy += run_time;
      if (run_time > worker.max_rank_time || worker.max_rank < 0) {
        worker.max_rank_time = run_time;
        worker.max_rank = rank.rank;
      }
      if (rank.attempts > 1) ++worker.retried_ranks;
      report.timeline.push_back(TimelineBar{rank.rank, worker.first_lane + lane_of[i],
                                            between(report.started, rank.start), between(report.started, rank.end),
                                            rank.status});
    }
    for (TimePoint end : lane_end) {
      idle(end, last_end, report.lost_tail);
      idle(last_end, report.finished, report.lost_after_last_end);
    }
    worker.paused = total(paused_spans);
    any_paused.insert(any_paused.end(), paused_spans.begin(), paused_spans.end());
    for (const WorkerPause& pause : own_pauses) {
      reasons.insert(pause.reason);
      report.paused_stretches.push_back(PausedStretch{worker.first_lane, worker.slots,
                                                      between(report.started, pause.start),
                                                      between(report.started, pause.end), pause.reason});
    }
    worker.mean_rank_time = worker.busy / worker.ranks;
    const double capacity_ms = static_cast<double>(worker.slots) * static_cast<double>(report.wall.count());
    worker.utilization = capacity_ms > 0 ? static_cast<double>(worker.busy.count()) / capacity_ms : 0.0;
    report.rank_time += worker.busy;
    ran_count += worker.ranks;
    report.workers.push_back(std::move(worker));
  }
  charge_lost_attempts(ranks, report);
  report.paused = total(merged(std::move(any_paused)));
  report.paused_reasons.assign(reasons.begin(), reasons.end());
  report.overhead_per_rank = std::chrono::duration_cast<std::chrono::microseconds>(report.lost()) / ran_count;
  if (report.wall.count() > 0) {
    report.speedup = static_cast<double>(report.rank_time.count()) / static_cast<double>(report.wall.count());
    report.efficiency = report.speedup / report.slots;
  }
  std::stable_sort(report.timeline.begin(), report.timeline.end(), [](const TimelineBar& a, const TimelineBar& b) {
    return std::tie(a.lane, a.start) < std::tie(b.lane, b.start);
  });
  return report;
}

}  // namespace pesc
