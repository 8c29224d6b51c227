#ifndef PESC_WORKER_RANK_RUNNER_H_
#define PESC_WORKER_RANK_RUNNER_H_

// Runs one rank task end to end on this machine: prepares the rank's
// app_dir, output_dir and checkpoint_dir, starts the process with the rank
// contract, waits, and turns what it left into a RankOutcome.

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "absl/synchronization/mutex.h"

#include "executor/domain.h"
#include "executor/rank_process.h"
#include "executor/slot_launcher.h"
#include "executor/warm_runner.h"
#include "worker/rank_task.h"
#include "worker/blob_source.h"
#include "worker/disk_room.h"
#include "worker/process_cache.h"
#include "worker/rank_isolation.h"

namespace pesc {

// What the worker wants to hear while a rank runs; called on the rank's
// slot thread or its watchdog.
struct RankHooks {
  // Sees the running process (so it can be cancelled), then nullptr before
  // the process is gone.
  std::function<void(RankProcess*)> on_start;
  // A checkpoint saved while the rank runs.
  std::function<void(const BlobId&)> on_checkpoint;
};

class RankRunner {
 public:
  // `isolation` null: ranks run as the worker, unsandboxed, under their
  // limits. `gpu_host`: this machine has GPUs, which ranks see only when
  // given. A rank that ends while `disk_room` is short fails as the worker's
  // fault (its writes may have been lost).
  RankRunner(std::filesystem::path runs_dir, InterpreterTable& interpreters, ProcessCache& cache,
             const DiskRoom& disk_room, std::shared_ptr<RankIsolation> isolation = nullptr, bool gpu_host = false)
      : runs_dir_(std::move(runs_dir)),
        interpreters_(interpreters),
        cache_(cache),
        disk_room_(disk_room),
        isolation_(isolation ? std::move(isolation) : RankIsolation::limits_only()),
        gpu_host_(gpu_host) {}
  ~RankRunner();

  // Sets of output and checkpoint dirs a warm runner's slot has: while the
  // worker collects one rank's, the runner's next ranks are already queued
  // in the others, so neither waits for the other.
  static constexpr int kWarmSets = 3;

  // Runs in slot `slot`'s directories, which must be empty.
  RankOutcome run(const RankTask& task, int slot, BlobSource& blobs, const RankHooks& hooks);

  // Whether run_chunk may run the chunk's ranks overlapped.
  static bool can_pipeline(const RankTask& task);
  // Runs a chunk's ranks on the slot's warm runner, up to kWarmSets - 1 of
  // them sent ahead in the slot's other sets of directories while the last
  // one's output is read; each rank still gets empty directories. `take` gets each result in rank order; a rank starts
  // only while `keep_going` says so. Ends early when the runner dies.
  void run_chunk(RankTask& task, int slot, BlobSource& blobs, const RankHooks& hooks,
                 const std::function<bool()>& keep_going, const std::function<void(RankOutcome)>& take);

  // The output.txt a one-rank attempt in `slot` writes as it runs.
  std::filesystem::path output_file(int slot) const;

  // Empties a slot's directories for its next rank. Done after the result is
  // sent, off the latency path; a slot's directories are reused because
  // creating and removing them per rank is most of a short rank's cost.
  void reset_slot(int slot);

  // Ends the slot's warm runner, if it has one (the slot sat idle).
  void release_warm(int slot);

