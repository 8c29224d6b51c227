#include "common/fault.h"

#include "absl/strings/cord.h"

namespace pesc {
namespace {

constexpr char kFaultPayload[] = "type.pesc/fault";
constexpr char kJobFault[] = "job";

}  // namespace

absl::Status job_fault(absl::Status status) {
  if (!status.ok()) status.SetPayload(kFaultPayload, absl::Cord(kJobFault));
  return status;
}

bool is_job_fault(const absl::Status& status) {
  auto payload = status.GetPayload(kFaultPayload);
  return payload.has_value() && *payload == kJobFault;
}

}  // namespace pesc
