#ifndef PESC_COMMON_RANK_TIME_H_
#define PESC_COMMON_RANK_TIME_H_

// How long a rank ran, one rule for all who count it: the ledger (a user's
// fair share), a job's end notice, the client's RankResult::duration, the
// web API's duration_s and the job report.

#include <chrono>
#include <cstdint>

#include "pesc/pesc.h"

namespace pesc {

// Whether the rank's attempt started: a rank that could not start ends with
// no start time (or a start after its end, from a worker's clock).
inline bool rank_ran(const RankResult& result) {
  return result.start > std::chrono::system_clock::time_point() && result.end >= result.start;
}

// How long the rank's attempt ran; 0 when it never started.
inline int64_t run_time_ms(const RankResult& result) {
  if (!rank_ran(result)) return 0;
  return std::chrono::duration_cast<std::chrono::milliseconds>(result.end - result.start).count();
}

}  // namespace pesc

#endif  // PESC_COMMON_RANK_TIME_H_
