#ifndef PESC_REGISTRY_REGISTRY_CONVERSION_H_
#define PESC_REGISTRY_REGISTRY_CONVERSION_H_

// The one place where the protocol's messages about workers become the
// registry's plain types (worker_types.h) and back: the worker stream
// converts what workers send here, the outbox what it answers them, the
// services and the web API what they tell of workers.

#include <string>
#include <vector>

#include "pesc/v1/pesc.pb.h"
#include "registry/worker_types.h"
#include "transport/public_conversion.h"

namespace pesc {

WorkerRegistration from_proto(const v1::RegisterWorker& registration);
WorkerHeartbeat from_proto(const v1::Heartbeat& heartbeat);
v1::Registered to_proto(const RegistrationAnswer& answer);
v1::WorkerInfo to_proto(const WorkerView& worker);
std::vector<v1::WorkerInfo> to_proto(const std::vector<WorkerView>& workers);
v1::Assignment to_proto(const AttemptOrder& order);
v1::StartGang to_proto(const GangStart& start);
// What every rank of a job runs, as a worker is told it once.
v1::JobDescription description_for(const std::string& job_id, const JobSpec& spec);

}  // namespace pesc

#endif  // PESC_REGISTRY_REGISTRY_CONVERSION_H_
