#ifndef PESC_REGISTRY_JOB_DESCRIPTIONS_H_
#define PESC_REGISTRY_JOB_DESCRIPTIONS_H_

// What every rank of a job runs, as workers are told it: made once per job
// and shared by every worker's outbox (a job's first assignment on a stream
// carries it), dropped when the job ends. Not locked: its owner's lock
// guards it.

#include <map>
#include <memory>
#include <string>

#include "ledger/job_types.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

class JobDescriptions {
 public:
  std::shared_ptr<const v1::JobDescription> of(const std::string& job_id, const JobSpec& spec);
  void forget(const std::string& job_id);

 private:
  std::map<std::string, std::shared_ptr<const v1::JobDescription>> made_;
};

}  // namespace pesc

#endif  // PESC_REGISTRY_JOB_DESCRIPTIONS_H_
