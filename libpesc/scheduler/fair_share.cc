#include "scheduler/fair_share.h"

#include <algorithm>
#include <tuple>

namespace pesc {

bool may_run_on(const QueuedJob& job, const WorkerCapacity& worker) {
  if (job.same_machine && !job.pinned_worker.empty() && job.pinned_worker != worker.worker_id) return false;
  if (std::find(worker.rooms.begin(), worker.rooms.end(), kEveryRoom) != worker.rooms.end()) return true;
  for (const std::string& room : job.rooms) {
    if (std::find(worker.rooms.begin(), worker.rooms.end(), room) != worker.rooms.end()) return true;
  }
  return false;
}

std::optional<std::vector<FreeGpu>> gpus_for(const QueuedJob& job, const WorkerCapacity& worker) {
  std::vector<FreeGpu> fitting;
  for (const FreeGpu& gpu : worker.free_gpus) {
    if (gpu.compute_capability >= job.min_capability) fitting.push_back(gpu);
  }
  if (static_cast<int>(fitting.size()) < job.gpus_per_rank) return std::nullopt;
  std::stable_sort(fitting.begin(), fitting.end(), [](const FreeGpu& a, const FreeGpu& b) {
    return a.compute_capability < b.compute_capability;
  });
  fitting.resize(static_cast<size_t>(job.gpus_per_rank));
  return fitting;
}

namespace {

// Takes the rank's GPUs out of the worker's free ones; their indices.
std::vector<int> take_gpus(const QueuedJob& job, WorkerCapacity& worker) {
  const std::vector<FreeGpu> chosen = *gpus_for(job, worker);
  std::vector<int> taken;
  for (const FreeGpu& gpu : chosen) {
    taken.push_back(gpu.index);
    std::erase_if(worker.free_gpus, [&](const FreeGpu& free) { return free.index == gpu.index; });
  }
  return taken;
}

}  // namespace

void FairShareScheduler::charge(const std::string& user, int64_t rank_ms) {
  Account& account = accounts_[user];
  account.used_ms += std::max<int64_t>(0, rank_ms);
  account.ranks += 1;
}

void FairShareScheduler::set_usage(std::map<std::string, int64_t> used_ms_by_user) {
  accounts_.clear();
  for (const auto& [user, used_ms] : used_ms_by_user) accounts_[user].used_ms = used_ms;
}

std::vector<Placement> FairShareScheduler::place(std::vector<QueuedJob> jobs,
                                                 std::vector<WorkerCapacity> workers) const {
  std::stable_sort(jobs.begin(), jobs.end(), [](const QueuedJob& a, const QueuedJob& b) {
    return std::tie(a.created_unix_ms, a.job_id) < std::tie(b.created_unix_ms, b.job_id);
  });
  std::map<std::string, int64_t> projected_ms;  // usage plus what this round adds
  for (const QueuedJob& job : jobs) {
    auto account = accounts_.find(job.user);
    projected_ms[job.user] = account == accounts_.end() ? 0 : account->second.used_ms;
  }
  auto typical_ms = [&](const std::string& user) {
    auto account = accounts_.find(user);
    return account == accounts_.end() ? int64_t{1} : account->second.typical_ms();
  };

  std::vector<Placement> placements;
  std::vector<bool> exhausted(workers.size(), false);  // no queued job may run there
  while (true) {
    size_t best = workers.size();
    for (size_t w = 0; w < workers.size(); ++w) {
      if (exhausted[w] || workers[w].free <= 0) continue;
      if (best == workers.size() || std::tie(workers[w].free, workers[best].worker_id) >
                                        std::tie(workers[best].free, workers[w].worker_id)) {
        best = w;
      }
    }
    if (best == workers.size()) break;
    WorkerCapacity& worker = workers[best];

    QueuedJob* chosen = nullptr;
    for (QueuedJob& job : jobs) {
      if (job.pending <= 0 || !may_run_on(job, worker) || !gpus_for(job, worker)) continue;
      // Jobs are oldest first, so the first job of the least-used user wins.
      if (chosen == nullptr || projected_ms[job.user] < projected_ms[chosen->user]) chosen = &job;
    }
    if (chosen == nullptr) {
      exhausted[best] = true;
      continue;
    }
    placements.push_back({chosen->job_id, worker.worker_id, take_gpus(*chosen, worker)});
    chosen->pending -= 1;
    if (chosen->same_machine) chosen->pinned_worker = worker.worker_id;
    worker.free -= 1;
    projected_ms[chosen->user] += typical_ms(chosen->user);
  }
  return placements;
}

}  // namespace pesc
