#ifndef PESC_COMMON_JOB_STATE_H_
#define PESC_COMMON_JOB_STATE_H_

// Where a job is in its life, as the coordinator keeps it and its clients
// see it.

namespace pesc {

// kUnknown: a state the protocol did not name (a newer coordinator's).
enum class JobState { kUnknown, kRunning, kFinished, kCancelled, kFailed };

}  // namespace pesc

#endif  // PESC_COMMON_JOB_STATE_H_
