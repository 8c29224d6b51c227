#ifndef PESC_POOL_BATCH_SYSTEM_H_
#define PESC_POOL_BATCH_SYSTEM_H_

// A batch system as a template: the command lines that submit, list and
// cancel pilot jobs, and the job script a pilot runs. Slurm ships built in
// (libpesc/pool/batch/slurm.batch); any other (PBS/Torque, SGE, LSF,
// HTCondor have the same shape) is a template file a user writes, in
// settings_file.h's format with the keys below (README: "Pools").
//
// In a command line, an argument holding {name} takes that value, and is
// left out when the value is empty (so "--partition={partition}" goes only
// with a partition); {extra} alone stands for the pool's extra submit
// arguments, one argument each.

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pool/pool_types.h"

namespace pesc {

struct BatchSystem {
  std::string name;
  // Values: {pool}, {script}, {count}, {last} (count - 1, empty for one
  // pilot: then it is no array), {partition}, {minutes}, {slots}, {extra}.
  // Prints the new job's id first on its output.
  std::vector<std::string> submit;
  // Values: {pool}. One line per pilot of the pool: "ID STATE REASON...".
  std::vector<std::string> status;
  // Values: {ids}, one argument per pilot.
  std::vector<std::string> cancel;
  // A job's pilots as the status command names them: {job} alone, or
  // {job} and {index} for each task of an array.
  std::string single_id = "{job}";
  std::string array_id = "{job}_{index}";
  // Status states of a pilot that runs; any other listed state waits.
  std::vector<std::string> running_states;
  // The shell script each pilot runs. Values: {pool}, {log_dir} (where
  // pilot-ID.out goes) and {worker} (pesc-worker and its arguments), both
  // shell-quoted. It must give
  // the worker an id "pilot-{pool}-<the pilot's id>" (the pool knows its
  // pilot joined by it) and, when it can, --end-unix.
  std::string script;
};

// Slurm: sbatch, squeue, scancel.
const BatchSystem& slurm_batch_system();

// The built-in batch system of that name; NotFound for an unknown one.
absl::StatusOr<const BatchSystem*> find_batch_system(const std::string& name);

// A batch system from a template's text; each mistake (a missing or unknown
// key, an unknown placeholder) is InvalidArgument naming `file`, the line
// and what to change.
absl::StatusOr<BatchSystem> parse_batch_system(const std::string& text, const std::string& file);

// A pool's batch system: its template when it has one (batch_template),
// else the built-in one it names (batch_system).
absl::StatusOr<BatchSystem> batch_system_of(const PoolSpec& spec);

// The command line with its values filled in, as the header says.
std::vector<std::string> expand_command(const std::vector<std::string>& command,
                                        const std::map<std::string, std::string>& values,
                                        const std::vector<std::string>& extra = {});

// `text` with each {name} of `values` replaced.
std::string expand_text(std::string text, const std::map<std::string, std::string>& values);

// The word in single quotes for a POSIX shell.
std::string shell_quote(const std::string& word);

}  // namespace pesc

#endif  // PESC_POOL_BATCH_SYSTEM_H_