 private:
  class Watchdog;
  struct DirSet {
    std::filesystem::path output;
    std::filesystem::path checkpoint;
  };
  std::filesystem::path slot_dir(int slot) const;
  // Set 0: the slot's output and checkpoint dirs; sets 1.. a warm runner's spares.
  const DirSet& dir_set(int slot, int set);
  // Empties one set of the slot's directories.
  std::error_code clear_set(int slot, int set);
  // The rank's result from how it ended and what it left in `set`.
  RankOutcome outcome_of(const RankTask& task, int slot, int set, const absl::StatusOr<RankExit>& exit,
                           bool timed_out, BlobSource& blobs);
  // Fails a result the worker's disk may have spoilt.
  void blame_full_disk(RankOutcome& outcome) const;
  // Ends the slot's failed warm runner; how the rank (sent to it at
  // `rank_sent_unix_ms`) ended, for its result.
  absl::StatusOr<RankExit> after_runner_failed(int slot, absl::Status failure, bool timed_out,
                                               int64_t rank_sent_unix_ms);
  // checkpoint_dir packed and uploaded; nullopt when it is empty.
  absl::StatusOr<std::optional<BlobId>> save_checkpoint(const std::filesystem::path& checkpoint_dir,
                                                             BlobSource& blobs);
  absl::Status restore_checkpoint(const BlobId& checkpoint, const std::filesystem::path& checkpoint_dir,
                                  BlobSource& blobs);
  // What a finished rank left in its slot's directories, so emptying them
  // for the next rank needs no listing.
  struct LeftBehind {
    std::vector<std::string> output_entries;
    bool checkpoint_empty = false;
  };
  // A job's process as it was placed in a slot's app_dir, kept there for
  // the job's next rank in the slot. Only a process of plain files is kept:
  // what it held right after placing (names and inodes, which a rank that
  // wrote, removed or replaced a file there changes) is checked before each
  // rank, so the check needs one listing.
  struct PlacedApp {
    std::string job_id;
    std::vector<std::pair<std::string, ino_t>> entries;  // sorted by name
    // The launch's command: the entry's interpreter words and the entry.
    std::vector<std::string> command;
    // A rank started with it: the entry was there, its interpreter
    // reachable, app_dir given to the rank's user. Then the command is
    // reused as it is.
    bool started = false;
  };
  // A slot's warm runner, the job it serves, and the slot's sets of dirs.
  struct SlotState {
    std::string job_id;
    std::vector<int> gpus;  // fixed in its environment at start
    std::unique_ptr<WarmRunner> runner;
    std::array<std::optional<LeftBehind>, kWarmSets> left_behind;  // by the last rank in each set of directories
    std::array<DirSet, kWarmSets> dirs;  // the slot's sets, named once
    bool dirs_made = false;    // set 0's output and checkpoint dirs exist
    bool spares_made = false;  // so do the further sets
    std::optional<PlacedApp> app;  // a process of plain files in app_dir
    // Starts the slot's sandboxed ranks in a sandbox kept between them.
    std::shared_ptr<SlotLauncher> launcher;
  };
  // Makes the slot's directories for the job's rank, where missing.
  absl::Status make_dirs(SlotState& state, const RankContext& context);
  // Fills app_dir with the job's process and shared files, unless the
  // job's last rank in the slot left them as they were placed.
  absl::Status place_app(SlotState& state, const JobRun& job, const std::filesystem::path& app_dir,
                         BlobSource& blobs);
  SlotState& slot_state(int slot);
  absl::Status place_shared_files(const JobRun& job, const std::filesystem::path& app_dir,
                                  BlobSource& blobs);

  absl::StatusOr<RankExit> execute(const RankTask& task, int slot, BlobSource& blobs,
                                   const RankHooks& hooks, bool& timed_out);
  // The command, environment and isolation of a fresh process for it;
  // `placed`: the job's app in the slot, whose command is reused once known.
  absl::StatusOr<RankLaunch> launch_for(const JobRun& job, const RankContext& context, PlacedApp* placed);
  // Has `launch` start through the slot's launcher when it can, starting
  // one when the slot has none for its sandbox.
  void use_slot_launcher(int slot, RankLaunch& launch);
  // Feeds the rank to the slot's warm runner and waits for it.
  absl::StatusOr<RankExit> run_warm(const RankTask& task, int slot, BlobSource& blobs,
                                    const RankHooks& hooks, bool& timed_out);
  // Fills `result` with the rank's output (and `piped`, the value its
  // runner handed over, as a file of output_dir); returns the names the
  // rank left in output_dir.
  absl::StatusOr<std::vector<std::string>> collect_output(const std::filesystem::path& output_dir,
                                                          std::optional<PipedFile> piped, BlobSource& blobs,
                                                          RankOutcome& outcome);

  const std::filesystem::path runs_dir_;
  InterpreterTable& interpreters_;
  ProcessCache& cache_;
  const DiskRoom& disk_room_;
  const std::shared_ptr<RankIsolation> isolation_;
  const bool gpu_host_;
  std::atomic<bool> slot_launchers_work_{true};  // until one could not start
  absl::Mutex slots_mutex_;
  std::map<int, SlotState> slots_ ABSL_GUARDED_BY(slots_mutex_);
};

}  // namespace pesc

#endif  // PESC_WORKER_RANK_RUNNER_H_
