#include "scheduler/fair_share.h"

#include <map>
#include <set>

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

TEST(FairShareSchedulerTest, JobsRunOnlyInTheirRooms) {
  FairShareScheduler scheduler;
  QueuedJob lab_b{"b", "ana", 1, 4};
  lab_b.rooms = {"lab-b"};
  QueuedJob anywhere{"p", "bob", 2, 4};
  WorkerCapacity in_b{"wb", 2, {"lab-b"}};
  WorkerCapacity in_public{"wp", 2};
  std::map<std::string, std::set<std::string>> workers_of;
  for (const Placement& placement : scheduler.place({lab_b, anywhere}, {in_b, in_public})) {
    workers_of[placement.job_id].insert(placement.worker_id);
  }
  EXPECT_EQ(workers_of["b"], std::set<std::string>{"wb"});
  EXPECT_EQ(workers_of["p"], std::set<std::string>{"wp"});
  EXPECT_TRUE(scheduler.place({lab_b}, {in_public}).empty()) << "no worker in lab-b: nothing placed";
  EXPECT_EQ(scheduler.place({lab_b}, {WorkerCapacity{"any", 1, {kEveryRoom}}}).size(), 1u);
}

TEST(FairShareSchedulerTest, SameMachineJobStaysOnOneWorker) {
  FairShareScheduler scheduler;
  QueuedJob together{"t", "ana", 1, 6};
  together.same_machine = true;
  std::set<std::string> used;
  auto placements = scheduler.place({together}, {{"w1", 3}, {"w2", 4}});
  for (const Placement& placement : placements) used.insert(placement.worker_id);
  EXPECT_EQ(placements.size(), 4u) << "only the chosen worker's free capacity";
  EXPECT_EQ(used, std::set<std::string>{"w2"});
  together.pinned_worker = "w1";
  for (const Placement& placement : scheduler.place({together}, {{"w1", 1}, {"w2", 4}})) {
    EXPECT_EQ(placement.worker_id, "w1");
  }
}

TEST(FairShareSchedulerTest, GpuRanksGetFreeGpusOfTheirCapability) {
  FairShareScheduler scheduler;
  QueuedJob gpu_job{"g", "ana", 1, 5};
  gpu_job.gpus_per_rank = 1;
  gpu_job.min_capability = 8.0;
  WorkerCapacity gpu_host{"gpu", 4};
  gpu_host.free_gpus = {{0, 8.6}, {1, 7.5}, {2, 9.0}};
  WorkerCapacity cpu_host{"cpu", 8};
  auto placements = scheduler.place({gpu_job}, {gpu_host, cpu_host});
  ASSERT_EQ(placements.size(), 2u) << "two GPUs of 8.0 or more, one rank each";
  EXPECT_EQ(placements[0].worker_id, "gpu");
  EXPECT_EQ(placements[0].gpus, std::vector<int>{0}) << "the least capable GPU good enough first";
  EXPECT_EQ(placements[1].gpus, std::vector<int>{2});
  gpu_job.min_capability = 9.5;
  EXPECT_TRUE(scheduler.place({gpu_job}, {gpu_host, cpu_host}).empty()) << "no GPU of 9.5";
  QueuedJob cpu_job{"c", "bob", 2, 3};
  for (const Placement& placement : scheduler.place({cpu_job}, {gpu_host})) EXPECT_TRUE(placement.gpus.empty());
}

}  // namespace
}  // namespace pesc
