#include "dispatch/gang_policy.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pesc {

// Oldest first, so a younger gang never takes the slots an older one waits
// for; each waits on its own held workers, so gangs cannot deadlock.
void GangPolicy::place(DispatchRound& round) {
  if (round.has_failed()) return;
  std::vector<std::pair<int64_t, std::string>> waiting;  // created, job id
  for (const auto& [job_id, job] : round.jobs()) {
    if (job.spec.options.parallel && job.pending > 0 && !gangs_.contains(job_id)) {
      waiting.emplace_back(job.created_unix_ms, job_id);
    }
  }
  std::sort(waiting.begin(), waiting.end());
  for (const auto& [created_unix_ms, job_id] : waiting) {
    ActiveJob& job = round.jobs().at(job_id);
    GangPlan plan = plan_gang(job.queued(job_id), round.workers().idle_slots(round.held()));
    round.held().insert(plan.held.begin(), plan.held.end());
    if (!plan.placements.empty()) launch(round, job_id, job, plan.placements);
    if (round.has_failed()) break;
  }
}

void GangPolicy::launch(DispatchRound& round, const std::string& job_id, ActiveJob& job,
                        const std::vector<Placement>& placements) {
  auto ranks = round.ledger().pending_ranks(job_id, static_cast<int>(placements.size()));
  if (!ranks.ok()) return round.failed("finding a gang's ranks", ranks.status());
  if (ranks->size() != placements.size()) return;
  Launch& launch = gangs_[job_id];
  for (size_t i = 0; i < placements.size(); ++i) {
    auto started = round.ledger().start_attempt(job_id, (*ranks)[i], placements[i].worker_id, round.now_unix_ms());
    if (!started.ok()) {
      round.failed("starting a gang", started.status());
      std::vector<int64_t> placed;
      for (const auto& [placed_attempt, worker_id] : launch.worker_of) placed.push_back(placed_attempt);
      round.host().take_back(placed);
      gangs_.erase(job_id);  // so that the next round tries again
      return;
    }
    round.dispatched(job_id, job, *started);
    launch.worker_of[started->id] = placements[i].worker_id;
    launch.not_ready.insert(started->id);
    if (i == 0) launch.master_attempt = started->id;  // ranks come lowest first
  }
}

void GangPolicy::ready(const std::string& worker_id, int64_t attempt_id, int free_port,
                       const WorkerRegistry& workers, DispatchHost& host) {
  for (auto& [job_id, launch] : gangs_) {
    auto attempt = launch.worker_of.find(attempt_id);
    if (attempt == launch.worker_of.end() || attempt->second != worker_id) continue;
    if (!launch.master_addr.empty()) {
      send_start(launch, worker_id, host);  // it reconnected after the start; the first one is lost
      return;
    }
    launch.not_ready.erase(attempt_id);
    if (attempt_id == launch.master_attempt) launch.master_port = free_port;
    if (launch.not_ready.empty()) start(launch, workers, host);
    return;
  }
}

void GangPolicy::start(Launch& launch, const WorkerRegistry& workers, DispatchHost& host) {
  const WorkerSession* master = workers.find(launch.worker_of.at(launch.master_attempt));
  if (master == nullptr) return;  // lost meanwhile: the gang goes back to the queue
  launch.master_addr = master->address;
  std::set<std::string> gang_workers;
  for (const auto& [attempt, worker_id] : launch.worker_of) gang_workers.insert(worker_id);
  for (const std::string& worker_id : gang_workers) send_start(launch, worker_id, host);
}

void GangPolicy::send_start(const Launch& launch, const std::string& worker_id, DispatchHost& host) {
  GangStart start{.master_addr = launch.master_addr, .master_port = launch.master_port};
  for (const auto& [attempt, gang_worker] : launch.worker_of) {
    if (gang_worker == worker_id) start.attempt_ids.push_back(attempt);
  }
  host.start_gang(worker_id, std::move(start));
}

std::vector<int64_t> GangPolicy::stop_gangs_of(const std::vector<int64_t>& attempts, DispatchHost& host) {
  std::vector<int64_t> stopped;
  std::map<std::string, std::vector<int64_t>> cancels;
  for (auto gang = gangs_.begin(); gang != gangs_.end();) {
    const auto& worker_of = gang->second.worker_of;
    if (std::none_of(attempts.begin(), attempts.end(), [&](int64_t a) { return worker_of.contains(a); })) {
      ++gang;
      continue;
    }
    for (const auto& [attempt, worker_id] : worker_of) {
      stopped.push_back(attempt);
      cancels[worker_id].push_back(attempt);
    }
    gang = gangs_.erase(gang);
  }
  for (const auto& [worker_id, cancelled] : cancels) host.cancel(worker_id, cancelled);
  return stopped;
}

std::vector<int64_t> GangPolicy::unlike_the_ledger(const std::vector<AttemptRecord>& running,
                                                   const ActiveJobs& jobs) const {
  std::vector<int64_t> restart;
  for (const AttemptRecord& attempt : running) {
    auto job = jobs.find(attempt.job_id);
    if (job == jobs.end() || !job->second.spec.options.parallel) continue;
    auto launch = gangs_.find(attempt.job_id);
    if (launch == gangs_.end() || !launch->second.worker_of.contains(attempt.id)) restart.push_back(attempt.id);
  }
  for (const auto& [job_id, launch] : gangs_) {
    auto job = jobs.find(job_id);
    if (job != jobs.end() && job->second.pending == 0) continue;
    for (const auto& [attempt, worker_id] : launch.worker_of) restart.push_back(attempt);
  }
  return restart;
}

std::string GangPolicy::shortfall(const std::string& job_id, const ActiveJob& job, const WorkerRegistry& workers) {
  const QueuedJob gang = job.queued(job_id);
  int slots = 0;
  int count = 0;
  for (const WorkerCapacity& worker : workers.capacity()) {
    if (!may_run_on(gang, worker)) continue;
    slots += worker.slots;
    count += 1;
  }
  if (slots >= job.spec.repetitions) return "";
  return absl::StrCat("a parallel job runs all its ", job.spec.repetitions,
                      " ranks at once, but the workers online in room(s) ", absl::StrJoin(gang.rooms, ", "), " have ",
                      slots, " slots in all (", count,
                      " workers): start more workers, or cancel it and lower the repetitions or drop --parallel");
}

}  // namespace pesc
