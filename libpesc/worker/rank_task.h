#ifndef PESC_WORKER_RANK_TASK_H_
#define PESC_WORKER_RANK_TASK_H_

// What the worker runs, as plain C++: the worker agent turns the
// coordinator's messages into these (worker/assignment_conversion.h), and
// everything below it (RankRunner, ProcessCache, RankIsolation) reads them
// only, so it can be tested without protos or a coordinator.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/blob_id.h"
#include "executor/sandbox.h"

namespace pesc {

// What every rank of one job runs, the same for all its attempts: a worker
// gets it once per job (v1::JobDescription) and shares it among them.
struct JobRun {
  std::string job_id;
  int world_size = 0;
  std::string domain;  // a built-in name or a command template
  // The process: an archive unpacked into every app_dir, or else one file
  // placed there as `entry`.
  BlobId process;
  bool archive = false;
  std::string entry;
  std::vector<std::string> parameters;
  int64_t timeout_ms = 0;              // 0: none
  int64_t checkpoint_interval_ms = 0;  // 0: only when the attempt ends
  bool warm_runner = false;            // the entry is a pesc runner (executor/warm_runner.h)
  std::vector<SharedInput> shared;
  ResourceLimits limits;
  bool network = false;
  // Its ranks run as a gang: each holds its slot until the coordinator
  // starts them all, telling them where rank 0 listens.
  bool gang = false;
  std::optional<uint64_t> seed;
};

// How a rank failed, by whose fault (v1::FailureClass): only kWorker
// counts against the worker.
enum class Fault { kNone, kJob, kRank, kWorker };

// How one rank of a task ended, and what it left: what the worker reports.
struct RankOutcome {
  int rank = 0;
  int64_t attempt_id = 0;
  bool succeeded = false;
  Fault fault = Fault::kNone;  // set when it failed
  int exit_code = 0;
  int signal = 0;  // non-zero: killed by it
  int64_t start_unix_ms = 0;
  int64_t end_unix_ms = 0;
  int64_t cpu_ms = 0;
  int64_t max_rss_kb = 0;
  bool timed_out = false;      // killed for running past the job's timeout
  std::string limit_exceeded;  // the limit it was killed for ("memory", "cpu", "output")
  std::string error;           // why it could not run or be collected
  std::optional<Payload> output_txt;  // all it printed; none when it could not be read
  // The rest of output_dir as a tar: inline when small, else the blob.
  std::string files_inline;
  std::optional<BlobId> files;
  std::vector<std::string> left_out;  // output_dir entries left out (links leading outside it)
  std::optional<BlobId> checkpoint;   // checkpoint_dir as it left it; none when empty
};

// One attempt for this worker: its job's run and what is this attempt's own.
struct RankTask {
  std::shared_ptr<const JobRun> job;  // never null
  int64_t attempt_id = 0;
  // Ranks rank .. rank + rank_count - 1, run one after another in one slot.
  int rank = 0;
  int rank_count = 1;
  // The rank's last saved checkpoint, restored into checkpoint_dir first.
  std::optional<BlobId> checkpoint;
  std::vector<int> gpus;  // driver indices it has to itself; empty: none
  // Where rank 0 of its gang listens; for a gang, told when it starts.
  std::string master_addr = "127.0.0.1";
  int master_port = 9000;
};

}  // namespace pesc

#endif  // PESC_WORKER_RANK_TASK_H_
