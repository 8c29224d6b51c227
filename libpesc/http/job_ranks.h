#ifndef PESC_HTTP_JOB_RANKS_H_
#define PESC_HTTP_JOB_RANKS_H_

// Reading a job's ranks and their outputs from the coordinator's records:
// a page at a time, so a job of any size is never held whole; a rank's
// output.txt inline or from its blob; its other files as the tar they came in.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "archive/tar_stream.h"
#include "coordinator/farm_state.h"
#include "pesc/pesc.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc::http {

inline constexpr int kRanksPerPage = 500;

using Write = std::function<absl::Status(std::string_view)>;

// Every rank of the job in rank order, a page at a time.
absl::Status for_each_rank(FarmState& state, const std::string& job_id,
                           const std::function<absl::Status(const v1::RankResult&)>& visit);
// The rank's record; NotFound past the job's last rank.
absl::StatusOr<v1::RankResult> one_rank(FarmState& state, const std::string& job_id, int rank);

uint64_t output_size(const v1::RankResult& rank);
// Hands `write` the rank's output.txt, a block at a time.
absl::Status send_output(const v1::RankResult& rank, const BlobStore& blobs, const Write& write);
// The tar of the rank's other files; nullopt when it left none.
std::optional<archive::Source> files_of(const v1::RankResult& rank, const BlobStore& blobs);

// The job's report (speedup, lanes, timeline) from all its ranks' times.
absl::StatusOr<JobReport> report_of(FarmState& state, const v1::JobInfo& job);

// What a job's detail shows from its report, kept once the job has ended
// (it no longer changes) so that reading it again costs nothing.
class EndedJobSummaries {
 public:
  struct Summary {
    double speedup = 0;
    int workers_used = 0;
  };
  // nullopt while the job runs.
  absl::StatusOr<std::optional<Summary>> of(FarmState& state, const v1::JobInfo& job);

 private:
  static constexpr size_t kKept = 1024;
  absl::Mutex mutex_;
  std::map<std::string, Summary> kept_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace pesc::http

#endif  // PESC_HTTP_JOB_RANKS_H_
