#ifndef PESC_TESTS_RANK_CHECKS_H_
#define PESC_TESTS_RANK_CHECKS_H_

// What a user cares about after any fault: every rank back exactly once, in
// rank order, its bytes intact. For ranks that print "rank N".

#include <set>
#include <string>

#include "gtest/gtest.h"
#include "pesc/pesc.h"

namespace pesc::testing {

inline std::string expected_lines(int n) {
  std::string text;
  for (int rank = 0; rank < n; ++rank) text += "rank " + std::to_string(rank) + "\n";
  return text;
}

inline void expect_each_rank_once(const Results& results, int n) {
  ASSERT_EQ(results.size(), static_cast<size_t>(n));
  EXPECT_EQ(results.output(), expected_lines(n));
  std::set<int64_t> attempts;
  for (const RankResult& rank : results) {
    EXPECT_TRUE(rank.ok()) << "rank " << rank.rank << ": " << rank.output << rank.error;
    attempts.insert(rank.attempt);
  }
  EXPECT_EQ(attempts.size(), static_cast<size_t>(n));
}

}  // namespace pesc::testing

#endif  // PESC_TESTS_RANK_CHECKS_H_
