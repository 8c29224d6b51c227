#ifndef PESC_TESTS_JOB_STORE_EXAMPLES_H_
#define PESC_TESTS_JOB_STORE_EXAMPLES_H_

// Jobs and results the job ledger's tests store.

#include <string>

#include "common/clock.h"
#include "ledger/job_types.h"

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

inline RankRecord exited(int code, int64_t start = 1000, int64_t end = 1500) {
  RankRecord ended;
  ended.result.exit_code = code;
  ended.result.status = code == 0 ? RankStatus::kSucceeded : RankStatus::kFailed;
  ended.result.start = from_unix_ms(start);
  ended.result.end = from_unix_ms(end);
  ended.output.inline_bytes = "out " + std::to_string(code);
  return ended;
}

inline RankRecord of_rank(int rank, int code) {
  RankRecord ended = exited(code);
  ended.result.rank = rank;
  ended.files.inline_bytes = "tar of rank " + std::to_string(rank);
  return ended;
}

// A rank the worker's full disk failed: the worker's fault, not the rank's.
inline RankRecord spoilt_by_a_full_disk() {
  RankRecord ended = exited(0);
  ended.result.status = RankStatus::kFailed;
  ended.result.failure_class = FailureClass::kWorker;
  ended.result.error = "the worker's disk was full while the rank ran";
  return ended;
}

}  // namespace pesc

#endif  // PESC_TESTS_JOB_STORE_EXAMPLES_H_
