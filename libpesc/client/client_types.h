#ifndef PESC_CLIENT_CLIENT_TYPES_H_
#define PESC_CLIENT_CLIENT_TYPES_H_

// What the client library hands its callers (pesc::Farm, the `pesc` command
// line, tests): plain values, converted from the protocol in
// client_conversion.cc alone, so that no caller reads a generated type.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/job_state.h"
#include "common/worker_gpu.h"
#include "pesc/pesc.h"

namespace pesc {

// A job as the coordinator reports it (GetJob, ListJobs, CancelJob, RetryRanks).
struct JobSummary {
  std::string id;
  std::string name;
  std::string user;
  bool warm_runner = false;
  JobState state = JobState::kUnknown;
  Progress progress;
  std::chrono::system_clock::time_point created;
  std::chrono::system_clock::time_point finished;  // epoch while it runs
  std::string failure;                              // why a kFailed job ended: what to change
  std::vector<WorkerPause> pauses;                  // the workers' pauses during the job; from job() only
};

// A domain a worker cannot run ranks of, and why.
struct UnavailableDomain {
  std::string domain;
  std::string why;
};

// A worker as the coordinator lists it. The reasons are empty while they
// do not hold.
struct WorkerSummary {
  std::string id;
  std::string host;
  int slots = 0;
  int running = 0;
  bool online = false;
  int64_t ranks_done = 0;
  std::string quarantined;  // why the coordinator gives it no ranks
  std::string paused;       // why it takes no new ranks (its owner's work)
  std::string throttled;    // why its ranks are held to a small share of the CPU
  std::vector<std::string> rooms;
  std::vector<WorkerGpu> gpus;
  std::vector<UnavailableDomain> unavailable_domains;
  std::chrono::system_clock::time_point allocation_end;  // a pilot's batch allocation; epoch: none
  std::string version;
  double host_cpu_percent = -1;  // of all its host's CPUs; negative until known
  std::vector<std::string> domains;
};

// Bytes the farm keeps for a rank: inline when small, else a blob in the
// coordinator's store that the client fetches. Both empty: there are none.
struct StoredBytes {
  std::string inline_data;
  std::string blob_sha256;
  uint64_t blob_size = 0;
  bool empty() const { return inline_data.empty() && blob_sha256.empty(); }
};

// A rank's result as the farm reports it: the public RankResult, whose
// output is left empty (Client::output_text fetches it), and where the
// rank's output.txt and other files are kept.
struct StoredRankResult {
  RankResult result;
  StoredBytes output;       // output.txt
  StoredBytes files;        // the rest of output_dir as a tar
  int64_t finish_seq = 0;   // the order in which the job's ranks finished, from 1
};

// Ranks a retry runs again, ascending, and their job after it.
struct RetriedRanks {
  std::vector<int> ranks;
  JobSummary job;
};

// A rank's output as read while it runs, or its result once it ended.
struct RankOutputPiece {
  RankStatus state = RankStatus::kPending;
  std::string data;     // output.txt of attempt `attempt` from the offset asked
  int64_t attempt = 0;  // the attempt running
  std::optional<StoredRankResult> result;  // set once the rank ended
};

}  // namespace pesc

#endif  // PESC_CLIENT_CLIENT_TYPES_H_
