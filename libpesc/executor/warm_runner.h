#ifndef PESC_EXECUTOR_WARM_RUNNER_H_
#define PESC_EXECUTOR_WARM_RUNNER_H_

// A warm interpreter that runs rank after rank of one job, so a function-mode
// rank does not pay an interpreter start. It speaks the runner protocol, the
// same for every language (bindings/python/pesc/_runner.py, inst/runner.R):
//
// The runner is started like a rank (its PESC flags, environment and
// app_dir), with PESC_RUNNER_FDS="3,4": it reads commands from fd 3 and
// answers on fd 4, one line each, fields separated by tabs.
//   worker -> runner   "rank\t<rank>\t<output_dir>\t<checkpoint_dir>\n"
//   runner -> worker   "done\t<status>\n"   (status 0: the rank succeeded)
//                  or  "done\t<status>\t<name>\t<size>\n" and <size> bytes
// For each rank the runner sets PESC_RANK, PESC_OUTPUT_DIR and
// PESC_CHECKPOINT_DIR, sends what the rank prints to output_dir/output.txt,
// and leaves its value in output_dir. A small value may come back with the
// answer instead (the second form, at most kMaxPipedFileBytes): the worker
// then adds it to the rank's output as output_dir/<name>, which saves a
// file's creation, reading and removal per rank. EOF on fd 3 asks it to
// exit. A runner that dies mid-rank fails that rank; the worker starts a
// fresh one.
//
// Thread-safety: run() from one thread; terminate() from any.

#include <chrono>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "executor/rank_process.h"

namespace pesc {

inline constexpr size_t kMaxPipedFileBytes = 1 << 20;

struct RunnerAnswer {
  int status = 0;
  std::string file_name;  // empty: no file follows the line
  size_t file_size = 0;
};

// A runner's answer line (without its newline). Anything but the protocol's
// two forms, a file name that is not a plain name in output_dir, or a size
// over kMaxPipedFileBytes is DataLoss: the process does not speak the protocol.
absl::StatusOr<RunnerAnswer> parse_runner_answer(const std::string& line);

class WarmRunner {
 public:
  // `launch` as for a plain rank; its output_file takes what the runner
  // prints between ranks.
  static absl::StatusOr<std::unique_ptr<WarmRunner>> start(RankLaunch launch);
  ~WarmRunner();  // closes the command pipe, then kills what is left

  // Runs one rank and waits for its answer. An error means the runner died
  // (or was terminated) during the rank; it is of no further use then.
  absl::StatusOr<RankExit> run(int rank, const std::filesystem::path& output_dir,
                               const std::filesystem::path& checkpoint_dir);
  // run() in two halves, so the worker can collect one rank's output while
  // the next one runs: send() starts a rank, receive() waits for its answer.
  absl::Status send(int rank, const std::filesystem::path& output_dir, const std::filesystem::path& checkpoint_dir);
  absl::StatusOr<RankExit> receive();

  // Ends the runner's process group (a cancel or a timeout); run() returns.
  void terminate(std::chrono::milliseconds grace);
  RankProcess& process() { return *process_; }
  bool alive() const { return alive_; }

 private:
  WarmRunner(std::unique_ptr<RankProcess> process, int commands_fd, int answers_fd);
  bool read_more();  // false at EOF or on an error
  absl::StatusOr<std::string> read_answer();
  absl::StatusOr<std::string> read_bytes(size_t size);

  std::unique_ptr<RankProcess> process_;
  int commands_fd_;
  int answers_fd_;
  std::string pending_;  // bytes read past the last answer
  int64_t cpu_ms_ = -1;  // its CPU time when it last answered, or before its first rank; -1 before that
  std::deque<int64_t> sent_unix_ms_;  // when each rank not yet answered was sent
  int64_t answered_unix_ms_ = 0;      // when it last answered
  bool alive_ = true;
};

}  // namespace pesc

#endif  // PESC_EXECUTOR_WARM_RUNNER_H_
