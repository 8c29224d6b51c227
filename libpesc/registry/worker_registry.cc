#include "registry/worker_registry.h"

#include <algorithm>
#include <iterator>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace pesc {
namespace {

// Ranks in a row that cannot start on a worker for the worker's own fault
// before it is quarantined.
constexpr int kQuarantineAfter = 2;
// A worker holds enough assignments to keep each slot busy this long, so
// short ranks do not wait on round trips to the coordinator.
constexpr double kPrefetchHorizonMs = 100;
constexpr int kMaxPrefetchPerSlot = 512;

// Ranks that end within the horizon; one that may take hours (or whose
// pace no ended rank told yet) holds its slot.
bool known_short(double typical_rank_ms) { return typical_rank_ms >= 0 && typical_rank_ms <= kPrefetchHorizonMs; }

}  // namespace

WorkerSession::HeldRanks WorkerSession::held(int64_t attempt) const {
  auto ranks = held_ranks.find(attempt);
  return ranks == held_ranks.end() ? HeldRanks{} : ranks->second;  // not held through hold(): one, of no job
}

int WorkerSession::ranks_held() const {
  int held_in_all = 0;
  for (int64_t attempt : attempts) held_in_all += held(attempt).count;
  return held_in_all;
}

std::map<std::string, int> WorkerSession::ranks_held_by_job() const {
  std::map<std::string, int> by_job;
  for (int64_t attempt : attempts) {
    const HeldRanks ranks = held(attempt);
    by_job[ranks.job_id] += ranks.count;
  }
  return by_job;
}

std::set<int64_t> WorkerSession::started_attempts() const {
  auto end = attempts.begin();
  std::advance(end, std::min<size_t>(attempts.size(), static_cast<size_t>(std::max(0, slots))));
  return std::set<int64_t>(attempts.begin(), end);
}

std::vector<FreeGpu> WorkerSession::all_gpus() const {
  std::vector<FreeGpu> all;
  for (const WorkerGpu& gpu : gpus) all.push_back({gpu.index, gpu.compute_capability});
  return all;
}

std::vector<FreeGpu> WorkerSession::free_gpus() const {
  std::set<int> held;
  for (const auto& [attempt, indices] : gpus_held) {
    if (attempts.contains(attempt)) held.insert(indices.begin(), indices.end());
  }
  std::vector<FreeGpu> free = all_gpus();
  std::erase_if(free, [&](const FreeGpu& gpu) { return held.contains(gpu.index); });
  return free;
}

void WorkerSession::hold(int64_t attempt_id, const std::string& job_id, int rank_count,
                         const std::vector<int>& its_gpus) {
  attempts.insert(attempt_id);
  std::erase_if(gpus_held, [&](const auto& held) { return !attempts.contains(held.first); });
  if (held_ranks.size() >= attempts.size()) {  // some entry is of an attempt it no longer holds
    std::erase_if(held_ranks, [&](const auto& held) { return !attempts.contains(held.first); });
  }
  if (!its_gpus.empty()) gpus_held[attempt_id] = its_gpus;
  held_ranks[attempt_id] = {.job_id = job_id, .count = rank_count};
}

void WorkerSession::learn_from(const RankResult& reported) {
  // A worker that paused itself (its disk is full, say: it says so before
  // the failures it caused) is out of service already, and comes back by
  // itself; a quarantine would keep it out until it reconnects. A job's own
  // mistakes (a file that cannot run, say) fail on any worker and tell
  // nothing about this one.
  if (paused.empty() && reported.failure_class != FailureClass::kJob) {
    if (reported.failure_class != FailureClass::kWorker) {
      failures_in_a_row = 0;
    } else if (++failures_in_a_row >= kQuarantineAfter && quarantined.empty()) {
      quarantined = absl::StrCat(failures_in_a_row, " ranks in a row could not start: ", reported.error);
    }
  }
  learn_rank_time(typical_rank_ms, reported);
}

absl::Status WorkerRegistry::may_join(const std::string& worker_id, const std::string& credential) const {
  const WorkerSession* held = find(worker_id);
  if (held == nullptr || held->credential.empty() || held->credential == credential) return absl::OkStatus();
  return absl::AlreadyExistsError(absl::StrCat(
      "the worker id \"", worker_id, "\" belongs to a worker that registered with another token",
      " or certificate and is connected or within its lease: give this worker an id of its own (--id), or leave",
      " --id out to have one made"));
}

