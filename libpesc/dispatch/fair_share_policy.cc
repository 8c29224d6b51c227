#include "dispatch/fair_share_policy.h"

#include <algorithm>
#include <utility>

namespace pesc {
namespace {

// Short ranks go in chunks of about this much work each, of at most
// kMaxChunk ranks, and small enough that a job's tail still spreads over
// every slot.
constexpr double kChunkHorizonMs = 40;
constexpr int kMaxChunk = 64;
constexpr int kChunksPerSlotAtLeast = 4;

}  // namespace

void FairSharePolicy::place(DispatchRound& round) {
  if (round.has_failed()) return;
  std::vector<QueuedJob> queued_jobs;
  std::map<std::string, double> rank_ms_by_job;  // of every job, for the ranks workers hold
  for (const auto& [job_id, job] : round.jobs()) {
    rank_ms_by_job[job_id] = job.typical_rank_ms;
    if (job.pending <= 0 || job.spec.options.parallel) continue;
    QueuedJob queued = job.queued(job_id);
    // What a worker holds follows the pace of the job it is given, not
    // only its own pace, learnt from other jobs.
    queued.prefetch_per_slot = round.workers().prefetch_per_slot_at(job.typical_rank_ms);
    queued_jobs.push_back(std::move(queued));
  }
  if (queued_jobs.empty()) return;
  std::vector<WorkerCapacity> capacity = round.workers().capacity(rank_ms_by_job);
  std::erase_if(capacity, [&](const WorkerCapacity& worker) { return round.held().contains(worker.worker_id); });
  std::vector<Placement> placements = scheduler_.place(std::move(queued_jobs), std::move(capacity));
  std::map<std::string, std::vector<size_t>> placements_of_job;
  for (size_t i = 0; i < placements.size(); ++i) placements_of_job[placements[i].job_id].push_back(i);
  // Started per job in one ledger call; sent in the scheduler's order.
  std::map<size_t, JobStore::StartedAttempt> started_at;
  for (const auto& [job_id, indices] : placements_of_job) {
    if (!round.has_failed()) start_placed(round, job_id, placements, indices, started_at);
  }
  for (const auto& [index, attempt] : started_at) {
    const Placement& placement = placements[index];
    round.dispatched(placement.job_id, round.jobs()[placement.job_id], attempt, placement.gpus);
  }
}

void FairSharePolicy::start_placed(DispatchRound& round, const std::string& job_id,
                                   const std::vector<Placement>& placements, const std::vector<size_t>& indices,
                                   std::map<size_t, JobStore::StartedAttempt>& started_at) {
  auto pending = round.ledger().pending_ranks(job_id, static_cast<int>(indices.size()));
  if (!pending.ok()) return round.failed("finding pending ranks", pending.status());
  ActiveJob& job = round.jobs()[job_id];
  const int online_slots = round.workers().online_slots();
  // Workers that take this job in chunks get blocks of consecutive ranks
  // from the front; each other placement gets one rank.
  struct Chunked {
    std::string worker_id;
    int chunk = 0;  // ranks per chunk on it
    int ranks = 0;  // its placements
  };
  std::vector<Chunked> chunked;  // in placement order
  std::vector<size_t> single;
  for (size_t index : indices) {
    const std::string& worker_id = placements[index].worker_id;
    auto same =
        std::find_if(chunked.begin(), chunked.end(), [&](const Chunked& c) { return c.worker_id == worker_id; });
    if (same != chunked.end()) {
      same->ranks += 1;
    } else if (const int chunk = chunk_size(job, online_slots); chunk > 1) {
      chunked.push_back({.worker_id = worker_id, .chunk = chunk, .ranks = 1});
    } else {
      single.push_back(index);
    }
  }
  size_t next = 0;
  for (const Chunked& worker : chunked) {
    std::vector<int> block;
    for (; next < pending->size() && static_cast<int>(block.size()) < worker.ranks; ++next) {
      block.push_back((*pending)[next]);
    }
    assign_chunks(round, job_id, job, worker.worker_id, std::move(block), worker.chunk);
  }
  std::vector<JobStore::Placed> placed;
  std::map<int, size_t> placement_of_rank;
  for (size_t i = 0; next < pending->size() && i < single.size(); ++i, ++next) {
    placed.push_back({.rank = (*pending)[next], .worker_id = placements[single[i]].worker_id});
    placement_of_rank[(*pending)[next]] = single[i];
  }
  if (placed.empty()) return;
  auto started = round.ledger().start_attempts(job_id, placed, round.now_unix_ms());
  if (!started.ok()) return round.failed("starting attempts", started.status());
  for (JobStore::StartedAttempt& attempt : *started) started_at[placement_of_rank[attempt.rank]] = std::move(attempt);
}

int FairSharePolicy::chunk_size(const ActiveJob& job, int online_slots) {
  // A rank of a few milliseconds (a warm runner's, or a small program's)
  // costs the coordinator as much as it costs the worker to run it. Only
  // the job's own ranks tell that its ranks are short: the worker's last
  // job may have been quicker. Gangs, GPUs and checkpoints are per rank.
  if (job.spec.options.parallel || job.spec.options.gpus > 0 || job.spec.options.checkpoint_interval.count() > 0 ||
      job.typical_rank_ms < 0) {
    return 1;
  }
  const int by_time = static_cast<int>(kChunkHorizonMs / std::max(0.1, job.typical_rank_ms));
  const int by_tail = job.pending / (kChunksPerSlotAtLeast * std::max(1, online_slots));
  return std::clamp(std::min(by_time, by_tail), 1, kMaxChunk);
}

void FairSharePolicy::assign_chunks(DispatchRound& round, const std::string& job_id, ActiveJob& job,
                                    const std::string& worker_id, std::vector<int> ranks, int chunk) {
  std::sort(ranks.begin(), ranks.end());
  for (size_t first = 0; first < ranks.size();) {
    size_t end = first + 1;
    while (end < ranks.size() && ranks[end] == ranks[end - 1] + 1 && static_cast<int>(end - first) < chunk) ++end;
    const int count = static_cast<int>(end - first);
    absl::StatusOr<JobStore::StartedAttempt> started =
        count == 1 ? round.ledger().start_attempt(job_id, ranks[first], worker_id, round.now_unix_ms())
                   : round.ledger().start_chunk(job_id, ranks[first], count, worker_id, round.now_unix_ms());
    if (!started.ok()) return round.failed("starting a chunk", started.status());
    round.dispatched(job_id, job, *started);
    first = end;
  }
}

}  // namespace pesc
