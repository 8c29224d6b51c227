#ifndef PESC_CLIENT_CLIENT_CONVERSION_H_
#define PESC_CLIENT_CLIENT_CONVERSION_H_

// The one place where the protocol's messages become the client's plain
// types (client_types.h) and back: the client library, and the coordinator's
// HTTP API that reports the same records, convert here and nowhere else.

#include <chrono>
#include <cstdint>
#include <string>

#include "client/client_types.h"
#include "common/clock.h"
#include "pesc/pesc.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

Progress from_proto(const v1::JobProgress& progress);
JobSummary from_proto(const v1::JobInfo& job);
WorkerSummary from_proto(const v1::WorkerInfo& worker);
StoredRankResult from_proto(const v1::RankResult& result);
RetriedRanks from_proto(const v1::RetryRanksResponse& retried);
RankOutputPiece from_proto(const v1::RankOutput& output);

// Where bytes kept by the farm are, as the Blobs service is asked for them.
v1::Payload to_payload(const StoredBytes& bytes);

// StoredBytes as a string that holds no client type, for pesc::Results to
// keep (its header is public), and back.
std::string to_opaque(const StoredBytes& bytes);
StoredBytes stored_bytes_from_opaque(const std::string& opaque);

}  // namespace pesc

#endif  // PESC_CLIENT_CLIENT_CONVERSION_H_
