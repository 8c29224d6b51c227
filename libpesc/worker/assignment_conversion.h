#ifndef PESC_WORKER_ASSIGNMENT_CONVERSION_H_
#define PESC_WORKER_ASSIGNMENT_CONVERSION_H_

// The worker's edge: the coordinator's messages into the plain types the
// rank runner reads (worker/rank_task.h), and its outcomes back. Nothing else
// in worker/ below the agent reads or writes an assignment's fields.

#include <memory>

#include "pesc/v1/pesc.pb.h"
#include "transport/blob_conversion.h"
#include "worker/rank_task.h"

namespace pesc {

// What every rank of a job runs, as the coordinator described it.
std::shared_ptr<const JobRun> job_run_from(const v1::JobDescription& description);
// The attempt an assignment names, of `job`'s run.
RankTask task_from(const v1::Assignment& assignment, std::shared_ptr<const JobRun> job);

// What the worker reports of a rank that ended.
v1::RankResult result_of(const RankOutcome& outcome);

}  // namespace pesc

#endif  // PESC_WORKER_ASSIGNMENT_CONVERSION_H_
