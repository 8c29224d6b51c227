#ifndef PESC_TESTS_JOB_STORE_EXAMPLES_H_
#define PESC_TESTS_JOB_STORE_EXAMPLES_H_

// Jobs and results the job ledger's tests store.

#include <string>

#include "ledger/job_types.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

inline JobSpec spec_of(int repetitions, const std::string& user = "ana") {
  JobSpec spec{.domain = "shell",
               .process = {.sha256 = std::string(64, 'a')},
               .repetitions = repetitions,
               .parameters = {"x y"},
               .user = user};
  spec.options.entry = "run.sh";
  return spec;
}

inline v1::RankResult exited(int code, int64_t start = 1000, int64_t end = 1500) {
  v1::RankResult result;
  result.set_exit_code(code);
  result.set_state(code == 0 ? v1::RANK_STATE_SUCCEEDED : v1::RANK_STATE_FAILED);
  result.set_start_unix_ms(start);
  result.set_end_unix_ms(end);
  result.mutable_output_txt()->set_inline_data("out " + std::to_string(code));
  return result;
}

inline v1::RankResult of_rank(int rank, int code) {
  v1::RankResult result = exited(code);
  result.set_rank(rank);
  result.set_files_inline("tar of rank " + std::to_string(rank));
  return result;
}

// A rank the worker's full disk failed: the worker's fault, not the rank's.
inline v1::RankResult spoilt_by_a_full_disk() {
  v1::RankResult result = exited(0);
  result.set_state(v1::RANK_STATE_FAILED);
  result.set_failure_class(v1::FAILURE_CLASS_WORKER);
  result.set_error("the worker's disk was full while the rank ran");
  return result;
}

}  // namespace pesc

#endif  // PESC_TESTS_JOB_STORE_EXAMPLES_H_