WorkerRegistry::Joined WorkerRegistry::join(const WorkerRegistration& registration, const std::string& peer_ip,
                                            const std::string& credential, std::shared_ptr<Outbox> outbox,
                                            absl::Time now) {
  WorkerSession& session = sessions_[registration.worker_id];
  session.credential = credential;
  if (session.outbox) session.outbox->close();  // a stale stream of the same worker
  session.host = registration.host;
  session.address = peer_ip.empty() ? registration.host : peer_ip;
  session.slots = registration.slots;
  session.failures_in_a_row = 0;
  session.quarantined.clear();
  session.rooms = registration.rooms;
  if (session.rooms.empty()) session.rooms.push_back(kPublicRoom);
  session.outbox = std::move(outbox);
  session.last_heard = now;
  session.gpus = registration.gpus;
  session.paused = registration.paused_reason;
  session.end_unix_ms = registration.end_unix_ms;
  session.version = registration.version;
  session.domains = registration.domains;
  session.unavailable_domains = registration.unavailable_domains;
  const std::set<int64_t> in_hand(registration.attempts_in_hand.begin(), registration.attempts_in_hand.end());
  Joined joined;
  for (int64_t attempt : session.attempts) {
    if (!in_hand.contains(attempt)) joined.vanished.push_back(attempt);
  }
  for (int64_t attempt : in_hand) {
    if (!session.attempts.contains(attempt)) joined.stale.push_back(attempt);
  }
  for (int64_t attempt : joined.vanished) session.attempts.erase(attempt);
  for (const auto& [attempt, its_gpus] : registration.held_gpus) {
    if (session.attempts.contains(attempt)) session.gpus_held[attempt] = its_gpus;
  }
  return joined;
}

WorkerRegistry::Expired WorkerRegistry::expire(absl::Time cutoff) {
  Expired expired;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    const WorkerSession& session = it->second;
    if (session.online() || session.last_heard >= cutoff) {
      ++it;
      continue;
    }
    expired.workers.push_back(it->first);
    expired.attempts.insert(expired.attempts.end(), session.attempts.begin(), session.attempts.end());
    it = sessions_.erase(it);
  }
  return expired;
}

void WorkerRegistry::reload(const std::vector<AttemptRecord>& running,
                            const std::map<std::string, std::string>& credentials, absl::Time now) {
  for (auto& [worker_id, session] : sessions_) {
    session.attempts.clear();
    session.held_ranks.clear();
  }
  for (const AttemptRecord& attempt : running) {
    auto [known, added] = sessions_.try_emplace(attempt.worker_id);
    WorkerSession& session = known->second;
    session.attempts.insert(attempt.id);
    session.held_ranks[attempt.id] = {.job_id = attempt.job_id, .count = attempt.rank_count};
    if (added) session.last_heard = now;
  }
  for (auto& [worker_id, session] : sessions_) {
    if (auto bound = credentials.find(worker_id); bound != credentials.end()) session.credential = bound->second;
  }
}

WorkerView WorkerRegistry::describe(WorkerRecord worker) const {
  WorkerView view{.record = std::move(worker)};
  const WorkerSession* session = find(view.record.id);
  if (session == nullptr) return view;
  view.online = session->online();
  view.running = static_cast<int>(session->started_attempts().size());
  view.quarantined = session->quarantined;
  view.paused = session->paused;
  view.throttled = session->throttled;
  view.rooms = session->rooms;
  view.gpus = session->gpus;
  view.unavailable_domains = session->unavailable_domains;
  view.end_unix_ms = session->end_unix_ms;
  view.version = session->version;
  view.host_cpu_percent = session->host_cpu_percent;
  view.domains = session->domains;
  return view;
}

std::map<std::string, int> WorkerRegistry::queued_by_job() const {
  std::map<std::string, int> queued;
  for (const auto& [worker_id, session] : sessions_) {
    const std::set<int64_t> started = session.started_attempts();
    for (int64_t attempt : session.attempts) {
      const WorkerSession::HeldRanks held = session.held(attempt);
      queued[held.job_id] += started.contains(attempt) ? held.count - 1 : held.count;
    }
  }
  return queued;
}

WorkerSession* WorkerRegistry::find(const std::string& worker_id) {
  auto session = sessions_.find(worker_id);
  return session == sessions_.end() ? nullptr : &session->second;
}

