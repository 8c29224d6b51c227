#ifndef PESC_DISPATCH_GANG_POLICY_H_
#define PESC_DISPATCH_GANG_POLICY_H_

// Places gangs (parallel jobs, whose ranks must all run at once) whole on
// idle slots, oldest gang first; a gang that does not fit yet holds the
// workers it waits on (round.held()) so that their slots drain for it.
// Owns the gangs launched: from the moment their attempts are sent until
// they end, a gang waits for every attempt's GangReady and then starts
// them all, told where rank 0 listens. Not kept in the ledger: a restarted
// coordinator restarts its gangs.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "dispatch/dispatch_policy.h"

namespace pesc {

class GangPolicy final : public DispatchPolicy {
 public:
  void place(DispatchRound& round) override;

  bool launched(const std::string& job_id) const { return gangs_.contains(job_id); }
  void forget(const std::string& job_id) { gangs_.erase(job_id); }
  // A gang attempt holds its slot and offers a free port on its host; the
  // last of a gang to say so starts them all (one that says so again after
  // the start, having reconnected, is sent the start again).
  void ready(const std::string& worker_id, int64_t attempt_id, int free_port, const WorkerRegistry& workers,
             DispatchHost& host);
  // Every attempt of the gangs these attempts belong to, since a gang cannot
  // go on without one of its ranks: each is told to stop (host.cancel), and
  // the gangs are forgotten.
  std::vector<int64_t> stop_gangs_of(const std::vector<int64_t>& attempts, DispatchHost& host);
  // Attempts of gangs that memory and the ledger see differently (after a
  // restart, or a failed ledger call), which must start over: the ledger
  // runs attempts of a gang that memory did not launch, or has a rank of a
  // launched gang pending again (its start was rolled back).
  std::vector<int64_t> unlike_the_ledger(const std::vector<AttemptRecord>& running, const ActiveJobs& jobs) const;
  // Why a gang cannot run whole on the online workers of its rooms; empty
  // when their slots suffice. Waited for, not refused: the workers it needs
  // may still be joining.
  static std::string shortfall(const std::string& job_id, const ActiveJob& job, const WorkerRegistry& workers);

 private:
  struct Launch {
    std::map<int64_t, std::string> worker_of;  // attempt -> worker
    std::set<int64_t> not_ready;
    int64_t master_attempt = 0;  // the gang's lowest rank (rank 0 but after a partial restart)
    int master_port = 0;
    std::string master_addr;  // set once started
  };
  // Sends every rank of the gang to its worker; they hold their slots until start().
  void launch(DispatchRound& round, const std::string& job_id, ActiveJob& job,
              const std::vector<Placement>& placements);
  void start(Launch& launch, const WorkerRegistry& workers, DispatchHost& host);
  // Tells one worker to start its attempts of a started gang.
  static void send_start(const Launch& launch, const std::string& worker_id, DispatchHost& host);

  std::map<std::string, Launch> gangs_;  // by job id
};

}  // namespace pesc

#endif  // PESC_DISPATCH_GANG_POLICY_H_
