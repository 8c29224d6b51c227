#include "pool/batch_system.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace pesc {

const BatchSystem& slurm_batch_system() {
  static const BatchSystem kSlurm{
      .name = "slurm",
      .submit = {"sbatch", "--parsable", "--job-name=pesc-{pool}", "--partition={partition}", "--time={minutes}",
                 "--cpus-per-task={slots}", "--array=0-{last}", "--output=/dev/null", "{extra}", "{script}"},
      .status = {"squeue", "--noheader", "--array", "--name=pesc-{pool}", "--format=%i %T %r"},
      .cancel = {"scancel", "{ids}"},
      .running_states = {"RUNNING", "COMPLETING"},
      // squeue knows when the allocation ends (newer Slurm also sets
      // SLURM_JOB_END_TIME); the worker drains before it.
      .script = R"script(#!/bin/sh
# A pesc pilot of pool {pool}: a pesc-worker that joins the coordinator,
# runs ranks while there are any, and leaves when idle or before its walltime.
PILOT_ID="${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}${SLURM_ARRAY_TASK_ID:+_$SLURM_ARRAY_TASK_ID}"
exec >{log_dir}/"pilot-$PILOT_ID.out" 2>&1
END_UNIX="${SLURM_JOB_END_TIME:-}"
if [ -z "$END_UNIX" ]; then
  END="$(squeue --noheader --format=%e --jobs="$SLURM_JOB_ID" 2>/dev/null)"
  END_UNIX="$(date -d "$END" +%s 2>/dev/null || echo 0)"
fi
echo "pilot $PILOT_ID on $(hostname): the allocation ends at unix time $END_UNIX"
WORK_DIR="${TMPDIR:-/tmp}/pesc-pilot-$PILOT_ID"
{worker} --id "pilot-{pool}-$PILOT_ID" --end-unix "$END_UNIX" --work-dir "$WORK_DIR"
status=$?
rm -rf "$WORK_DIR"
exit $status
)script",
  };
  return kSlurm;
}

absl::StatusOr<const BatchSystem*> find_batch_system(const std::string& name) {
  if (name == slurm_batch_system().name) return &slurm_batch_system();
  return absl::NotFoundError(absl::StrCat("no batch system \"", name, "\"; pesc ships slurm"));
}

std::string expand_text(std::string text, const std::map<std::string, std::string>& values) {
  std::vector<std::pair<std::string, std::string>> replacements;
  for (const auto& [name, value] : values) replacements.emplace_back(absl::StrCat("{", name, "}"), value);
  return absl::StrReplaceAll(text, replacements);
}

std::vector<std::string> expand_command(const std::vector<std::string>& command,
                                        const std::map<std::string, std::string>& values,
                                        const std::vector<std::string>& extra) {
  std::vector<std::string> argv;
  for (const std::string& argument : command) {
    if (argument == "{extra}" || argument == "{ids}") {
      argv.insert(argv.end(), extra.begin(), extra.end());
      continue;
    }
    bool empty_value = false;
    for (const auto& [name, value] : values) {
      if (value.empty() && argument.find(absl::StrCat("{", name, "}")) != std::string::npos) empty_value = true;
    }
    if (!empty_value) argv.push_back(expand_text(argument, values));
  }
  return argv;
}

std::string shell_quote(const std::string& word) {
  return absl::StrCat("'", absl::StrReplaceAll(word, {{"'", "'\\''"}}), "'");
}

}  // namespace pesc