const WorkerSession* WorkerRegistry::find(const std::string& worker_id) const {
  auto session = sessions_.find(worker_id);
  return session == sessions_.end() ? nullptr : &session->second;
}

bool WorkerSession::ends_too_soon(int64_t now_unix_ms) const {
  if (end_unix_ms <= 0) return false;
  // Until its pace is known it gets ranks, and drains before its end.
  const double expected_ms = std::max(0.0, typical_rank_ms);
  return static_cast<double>(now_unix_ms) + expected_ms >= static_cast<double>(end_unix_ms);
}

std::vector<WorkerCapacity> WorkerRegistry::capacity(const std::map<std::string, double>& rank_ms_by_job) const {
  std::vector<WorkerCapacity> capacity;
  const int64_t now_unix_ms = absl::ToUnixMillis(absl::Now());
  for (const auto& [worker_id, session] : sessions_) {
    if (!session.takes_ranks() || session.ends_too_soon(now_unix_ms)) continue;
    std::map<std::string, int> held_by_job = session.ranks_held_by_job();
    int held = 0;
    int held_not_short = 0;  // each holds a slot, once it has one
    for (const auto& [job_id, ranks] : held_by_job) {
      held += ranks;
      auto pace = rank_ms_by_job.find(job_id);
      if (!known_short(pace == rank_ms_by_job.end() ? -1 : pace->second)) held_not_short += ranks;
    }
    const int slots_freeing_soon = session.slots - std::min(session.slots, held_not_short);
    // The worker's own pace may allow more of a short job than the least.
    const int prefetch = std::max(prefetch_per_slot_, prefetch_per_slot_at(session.typical_rank_ms));
    capacity.push_back({.worker_id = worker_id,
                        .free = session.slots + slots_freeing_soon * prefetch - held,
                        .rooms = session.rooms,
                        .slots = session.slots,
                        .free_gpus = session.free_gpus(),
                        .unavailable_domains = session.unavailable_domains,
                        .held_by_job = std::move(held_by_job),
                        .slots_freeing_soon = slots_freeing_soon,
                        .prefetch_per_slot = prefetch});
  }
  return capacity;
}

std::vector<WorkerCapacity> WorkerRegistry::idle_slots(const std::set<std::string>& held) const {
  std::vector<WorkerCapacity> workers = capacity();
  std::erase_if(workers, [&](const WorkerCapacity& worker) { return held.contains(worker.worker_id); });
  for (WorkerCapacity& worker : workers) {
    worker.free = worker.slots - static_cast<int>(sessions_.at(worker.worker_id).attempts.size());
  }
  return workers;
}

std::vector<ConnectedWorker> WorkerRegistry::connected() const {
  std::vector<ConnectedWorker> workers;
  for (const auto& [worker_id, session] : sessions_) {
    if (!session.online()) continue;
    std::string unavailable;
    if (!session.quarantined.empty()) unavailable = "quarantined: " + session.quarantined;
    if (!session.paused.empty()) unavailable = "paused: " + session.paused;
    if (unavailable.empty() && session.ends_too_soon(absl::ToUnixMillis(absl::Now()))) {
      unavailable = "its batch allocation ends before another rank would";
    }
    workers.push_back({.capacity = {.worker_id = worker_id,
                                    .rooms = session.rooms,
                                    .free_gpus = session.all_gpus(),
                                    .unavailable_domains = session.unavailable_domains},
                       .unavailable = unavailable});
  }
  return workers;
}

int WorkerRegistry::online_slots() const {
  int slots = 0;
  for (const auto& [worker_id, session] : sessions_) {
    if (session.online()) slots += session.slots;
  }
  return slots;
}

double WorkerRegistry::typical_rank_ms(const std::string& worker_id) const {
  const WorkerSession* session = find(worker_id);
  if (session == nullptr || session->typical_rank_ms < 0) return std::numeric_limits<double>::infinity();
  return session->typical_rank_ms;
}

int WorkerRegistry::prefetch_per_slot_at(double typical_rank_ms) const {
  if (!known_short(typical_rank_ms)) return 0;
  // Ranks times are whole milliseconds, so sub-millisecond ranks average
  // below 1 and count as what they are. At least one: a short rank ends
  // within the horizon.
  const double enough = kPrefetchHorizonMs / std::max(0.1, typical_rank_ms);
  return std::clamp(static_cast<int>(enough), prefetch_per_slot_, kMaxPrefetchPerSlot);
}

}  // namespace pesc
