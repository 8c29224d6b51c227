#ifndef PESC_COMMON_FAULT_H_
#define PESC_COMMON_FAULT_H_

// Whose fault a failure is travels on its Status, from where the failure
// happens (a refused exec, an archive's content, a rank's own process that
// died) to the rank's result, so no one has to guess it later from a
// message. Unmarked failures that keep a rank from running are the worker's.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pesc {

// `status` marked as caused by what the job holds or asks (a file that
// cannot be executed, arguments too long, an archive's content), which no
// other worker would run either. OK stays OK.
absl::Status job_fault(absl::Status status);

template <typename T>
absl::StatusOr<T> job_fault(absl::StatusOr<T> value) {
  if (!value.ok()) return job_fault(value.status());
  return value;
}

bool is_job_fault(const absl::Status& status);

// `status` marked as the rank's own doing (its process died mid-rank).
// OK stays OK.
absl::Status rank_fault(absl::Status status);

bool is_rank_fault(const absl::Status& status);

}  // namespace pesc

#endif  // PESC_COMMON_FAULT_H_
