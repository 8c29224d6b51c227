#include "scheduler/fair_share.h"

#include <map>

#include "gtest/gtest.h"

namespace pesc {
namespace {

std::map<std::string, int> count_by_job(const std::vector<Placement>& placements) {
  std::map<std::string, int> counts;
  for (const Placement& placement : placements) counts[placement.job_id] += 1;
  return counts;
}

TEST(FairShareSchedulerTest, FillsEveryFreeSlotAndNoMore) {
  FairShareScheduler scheduler;
  auto placements = scheduler.place({{"job", "ana", 1, 100}}, {{"w1", 2}, {"w2", 3}});
  EXPECT_EQ(placements.size(), 5u);
  std::map<std::string, int> per_worker;
  for (const Placement& placement : placements) per_worker[placement.worker_id] += 1;
  EXPECT_EQ(per_worker["w1"], 2);
  EXPECT_EQ(per_worker["w2"], 3);
}

TEST(FairShareSchedulerTest, NeverPlacesMoreThanPending) {
  FairShareScheduler scheduler;
  EXPECT_EQ(scheduler.place({{"job", "ana", 1, 2}}, {{"w1", 8}}).size(), 2u);
  EXPECT_TRUE(scheduler.place({}, {{"w1", 8}}).empty());
  EXPECT_TRUE(scheduler.place({{"job", "ana", 1, 2}}, {{"w1", 0}}).empty());
}

TEST(FairShareSchedulerTest, MostFreeWorkerFirst) {
  FairShareScheduler scheduler;
  auto placements = scheduler.place({{"job", "ana", 1, 1}}, {{"busy", 1}, {"idle", 4}});
  ASSERT_EQ(placements.size(), 1u);
  EXPECT_EQ(placements[0].worker_id, "idle");
}

TEST(FairShareSchedulerTest, LeastUsedUserGoesFirst) {
  FairShareScheduler scheduler;
  scheduler.set_usage({{"heavy", 1'000'000}, {"light", 10}});
  auto placements = scheduler.place({{"old", "heavy", 1, 10}, {"new", "light", 2, 10}}, {{"w", 1}});
  ASSERT_EQ(placements.size(), 1u);
  EXPECT_EQ(placements[0].job_id, "new");
}

TEST(FairShareSchedulerTest, UsersWithEqualUsageAlternate) {
  FairShareScheduler scheduler;
  scheduler.charge("ana", 100);
  scheduler.charge("bob", 100);
  auto placements = scheduler.place({{"a", "ana", 1, 10}, {"b", "bob", 2, 10}}, {{"w", 6}});
  auto counts = count_by_job(placements);
  EXPECT_EQ(counts["a"], 3);
  EXPECT_EQ(counts["b"], 3);
}

TEST(FairShareSchedulerTest, OldestJobOfAUserFirst) {
  FairShareScheduler scheduler;
  auto placements = scheduler.place({{"newer", "ana", 20, 5}, {"older", "ana", 10, 5}}, {{"w", 5}});
  auto counts = count_by_job(placements);
  EXPECT_EQ(counts["older"], 5);
  EXPECT_EQ(counts.count("newer"), 0u);
}

TEST(FairShareSchedulerTest, ChargedTimeShiftsTheShare) {
  FairShareScheduler scheduler;
  // Ana's ranks take 10x Bob's: Bob gets about ten placements per Ana's one.
  // Equal totals; each placement counts as its user's typical rank time.
  for (int i = 0; i < 10; ++i) scheduler.charge("ana", 1000);
  for (int i = 0; i < 100; ++i) scheduler.charge("bob", 100);
  auto counts = count_by_job(scheduler.place({{"a", "ana", 1, 100}, {"b", "bob", 1, 100}}, {{"w", 22}}));
  EXPECT_EQ(counts["a"], 2);
  EXPECT_EQ(counts["b"], 20);
}

}  // namespace
}  // namespace pesc
