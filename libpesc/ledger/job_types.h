#ifndef PESC_LEDGER_JOB_TYPES_H_
#define PESC_LEDGER_JOB_TYPES_H_

// What the coordinator's core (the ledger, the dispatcher, FarmState) keeps
// of jobs, as plain C++: the services turn the protocol's messages into
// these and back in ledger/ledger_conversion.h alone, and SqliteJobStore
// stores them in the protocol's bytes, so nothing in between reads a
// generated type.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/blob_id.h"
#include "common/job_state.h"
#include "common/rank_time.h"
#include "pesc/pesc.h"

namespace pesc {

// A job as submitted, fixed from then on: what it runs, how many ranks, for
// whom, and the user's options. Its process and shared files are blobs the
// coordinator holds (or, for shared files, URLs the workers fetch).
struct JobSpec {
  // A built-in domain name (native, python, R, shell, java) or a command
  // template containing {entry}.
  std::string domain;
  BlobId process;
  // The process is an archive unpacked into every rank's app_dir; else one
  // file, its own entry point.
  bool archive = false;
  int repetitions = 0;
  // The user's values, identical for every rank, passed byte for byte.
  std::vector<std::string> parameters;
  std::string user;
  std::vector<SharedInput> shared;
  // The rest, as the user gave them; options.shared stays empty (`shared`
  // holds them uploaded).
  MapOptions options;
};

struct JobRecord {
  std::string id;
  JobSpec spec;
  JobState state = JobState::kRunning;
  Progress progress;  // waiting and queued_at_workers are the dispatcher's, not kept
  int64_t created_unix_ms = 0;
  int64_t finished_unix_ms = 0;
  std::string failure;  // why a kFailed job ended
};

// How one rank ended (or, from ranks_page and rank_now, where it is): the
// public RankResult, whose output, duration and has_files are its reader's
// to fill, and what the ledger keeps of the rank besides.
struct RankRecord {
  RankResult result;
  Payload output;  // output.txt
  Payload files;   // the rest of output_dir as a tar; empty when it held nothing else
  std::optional<BlobId> checkpoint;  // checkpoint_dir as the attempt left it
  int64_t finish_seq = 0;            // order in which the job's ranks ended, from 1
};

// A rank's output as `pesc logs` reads it now: what its worker sent of it
// while it runs, its result once it ended.
struct RankOutputNow {
  RankStatus state = RankStatus::kPending;
  // While it runs: output.txt of its attempt `attempt_id` from the offset
  // asked (at most a chunk; empty when its worker did not answer in time).
  std::string data;
  int64_t attempt_id = 0;
  std::optional<RankRecord> result;  // once it ended; its output is all it printed
};

// A worker's answer to a read of a running rank's output.txt.
struct OutputAnswer {
  int64_t request_id = 0;
  std::string data;
  bool gone = false;  // the attempt no longer runs there
};

// A job as the coordinator tells of it: its record, whose progress also says
// why its pending ranks wait and how many wait at workers, and (for one job
// asked alone) the workers' pauses during it.
struct JobView {
  JobRecord record;
  std::vector<WorkerPause> pauses;
};

// Folds the time a rank ran (run_time_ms) into `typical_ms` (-1 until a rank
// has ended), an average that follows a change of pace within a few ranks.
// A rank that never started tells nothing.
inline void learn_rank_time(double& typical_ms, const RankResult& result) {
  if (!rank_ran(result)) return;
  const auto took = static_cast<double>(run_time_ms(result));
  typical_ms = typical_ms < 0 ? took : 0.8 * typical_ms + 0.2 * took;
}

// What a worker reports of an attempt that ended: its rank's result or, for
// a chunk, one result per rank it ran.
struct AttemptEnded {
  int64_t attempt_id = 0;
  RankRecord result;              // a one-rank attempt's
  std::vector<RankRecord> chunk;  // a chunk's; empty for one rank
};

struct AttemptRecord {
  int64_t id = 0;
  std::string job_id;
  int rank = 0;
  std::string worker_id;
  int64_t started_unix_ms = 0;
  int rank_count = 1;  // a chunk's ranks: rank .. rank + rank_count - 1
};

// A worker as the ledger remembers it; the rest of what is told of it
// (online, rooms, GPUs, ...) lives with its session (registry/).
struct WorkerRecord {
  std::string id;
  std::string host;
  int slots = 0;
  int64_t last_seen_unix_ms = 0;
  int64_t ranks_done = 0;
};

}  // namespace pesc

#endif  // PESC_LEDGER_JOB_TYPES_H_
