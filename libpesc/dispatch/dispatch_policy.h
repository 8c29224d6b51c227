#ifndef PESC_DISPATCH_DISPATCH_POLICY_H_
#define PESC_DISPATCH_DISPATCH_POLICY_H_

// The dispatcher's one interface: a DispatchPolicy places one kind of work
// (gangs, queued ranks in fair share and chunks, stragglers' duplicates) in
// a DispatchRound. The contract every policy keeps:
//  - It starts attempts only through round.ledger(), and hands every
//    attempt the ledger started to round.dispatched() (a queued rank) or
//    round.send() (a duplicate) in the order its worker should get them;
//    the round sends each once the ledger has committed it.
//  - It places nothing on the workers in round.held(); a policy that makes
//    workers wait for slots to drain (gangs) adds them there, and later
//    policies of the round leave them alone.
//  - On the first failed ledger call it calls round.failed() and returns at
//    once, telling no worker of what that call would have started; a policy
//    that runs after a failed round does nothing. The coordinator rebuilds
//    memory from the ledger before the next round.
//  - It reads the time only as round.now_unix_ms(), and keeps no state of
//    its own across rounds but what its header says it owns.
// A round is run under the coordinator's mutex; so are policies.

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "dispatch/active_job.h"
#include "ledger/job_store.h"
#include "registry/worker_registry.h"

namespace pesc {

// What a dispatch needs from the coordinator around it: messages to
// workers, sent no earlier than the ledger committed what they tell.
class DispatchHost {
 public:
  virtual ~DispatchHost() = default;
  // `spec`: what every rank of the order's job runs, for a worker that has
  // not been told yet.
  virtual void assign(const std::string& worker_id, AttemptOrder order, const JobSpec& spec) = 0;
  virtual void start_gang(const std::string& worker_id, GangStart start) = 0;
  // The worker stops these attempts and forgets them.
  virtual void cancel(const std::string& worker_id, const std::vector<int64_t>& attempts) = 0;
  // A ledger call failed and was rolled back.
  virtual void ledger_failed(std::string_view what, const absl::Status& status) = 0;
  // Puts these attempts' ranks back in the queue (a failure is retried later).
  virtual void take_back(const std::vector<int64_t>& attempts) = 0;
};

class DispatchRound {
 public:
  DispatchRound(JobStore& ledger, ActiveJobs& jobs, WorkerRegistry& workers, DispatchHost& host, int64_t now_unix_ms)
      : ledger_(ledger), jobs_(jobs), workers_(workers), host_(host), now_unix_ms_(now_unix_ms) {}

  JobStore& ledger() { return ledger_; }
  ActiveJobs& jobs() { return jobs_; }
  WorkerRegistry& workers() { return workers_; }
  DispatchHost& host() { return host_; }
  int64_t now_unix_ms() const { return now_unix_ms_; }
  std::set<std::string>& held() { return held_; }

  void failed(std::string_view what, const absl::Status& status);
  bool has_failed() const { return failed_; }

  // A started attempt of a queued rank: off the job's pending count, its
  // job pinned for a same-machine job, and sent to its worker.
  void dispatched(const std::string& job_id, ActiveJob& job, const JobStore::StartedAttempt& started,
                  const std::vector<int>& gpus = {});
  // Sends a started attempt to its worker, which holds it from now on;
  // `gpus`: the worker's GPUs it gets to itself.
  void send(const std::string& job_id, const ActiveJob& job, const JobStore::StartedAttempt& started,
            const std::vector<int>& gpus = {});

 private:
  JobStore& ledger_;
  ActiveJobs& jobs_;
  WorkerRegistry& workers_;
  DispatchHost& host_;
  const int64_t now_unix_ms_;
  std::set<std::string> held_;
  bool failed_ = false;
};

class DispatchPolicy {
 public:
  virtual ~DispatchPolicy() = default;
  virtual void place(DispatchRound& round) = 0;
  // When a policy that places work as time passes, not only when something
  // happens, wants its next round (the coordinator's timer runs one then);
  // nullopt: not before something happens.
  virtual std::optional<int64_t> next_round_unix_ms(const ActiveJobs& /*jobs*/, int64_t /*now_unix_ms*/) const {
    return std::nullopt;
  }
};

}  // namespace pesc

#endif  // PESC_DISPATCH_DISPATCH_POLICY_H_
