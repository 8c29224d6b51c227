#ifndef PESC_LEDGER_LEDGER_CONVERSION_H_
#define PESC_LEDGER_LEDGER_CONVERSION_H_

// The one place where the protocol's messages become the coordinator's
// plain types (job_types.h) and back: the services at the coordinator's
// edge convert here, and so does SqliteJobStore, which keeps the protocol's
// bytes on disk.

#include <vector>

#include "ledger/job_types.h"
#include "pesc/v1/pesc.pb.h"
#include "transport/blob_conversion.h"
#include "transport/public_conversion.h"

namespace pesc {

JobSpec from_proto(const v1::JobSpec& spec);
v1::JobSpec to_proto(const JobSpec& spec);

v1::ProcessKind process_kind_of(const JobSpec& spec);

// Named apart from the client's from_proto (client/client_conversion.h),
// which makes the same message its StoredRankResult.
RankRecord rank_record_of(const v1::RankResult& result);
std::vector<RankRecord> rank_records_of(const google::protobuf::RepeatedPtrField<v1::RankResult>& results);
v1::RankResult to_proto(const RankRecord& rank);
std::vector<v1::RankResult> to_proto(const std::vector<RankRecord>& ranks);
std::vector<AttemptEnded> attempts_ended_of(const v1::AttemptsFinished& batch);
v1::RankOutput to_proto(const RankOutputNow& output);
OutputAnswer from_proto(const v1::OutputRead& answer);

v1::JobProgress to_proto(const Progress& progress);
v1::JobInfo to_proto(const JobRecord& job);
v1::JobInfo to_proto(const JobView& job);
std::vector<v1::JobInfo> to_proto(const std::vector<JobRecord>& jobs);
v1::WorkerPause to_proto(const WorkerPause& pause);
// What the ledger knows of a worker; its session tells the rest.
v1::WorkerInfo to_proto(const WorkerRecord& worker);

}  // namespace pesc

#endif  // PESC_LEDGER_LEDGER_CONVERSION_H_
