#ifndef PESC_LEDGER_LEDGER_CONVERSION_H_
#define PESC_LEDGER_LEDGER_CONVERSION_H_

// The one place where the protocol's messages become the coordinator's
// plain types (job_types.h) and back: the services at the coordinator's
// edge convert here, and so does SqliteJobStore, which keeps the protocol's
// bytes on disk.

#include "ledger/job_types.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

JobSpec from_proto(const v1::JobSpec& spec);
v1::JobSpec to_proto(const JobSpec& spec);

BlobId from_proto(const v1::BlobRef& blob);
v1::BlobRef to_proto(const BlobId& blob);
v1::SharedFile to_proto(const SharedInput& shared);
v1::RankLimits to_proto(const RankLimits& limits);
v1::ProcessKind process_kind_of(const JobSpec& spec);

}  // namespace pesc

#endif  // PESC_LEDGER_LEDGER_CONVERSION_H_
