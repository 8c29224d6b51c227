#include "common/fault.h"


#include "absl/strings/cord.h"

namespace pesc {
namespace {

constexpr char kFaultPayload[] = "type.pesc/fault";
constexpr char kJobFault[] = "job";
constexpr char kRankFault[] = "rank";

absl::Status marked(absl::Status status, const char* fault) {
  if (!status.ok()) status.SetPayload(kFaultPayload, absl::Cord(fault));
  return status;
}

bool marked_as(const absl::Status& status, const char* fault) {
  auto payload = status.GetPayload(kFaultPayload);
  return payload.has_value() && *payload == fault;
}

}  // namespace

absl::Status job_fault(absl::Status status) { return marked(std::move(status), kJobFault); }
bool is_job_fault(const absl::Status& status) { return marked_as(status, kJobFault); }
absl::Status rank_fault(absl::Status status) { return marked(std::move(status), kRankFault); }
bool is_rank_fault(const absl::Status& status) { return marked_as(status, kRankFault); }

}  // namespace pesc
