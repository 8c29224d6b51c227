#ifndef PESC_DISPATCH_STRAGGLER_POLICY_H_
#define PESC_DISPATCH_STRAGGLER_POLICY_H_

// Uneven desktops must not hold a job's tail: once a job has no rank left
// to queue, a rank running well past the typical rank time of its worker or
// of an idle one (the shorter) also starts on that idle worker, fastest
// worker first; the ledger takes the first success and has the other
// attempt stopped. Not for gangs, same-machine or GPU jobs, nor for jobs
// that ask for no duplicates. Owns nothing.

#include "dispatch/dispatch_policy.h"

namespace pesc {

class StragglerPolicy final : public DispatchPolicy {
 public:
  void place(DispatchRound& round) override;
  // While a job that may have stragglers runs its tail: the next look.
  std::optional<int64_t> next_round_unix_ms(const ActiveJobs& jobs, int64_t now_unix_ms) const override;

 private:
  static bool may_have_stragglers(const ActiveJob& job);
  // Whether this round looks for stragglers at all.
  bool time_to_look(DispatchRound& round);

  int64_t last_look_unix_ms_ = 0;
};

}  // namespace pesc

#endif  // PESC_DISPATCH_STRAGGLER_POLICY_H_
