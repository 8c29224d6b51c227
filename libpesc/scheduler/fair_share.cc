#include "scheduler/fair_share.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace pesc {

bool may_run_on(const QueuedJob& job, const WorkerCapacity& worker) {
  if (worker.unavailable_domains.contains(job.domain)) return false;
  if (job.same_machine && !job.pinned_worker.empty() && job.pinned_worker != worker.worker_id) return false;
  if (std::find(worker.rooms.begin(), worker.rooms.end(), kEveryRoom) != worker.rooms.end()) return true;
  for (const std::string& room : job.rooms) {
    if (std::find(worker.rooms.begin(), worker.rooms.end(), room) != worker.rooms.end()) return true;
  }
  return false;
}

std::string why_waiting(const QueuedJob& job, const std::vector<ConnectedWorker>& workers) {
  if (job.pending <= 0) return "";
  if (workers.empty()) return "no worker is connected to the coordinator";
  std::vector<std::string> unavailable;
  std::set<std::string> rooms_served;
  std::vector<std::string> gpus_seen;  // of the workers in its rooms
  std::vector<std::string> cannot_run_domain;
  for (const ConnectedWorker& worker : workers) {
    if (auto why = worker.capacity.unavailable_domains.find(job.domain);
        why != worker.capacity.unavailable_domains.end()) {
      cannot_run_domain.push_back(absl::StrCat(worker.capacity.worker_id, ": ", why->second));
      continue;
    }
    if (!may_run_on(job, worker.capacity)) {
      rooms_served.insert(worker.capacity.rooms.begin(), worker.capacity.rooms.end());
      continue;
    }
    if (!gpus_for(job, worker.capacity)) {  // `free_gpus` holds all its GPUs here
      std::vector<std::string> capabilities;
      for (const FreeGpu& gpu : worker.capacity.free_gpus) {
        capabilities.push_back(absl::StrFormat("%.1f", gpu.compute_capability));
      }
      gpus_seen.push_back(absl::StrCat(worker.capacity.worker_id, ": ",
                                       capabilities.empty() ? "none" : absl::StrJoin(capabilities, " ")));
      continue;
    }
    if (worker.unavailable.empty()) return "";
    unavailable.push_back(absl::StrCat(worker.capacity.worker_id, " is ", worker.unavailable));
  }
  if (!unavailable.empty()) {
    return absl::StrCat("no worker that may run it takes ranks now: ", absl::StrJoin(unavailable, "; "));
  }
  if (!gpus_seen.empty()) {
    return absl::StrFormat("no connected worker has %d GPU%s of compute capability %.1f or more (GPU capabilities: %s)",
                           job.gpus_per_rank, job.gpus_per_rank == 1 ? "" : "s", job.min_capability,
                           absl::StrJoin(gpus_seen, "; "));
  }
  if (job.same_machine && !job.pinned_worker.empty()) {
    return absl::StrCat("its ranks run on one machine, and ", job.pinned_worker, " is not connected");
  }
  if (!cannot_run_domain.empty() && rooms_served.empty()) {
    return absl::StrCat("no worker can run the ", job.domain, " domain: ", absl::StrJoin(cannot_run_domain, "; "));
  }
  return absl::StrCat("no connected worker is in room ", absl::StrJoin(job.rooms, " or "),
                      " (connected workers serve ", absl::StrJoin(rooms_served, ", "),
                      "); start one with pesc-worker --room ", job.rooms.front());
}

GangPlan plan_gang(const QueuedJob& job, std::vector<WorkerCapacity> workers) {
  std::erase_if(workers, [&](const WorkerCapacity& worker) { return !may_run_on(job, worker); });
  std::stable_sort(workers.begin(), workers.end(), [](const WorkerCapacity& a, const WorkerCapacity& b) {
    return std::tie(b.free, a.worker_id) < std::tie(a.free, b.worker_id);
  });
  // The fewest workers, busiest last, whose slots can hold the whole gang.
  int slots = 0;
  int free = 0;
  size_t needed = 0;
  while (needed < workers.size() && slots < job.pending) {
    slots += workers[needed].slots;
    free += std::max(0, workers[needed].free);
    ++needed;
  }
  GangPlan plan;
  if (slots < job.pending) return plan;
  if (free < job.pending) {
    for (size_t w = 0; w < needed; ++w) plan.held.push_back(workers[w].worker_id);
    return plan;
  }
  for (size_t w = 0; w < needed && static_cast<int>(plan.placements.size()) < job.pending; ++w) {
    for (int slot = 0; slot < workers[w].free && static_cast<int>(plan.placements.size()) < job.pending; ++slot) {
      plan.placements.push_back({job.job_id, workers[w].worker_id});
    }
  }
  return plan;
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

// Whether a rank of the job given to the worker would start soon: a rank
// that holds its slot needs a slot that frees soon; short ones are counted
// per job, so one job's queued ranks never keep another job out.
bool has_room_for(const QueuedJob& job, const WorkerCapacity& worker) {
  if (job.prefetch_per_slot < 0) return true;
  if (job.holds_its_slot()) return worker.slots_freeing_soon > 0;
  auto held = worker.held_by_job.find(job.job_id);
  return held == worker.held_by_job.end() ||
         held->second < worker.slots_freeing_soon * (1 + job.prefetch_per_slot);
}

// The worker takes the job's rank: its room shrinks by the rank, and by the
// slot's room beyond it when the rank holds that slot.
void take_rank(const QueuedJob& job, WorkerCapacity& worker) {
  worker.free -= 1;
  worker.held_by_job[job.job_id] += 1;
  if (job.holds_its_slot()) {
    worker.slots_freeing_soon -= 1;
    worker.free -= worker.prefetch_per_slot;
  }
}

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
      if (job.pending <= 0 || !may_run_on(job, worker) || !has_room_for(job, worker) || !gpus_for(job, worker)) {
        continue;
      }
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
    take_rank(*chosen, worker);
    projected_ms[chosen->user] += typical_ms(chosen->user);
  }
  return placements;
}

}  // namespace pesc
