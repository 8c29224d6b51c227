#include "registry/worker_registry.h"

#include <algorithm>
#include <iterator>
#include <limits>

#include "absl/strings/str_cat.h"

namespace pesc {
namespace {

// Ranks in a row that cannot start on a worker for the worker's own fault
// before it is quarantined.
constexpr int kQuarantineAfter = 2;
// A worker holds enough assignments to keep each slot busy this long, so
// short ranks do not wait on round trips to the coordinator.
constexpr double kPrefetchHorizonMs = 50;
constexpr int kMaxPrefetchPerSlot = 512;

}  // namespace

int WorkerSession::ranks_held() const {
  int held = 0;
  for (int64_t attempt : attempts) {
    auto chunk = chunk_sizes.find(attempt);
    held += chunk == chunk_sizes.end() ? 1 : chunk->second;
  }
  return held;
}

std::set<int64_t> WorkerSession::started_attempts() const {
  auto end = attempts.begin();
  std::advance(end, std::min<size_t>(attempts.size(), static_cast<size_t>(std::max(0, slots))));
  return std::set<int64_t>(attempts.begin(), end);
}

std::vector<FreeGpu> WorkerSession::all_gpus() const {
  std::vector<FreeGpu> all;
  for (const v1::Gpu& gpu : gpus) all.push_back({gpu.index(), gpu.compute_capability()});
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

void WorkerSession::hold(int64_t attempt_id, int rank_count, const std::vector<int>& its_gpus) {
  attempts.insert(attempt_id);
  std::erase_if(gpus_held, [&](const auto& held) { return !attempts.contains(held.first); });
  std::erase_if(chunk_sizes, [&](const auto& chunk) { return !attempts.contains(chunk.first); });
  if (!its_gpus.empty()) gpus_held[attempt_id] = its_gpus;
  if (rank_count > 1) chunk_sizes[attempt_id] = rank_count;
}

void WorkerSession::learn_from(const v1::RankResult& reported) {
  // A worker that paused itself (its disk is full, say: it says so before
  // the failures it caused) is out of service already, and comes back by
  // itself; a quarantine would keep it out until it reconnects. A job's own
  // mistakes (a file that cannot run, say) fail on any worker and tell
  // nothing about this one.
  if (paused.empty() && reported.failure_class() != v1::FAILURE_CLASS_JOB) {
    if (reported.failure_class() != v1::FAILURE_CLASS_WORKER) {
      failures_in_a_row = 0;
    } else if (++failures_in_a_row >= kQuarantineAfter && quarantined.empty()) {
      quarantined = absl::StrCat(failures_in_a_row, " ranks in a row could not start: ", reported.error());
    }
  }
  if (reported.end_unix_ms() >= reported.start_unix_ms() && reported.start_unix_ms() > 0) {
    const double took = static_cast<double>(reported.end_unix_ms() - reported.start_unix_ms());
    typical_rank_ms = typical_rank_ms < 0 ? took : 0.8 * typical_rank_ms + 0.2 * took;
  }
}

WorkerSession* WorkerRegistry::find(const std::string& worker_id) {
  auto session = sessions_.find(worker_id);
  return session == sessions_.end() ? nullptr : &session->second;
}

const WorkerSession* WorkerRegistry::find(const std::string& worker_id) const {
  auto session = sessions_.find(worker_id);
  return session == sessions_.end() ? nullptr : &session->second;
}

std::vector<WorkerCapacity> WorkerRegistry::capacity() const {
  std::vector<WorkerCapacity> capacity;
  for (const auto& [worker_id, session] : sessions_) {
    if (!session.takes_ranks()) continue;
    const int limit = session.slots * (1 + prefetch_for(session));
    capacity.push_back({.worker_id = worker_id,
                        .free = limit - session.ranks_held(),
                        .rooms = session.rooms,
                        .slots = session.slots,
                        .free_gpus = session.free_gpus(),
                        .unavailable_domains = session.unavailable_domains});
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

int WorkerRegistry::prefetch_for(const WorkerSession& session) const {
  if (session.typical_rank_ms < 0) return prefetch_per_slot_;
  // Ranks times are whole milliseconds, so sub-millisecond ranks average
  // below 1 and count as what they are.
  const double enough = kPrefetchHorizonMs / std::max(0.1, session.typical_rank_ms);
  return std::clamp(static_cast<int>(enough), prefetch_per_slot_, kMaxPrefetchPerSlot);
}

}  // namespace pesc
