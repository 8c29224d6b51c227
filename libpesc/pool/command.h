#ifndef PESC_POOL_COMMAND_H_
#define PESC_POOL_COMMAND_H_

// Runs a batch system's command line (sbatch, squeue, scancel) and keeps
// what it printed: its words are what an operator needs when it fails.

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pesc {

struct CommandOutput {
  int exit_code = 0;
  std::string out;
  std::string err;
};

// argv[0] is looked up on PATH. A command still running after `timeout` is
// killed and reported as DeadlineExceeded; one that cannot start, as
// NotFound or Internal.
absl::StatusOr<CommandOutput> run_command(const std::vector<std::string>& argv, std::chrono::seconds timeout);

// The command's failure in one line: its stderr, else its stdout, else its
// exit code.
std::string describe_failure(const std::vector<std::string>& argv, const CommandOutput& output);

}  // namespace pesc

#endif  // PESC_POOL_COMMAND_H_
