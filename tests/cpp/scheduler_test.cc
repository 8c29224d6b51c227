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

TEST(FairShareSchedulerTest, RanksQueueOnlyBehindSlotsThatFreeSoon) {
  FairShareScheduler scheduler;
  // Two slots, one running a rank that may take hours; the other frees
  // soon, and 10 short ranks may queue behind it.
  const WorkerCapacity worker{.worker_id = "w",
                              .free = 2 + 10 - 1,
                              .slots = 2,
                              .held_by_job = {{"hours", 1}},
                              .slots_freeing_soon = 1,
                              .prefetch_per_slot = 10};
  const QueuedJob quick{.job_id = "quick", .user = "ana", .created_unix_ms = 1, .pending = 100, .prefetch_per_slot = 10};
  const QueuedJob unknown{.job_id = "new", .user = "bob", .created_unix_ms = 2, .pending = 100, .prefetch_per_slot = 0};
  EXPECT_EQ(scheduler.place({quick}, {worker}).size(), 11u) << "one slot's worth, not two";
  QueuedJob also_quick = quick;
  also_quick.job_id = "also-quick";
  also_quick.user = "bob";
  EXPECT_EQ(scheduler.place({quick, also_quick}, {worker}).size(), 11u) << "short jobs share the slot's room";
  EXPECT_EQ(scheduler.place({unknown}, {worker}).size(), 1u) << "the slot that frees soon, and none behind it";
  // Ana's short rank takes the slot, Bob's may-be-long rank waits behind it
  // alone: nothing queues behind a rank that may take hours.
  const std::vector<Placement> placements = scheduler.place({quick, unknown}, {worker});
  EXPECT_EQ(count_by_job(placements), (std::map<std::string, int>{{"new", 1}, {"quick", 1}}));
  WorkerCapacity all_long = worker;
  all_long.held_by_job = {{"hours", 2}};
  all_long.slots_freeing_soon = 0;
  all_long.free = 2 - 2;
  EXPECT_TRUE(scheduler.place({quick, unknown}, {all_long}).empty()) << "every slot runs an hour's rank";
}

TEST(WhyWaitingTest, SaysWhyNoWorkerCanTakeTheRanksAndNothingWhenOneCan) {
  QueuedJob job{"j", "ana", 1, 3};
  job.rooms = {"lab-b"};
  EXPECT_EQ(why_waiting(job, {}), "no worker is connected to the coordinator");
  const ConnectedWorker in_public{.capacity = {"wp", 2}};
  EXPECT_EQ(why_waiting(job, {in_public}),
            "no connected worker is in room lab-b (connected workers serve public); start one with "
            "pesc-worker --room lab-b");
  const ConnectedWorker in_b_quarantined{.capacity = {"wb", 2, {"lab-b"}}, .unavailable = "quarantined: 2 ranks"};
  EXPECT_EQ(why_waiting(job, {in_public, in_b_quarantined}),
            "no worker that may run it takes ranks now: wb is quarantined: 2 ranks");
  const ConnectedWorker in_b_busy{.capacity = {"wb2", 0, {"lab-b"}}};
  EXPECT_EQ(why_waiting(job, {in_b_quarantined, in_b_busy}), "") << "busy slots are an ordinary wait";
  job.pending = 0;
  EXPECT_EQ(why_waiting(job, {}), "") << "nothing pending, nothing to explain";
}

TEST(FairShareSchedulerTest, AJobGoesOnlyToWorkersThatCanRunItsDomain) {
  FairShareScheduler scheduler;
  QueuedJob python{"p", "ana", 1, 4};
  python.domain = "python";
  WorkerCapacity without_python{"w1", 4};
  without_python.unavailable_domains = {{"python", "program python3 was not found on PATH"}};
  for (const Placement& placement : scheduler.place({python}, {without_python, {"w2", 2}})) {
    EXPECT_EQ(placement.worker_id, "w2");
  }
  EXPECT_EQ(why_waiting(python, {{.capacity = without_python}}),
            "no worker can run the python domain: w1: program python3 was not found on PATH");
  QueuedJob shell{"s", "ana", 1, 2};
  shell.domain = "shell";
  EXPECT_EQ(scheduler.place({shell}, {without_python}).size(), 2u);
}

TEST(WhyWaitingTest, ASameMachineJobWaitsForItsWorker) {
  QueuedJob together{"t", "ana", 1, 6};
  together.same_machine = true;
  together.pinned_worker = "w1";
  EXPECT_EQ(why_waiting(together, {{.capacity = {"w2", 4}}}), "its ranks run on one machine, and w1 is not connected");
}

WorkerCapacity gang_worker(std::string id, int slots, int free, std::vector<std::string> rooms = {kPublicRoom}) {
  return {.worker_id = std::move(id), .free = free, .rooms = std::move(rooms), .slots = slots};
}

TEST(GangPlanTest, PlacesTheWholeGangOnFreeSlotsMostFreeFirst) {
  QueuedJob gang{.job_id = "gang", .user = "ana", .pending = 4};
  GangPlan plan = plan_gang(gang, {gang_worker("w1", 2, 1), gang_worker("w2", 2, 2), gang_worker("w3", 2, 2)});
  ASSERT_EQ(plan.placements.size(), 4u);
  EXPECT_TRUE(plan.held.empty());
  EXPECT_EQ(count_by_job(plan.placements)["gang"], 4);
  std::map<std::string, int> per_worker;
  for (const Placement& placement : plan.placements) per_worker[placement.worker_id] += 1;
  EXPECT_EQ(per_worker, (std::map<std::string, int>{{"w2", 2}, {"w3", 2}}));
}

TEST(GangPlanTest, HoldsBusyWorkersInsteadOfPlacingPart) {
  QueuedJob gang{.job_id = "gang", .user = "ana", .pending = 3};
  GangPlan plan = plan_gang(gang, {gang_worker("w1", 2, 1), gang_worker("w2", 2, -3), gang_worker("w3", 4, 0)});
  EXPECT_TRUE(plan.placements.empty()) << "no rank starts before every rank has a slot";
  EXPECT_EQ(plan.held, (std::vector<std::string>{"w1", "w3"}));
}

TEST(GangPlanTest, GangLargerThanItsRoomsNeitherPlacesNorHolds) {
  QueuedJob gang{.job_id = "gang", .user = "ana", .pending = 4, .rooms = {"lab-b"}};
  GangPlan plan = plan_gang(gang, {gang_worker("w1", 2, 2, {"lab-b"}), gang_worker("w2", 8, 8, {"lab-a"})});
  EXPECT_TRUE(plan.placements.empty());
  EXPECT_TRUE(plan.held.empty());
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
