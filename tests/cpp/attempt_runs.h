#ifndef PESC_TESTS_ATTEMPT_RUNS_H_
#define PESC_TESTS_ATTEMPT_RUNS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "pesc/pesc.h"

namespace pesc::testing {

// Whether the ranks that share an accepted attempt are a run of
// consecutive ranks (a chunk of short ranks): a result filed under another
// attempt's rank would break a run. Empty when they are; else what is wrong.
inline std::string attempts_not_in_runs(const Results& results) {
  std::map<int64_t, std::vector<int>> ranks_of_attempt;
  for (size_t i = 0; i < results.size(); ++i) ranks_of_attempt[results[i].attempt].push_back(results[i].rank);
  for (const auto& [attempt, ranks] : ranks_of_attempt) {
    for (size_t i = 1; i < ranks.size(); ++i) {
      if (ranks[i] != ranks[i - 1] + 1) {
        return "attempt " + std::to_string(attempt) + " holds ranks " + std::to_string(ranks[i - 1]) + " and " +
               std::to_string(ranks[i]);
      }
    }
  }
  return "";
}

}  // namespace pesc::testing

#endif  // PESC_TESTS_ATTEMPT_RUNS_H_
