#ifndef PESC_SECURITY_INPUT_LIMITS_H_
#define PESC_SECURITY_INPUT_LIMITS_H_

// Bounds on everything a client or worker sends the coordinator, checked
// before any of it is stored or acted on. Each error says which bound was
// crossed and by how much, so a person can fix the call.

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

inline constexpr int kMaxRepetitionsPerJob = 10'000'000;
inline constexpr int kMaxParameters = 10'000;
inline constexpr size_t kMaxParameterBytes = 64 * 1024;
inline constexpr size_t kMaxAllParametersBytes = 1024 * 1024;
inline constexpr size_t kMaxLabelBytes = 256;        // job name, room, shared file name
inline constexpr size_t kMaxCommandBytes = 4096;     // domain template, entry path, URL
inline constexpr int kMaxRooms = 64;
inline constexpr int kMaxSharedFiles = 1000;
inline constexpr size_t kMaxIdBytes = 128;           // job and worker ids
inline constexpr int kMaxSlots = 4096;
inline constexpr int kMaxAttemptsInHand = 1'000'000;
inline constexpr int kMaxGpusPerWorker = 64;
inline constexpr int kMaxUnavailableDomains = 64;
inline constexpr int kMaxGpusPerRank = 64;
inline constexpr int kMaxNotifyTargets = 4;

// A job as submitted: sizes, counts and shapes, and what it needs to run
// (a domain, a process, an entry point, parameters that fit the rank
// contract, GPUs, where to tell its end); not whether its blobs exist. The
// one place a job spec is checked: the coordinator takes what passes.
// `can_send_mail`: the coordinator has an SMTP server (--smtp-url), so
// mailto: notify targets are accepted.
absl::Status check_job_spec(const v1::JobSpec& spec, bool can_send_mail = false);
// A job id as a client names it.
absl::Status check_job_id(std::string_view job_id);
// A blob id: 64 lowercase hex digits.
absl::Status check_blob_id(std::string_view sha256);
// A worker's first message.
absl::Status check_registration(const v1::RegisterWorker& registration);

}  // namespace pesc

#endif  // PESC_SECURITY_INPUT_LIMITS_H_
