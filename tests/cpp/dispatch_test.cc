// The dispatcher's policies on the in-memory ledger and fake worker
// sessions: no daemons, no SQLite.

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dispatch/dispatcher.h"
#include "gtest/gtest.h"
#include "job_store_examples.h"
#include "ledger/memory_job_store.h"

namespace pesc {
namespace {

// Records what the dispatcher would tell workers.
class FakeHost final : public DispatchHost {
 public:
  void assign(const std::string& worker_id, AttemptOrder order, const JobSpec& spec) override {
    described[order.job_id] = spec;
    assigned.emplace_back(worker_id, std::move(order));
  }
  void start_gang(const std::string& worker_id, GangStart start) override {
    gang_starts.emplace_back(worker_id, std::move(start));
  }
  void cancel(const std::string& worker_id, const std::vector<int64_t>& attempts) override {
    cancelled[worker_id].insert(cancelled[worker_id].end(), attempts.begin(), attempts.end());
  }
  void ledger_failed(std::string_view what, const absl::Status& status) override {
    failures.push_back(std::string(what));
  }
  void take_back(const std::vector<int64_t>& attempts) override {
    taken_back.insert(taken_back.end(), attempts.begin(), attempts.end());
  }

  std::vector<std::pair<std::string, AttemptOrder>> assigned;
  std::map<std::string, JobSpec> described;  // the spec of each job assigned, by job id
  std::vector<std::pair<std::string, GangStart>> gang_starts;
  std::map<std::string, std::vector<int64_t>> cancelled;
  std::vector<std::string> failures;
  std::vector<int64_t> taken_back;
};

class DispatchTest : public ::testing::Test {
 protected:
  WorkerSession& add_worker(const std::string& id, int slots, std::vector<std::string> rooms = {kPublicRoom}) {
    WorkerSession& session = workers_.sessions()[id];
    session.host = id + ".lab";
    session.address = "10.0.0." + std::to_string(workers_.sessions().size());
    session.slots = slots;
    session.rooms = std::move(rooms);
    session.outbox = std::make_shared<Outbox>();
    session.last_heard = absl::Now();
    return session;
  }
  void submit(const std::string& job_id, const JobSpec& spec, int64_t created_unix_ms = 0) {
    ASSERT_TRUE(ledger_.create_job(job_id, spec, created_unix_ms).ok());
    jobs_[job_id] = ActiveJob{.spec = spec, .created_unix_ms = created_unix_ms, .pending = spec.repetitions};
  }
  bool round(int64_t now_unix_ms = 10'000) {
    return dispatcher_.dispatch(ledger_, jobs_, workers_, host_, now_unix_ms);
  }
  std::multiset<std::string> jobs_assigned() const {
    std::multiset<std::string> jobs;
    for (const auto& [worker_id, assignment] : host_.assigned) jobs.insert(assignment.job_id);
    return jobs;
  }

  MemoryJobStore ledger_;
  ActiveJobs jobs_;
  WorkerRegistry workers_{/*prefetch_per_slot=*/0};
  FakeHost host_;
  Dispatcher dispatcher_;
};

TEST_F(DispatchTest, UsersShareAWorkerFairly) {
  submit("ana-job", spec_of(4, "ana"), 1);
  submit("bob-job", spec_of(4, "bob"), 2);
  add_worker("w1", 2);
  ASSERT_TRUE(round());
  EXPECT_EQ(jobs_assigned(), (std::multiset<std::string>{"ana-job", "bob-job"}))
      << "one rank each, not two of the older";
  EXPECT_EQ(jobs_["ana-job"].pending, 3);
  EXPECT_EQ(ledger_.job("bob-job")->progress.running, 1);
  EXPECT_EQ(workers_.find("w1")->attempts.size(), 2u);
  ASSERT_TRUE(round());
  EXPECT_EQ(host_.assigned.size(), 2u) << "its slots are full";
}

TEST_F(DispatchTest, TheUserWhoUsedLessGoesFirst) {
  dispatcher_.scheduler().set_usage({{"ana", 60'000}});
  submit("ana-job", spec_of(4, "ana"), 1);
  submit("bob-job", spec_of(4, "bob"), 2);
  add_worker("w1", 1);
  ASSERT_TRUE(round());
  EXPECT_EQ(jobs_assigned(), (std::multiset<std::string>{"bob-job"}));
}

TEST_F(DispatchTest, AJobGoesOnlyToWorkersOfItsRooms) {
  JobSpec spec = spec_of(2);
  spec.options.rooms.push_back("lab");
  submit("j1", spec);
  add_worker("public-worker", 4);
  ASSERT_TRUE(round());
  EXPECT_TRUE(host_.assigned.empty());
  add_worker("lab-worker", 4, {"lab"});
  ASSERT_TRUE(round());
  ASSERT_EQ(host_.assigned.size(), 2u);
  for (const auto& [worker_id, assignment] : host_.assigned) EXPECT_EQ(worker_id, "lab-worker");
}

TEST_F(DispatchTest, QuarantinedPausedAndOfflineWorkersGetNothing) {
  submit("j1", spec_of(3));
  add_worker("sick", 1).quarantined = "2 ranks in a row could not start";
  add_worker("busy", 1).paused = "its owner is at it";
  add_worker("gone", 1).outbox.reset();
  ASSERT_TRUE(round());
  EXPECT_TRUE(host_.assigned.empty());
  EXPECT_EQ(jobs_["j1"].pending, 3);
}

TEST_F(DispatchTest, ASameMachineJobStaysOnTheWorkerItFirstGot) {
  JobSpec spec = spec_of(3);
  spec.options.same_machine = true;
  submit("j1", spec);
  add_worker("w1", 1);
  add_worker("w2", 1);
  ASSERT_TRUE(round());
  ASSERT_EQ(host_.assigned.size(), 1u);
  const std::string pinned = host_.assigned[0].first;
  EXPECT_EQ(jobs_["j1"].pinned_worker, pinned);
  workers_.sessions()[pinned].slots = 3;
  ASSERT_TRUE(round());
  for (const auto& [worker_id, assignment] : host_.assigned) EXPECT_EQ(worker_id, pinned);
}

TEST_F(DispatchTest, GpuRanksGetTheLeastCapableFreeGpusAndWaitForOne) {
  JobSpec spec = spec_of(3);
  spec.options.gpus = 1;
  submit("j1", spec);
  WorkerSession& worker = add_worker("w1", 3);
  worker.gpus = {WorkerGpu{.index = 0, .compute_capability = 8.6}, WorkerGpu{.index = 1, .compute_capability = 7.0}};
  ASSERT_TRUE(round());
  ASSERT_EQ(host_.assigned.size(), 2u) << "two GPUs, two ranks; the third waits";
  EXPECT_EQ(host_.assigned[0].second.gpus.at(0), 1) << "the weaker first";
  EXPECT_EQ(host_.assigned[1].second.gpus.at(0), 0);
  EXPECT_TRUE(workers_.find("w1")->free_gpus().empty());
  auto finished = ledger_.finish_attempt(host_.assigned[0].second.attempt_id, RankRecord(), 10'001);
  ASSERT_TRUE(finished.ok());
  workers_.sessions()["w1"].attempts.erase(host_.assigned[0].second.attempt_id);
  ASSERT_TRUE(round());
  ASSERT_EQ(host_.assigned.size(), 3u);
  EXPECT_EQ(host_.assigned[2].second.gpus.at(0), 1) << "the GPU its finished rank let go";
}

TEST_F(DispatchTest, AGangStartsWholeAndIsToldWhereRankZeroListens) {
  JobSpec spec = spec_of(3);
  spec.options.parallel = true;
  submit("gang", spec);
  add_worker("w1", 2);
  add_worker("w2", 1);
  ASSERT_TRUE(round());
  ASSERT_EQ(host_.assigned.size(), 3u);
  EXPECT_TRUE(host_.described.at("gang").options.parallel);
  EXPECT_TRUE(dispatcher_.gangs().launched("gang"));
  EXPECT_TRUE(host_.gang_starts.empty()) << "nothing starts before every rank is ready";

  int64_t master = 0;
  for (const auto& [worker_id, assignment] : host_.assigned) {
    if (assignment.rank == 0) master = assignment.attempt_id;
  }
  for (const auto& [worker_id, assignment] : host_.assigned) {
    const int free_port = assignment.attempt_id == master ? 29500 : 1;
    dispatcher_.gangs().ready(worker_id, assignment.attempt_id, free_port, workers_, host_);
  }
  ASSERT_EQ(host_.gang_starts.size(), 2u) << "one StartGang per worker";
  const std::string master_worker = host_.assigned[0].first;
  for (const auto& [worker_id, start] : host_.gang_starts) {
    EXPECT_EQ(start.master_port, 29500);
    EXPECT_EQ(start.master_addr, workers_.find(master_worker)->address);
  }
}

TEST_F(DispatchTest, AGangTooLargeForItsRoomsWaitsAndSaysWhy) {
  JobSpec spec = spec_of(4);
  spec.options.parallel = true;
  submit("gang", spec);
  add_worker("w1", 3);
  ASSERT_TRUE(round());
  EXPECT_TRUE(host_.assigned.empty());
  EXPECT_NE(GangPolicy::shortfall("gang", jobs_["gang"], workers_).find("3 slots in all"), std::string::npos);
  add_worker("w2", 1);
  EXPECT_EQ(GangPolicy::shortfall("gang", jobs_["gang"], workers_), "");
}

TEST_F(DispatchTest, AGangHoldsTheWorkersItWaitsOnFromOtherJobs) {
  JobSpec gang = spec_of(2);
  gang.options.parallel = true;
  submit("filler", spec_of(1), 1);
  add_worker("w1", 2);
  ASSERT_TRUE(round());  // the filler takes one of the two slots
  ASSERT_EQ(host_.assigned.size(), 1u);
  submit("gang", gang, 2);
  submit("later", spec_of(5), 3);
  ASSERT_TRUE(round());
  EXPECT_EQ(host_.assigned.size(), 1u) << "the free slot drains for the gang, not for the later job";
}

TEST_F(DispatchTest, StoppingOneRankStopsItsWholeGang) {
  JobSpec spec = spec_of(2);
  spec.options.parallel = true;
  submit("gang", spec);
  add_worker("w1", 1);
  add_worker("w2", 1);
  ASSERT_TRUE(round());
  ASSERT_EQ(host_.assigned.size(), 2u);
  const int64_t lost = host_.assigned[0].second.attempt_id;
  const std::vector<int64_t> stopped = dispatcher_.gangs().stop_gangs_of({lost}, host_);
  EXPECT_EQ(stopped.size(), 2u);
  EXPECT_EQ(host_.cancelled.size(), 2u) << "both workers drop their rank";
  EXPECT_FALSE(dispatcher_.gangs().launched("gang"));
}

TEST_F(DispatchTest, ShortRanksGoInChunksOfConsecutiveRanks) {
  submit("j1", spec_of(200));
  jobs_["j1"].typical_rank_ms = 1;  // its first ranks took 1 ms
  add_worker("w1", 1).typical_rank_ms = 1;
  ASSERT_TRUE(round());
  // A 1 ms pace lets it hold 100 ms of ranks beyond its slot: 101 ranks,
  // in chunks of about 40 ms of work.
  ASSERT_EQ(host_.assigned.size(), 3u);
  std::vector<std::pair<int, int>> chunks;  // first rank, ranks
  for (const auto& [worker_id, assignment] : host_.assigned)
    chunks.emplace_back(assignment.rank, assignment.rank_count);
  EXPECT_EQ(chunks, (std::vector<std::pair<int, int>>{{0, 40}, {40, 40}, {80, 21}}));
  EXPECT_EQ(jobs_["j1"].pending, 99);
  EXPECT_EQ(workers_.find("w1")->ranks_held(), 101);
  EXPECT_EQ(ledger_.job("j1")->progress.running, 101);
}

// A rank's result that ran for `ms` milliseconds.
RankResult rank_that_ran(int64_t ms) {
  RankResult result;
  result.start = std::chrono::system_clock::now();
  result.end = result.start + std::chrono::milliseconds(ms);
  return result;
}

TEST_F(DispatchTest, ChunksShrinkSoTheTailSpreadsOverEverySlot) {
  ActiveJob job{.spec = spec_of(40), .pending = 40};
  job.learn_pace(rank_that_ran(0));  // a rank of under a millisecond
  EXPECT_EQ(FairSharePolicy::chunk_size(job, 2), 5) << "40 ranks / (4 chunks x 2 slots)";
  EXPECT_EQ(FairSharePolicy::chunk_size(job, 20), 1);
  job.spec.options.checkpoint_interval = std::chrono::milliseconds(1000);
  EXPECT_EQ(FairSharePolicy::chunk_size(job, 2), 1) << "checkpoints are per rank";
}

TEST_F(DispatchTest, OnlyTheJobsOwnRanksShowItsRanksAreShort) {
  ActiveJob job{.spec = spec_of(400), .pending = 400};
  EXPECT_EQ(FairSharePolicy::chunk_size(job, 2), 1) << "no chunks before one of its ranks ended";
  job.learn_pace(RankResult{});
  EXPECT_EQ(FairSharePolicy::chunk_size(job, 2), 1) << "a rank that never started tells nothing";
  job.learn_pace(rank_that_ran(2));
  EXPECT_EQ(FairSharePolicy::chunk_size(job, 2), 20) << "40 ms of 2 ms ranks";
  for (int i = 0; i < 30; ++i) job.learn_pace(rank_that_ran(60000));
  EXPECT_EQ(FairSharePolicy::chunk_size(job, 2), 1) << "its ranks became long: one at a time again";
}

TEST_F(DispatchTest, AJobOfUnknownPaceGetsOneRankPerSlotAndNoMoreUntilOneEnds) {
  WorkerSession& worker = add_worker("w1", 2);
  worker.typical_rank_ms = 1;  // an earlier job's ranks took 1 ms here
  submit("j1", spec_of(400));
  ASSERT_TRUE(round());
  EXPECT_EQ(host_.assigned.size(), 2u) << "one rank per slot: its ranks may take hours";
  ASSERT_TRUE(round());
  EXPECT_EQ(worker.ranks_held(), 2) << "none queued behind them while its pace is unknown";
  // Its first rank ends, in 1 ms.
  const int64_t first = host_.assigned[0].second.attempt_id;
  ASSERT_TRUE(ledger_.finish_attempt(first, RankRecord(), 10'001).ok());
  worker.attempts.erase(first);
  jobs_["j1"].typical_rank_ms = 1;
  ASSERT_TRUE(round());
  // Now 100 ms of them per slot, beyond the slot, in chunks of 40.
  EXPECT_EQ(worker.ranks_held(), 202);
  EXPECT_EQ(host_.assigned.size(), 2u + 6u) << "201 ranks in chunks of 40 (and one left over)";
}

TEST_F(DispatchTest, AJobSubmittedWhileEverySlotRunsALongRankQueuesNowhereAndTakesTheFirstSlotThatFrees) {
  add_worker("w1", 2);
  add_worker("w2", 2);
  submit("hours", spec_of(4), 1);
  jobs_["hours"].typical_rank_ms = 3'600'000;
  ASSERT_TRUE(round());
  ASSERT_EQ(host_.assigned.size(), 4u) << "one per slot";
  JobSpec quick = spec_of(100);
  quick.user = "bob";
  submit("quick", quick, 2);
  jobs_["quick"].typical_rank_ms = 1;  // known short, even
  ASSERT_TRUE(round());
  EXPECT_EQ(host_.assigned.size(), 4u) << "nothing queued behind an hour's rank";
  // One of the long ranks ends on w2: its slot takes the short job.
  const auto on_w2 = std::find_if(host_.assigned.begin(), host_.assigned.end(),
                                  [](const auto& assigned) { return assigned.first == "w2"; });
  const int64_t ended = on_w2->second.attempt_id;
  ASSERT_TRUE(ledger_.finish_attempt(ended, RankRecord(), 10'001).ok());
  workers_.sessions()["w2"].attempts.erase(ended);
  ASSERT_TRUE(round());
  ASSERT_EQ(host_.assigned.size(), 5u);
  EXPECT_EQ(host_.assigned[4].first, "w2");
  EXPECT_EQ(host_.assigned[4].second.job_id, "quick");
  EXPECT_FALSE(workers_.find("w1")->ranks_held_by_job().contains("quick"));
}

TEST_F(DispatchTest, AWorkerWithOneSlotOnALongRankQueuesShortRanksForItsOtherSlotOnly) {
  WorkerSession& worker = add_worker("w1", 2);
  worker.typical_rank_ms = 1;
  submit("hours", spec_of(1), 1);
  jobs_["hours"].typical_rank_ms = 3'600'000;
  ASSERT_TRUE(round());
  submit("quick", spec_of(1000), 2);
  jobs_["quick"].typical_rank_ms = 1;
  ASSERT_TRUE(round());
  EXPECT_EQ(worker.ranks_held_by_job(), (std::map<std::string, int>{{"hours", 1}, {"quick", 101}}))
      << "the short slot's rank and 100 ms of 1 ms ranks behind it; none for the long slot";
}

TEST_F(DispatchTest, ALongRankWaitsOnlyBehindShortRanksAndNothingQueuesBehindIt) {
  WorkerSession& worker = add_worker("w1", 1);
  worker.typical_rank_ms = 1;
  submit("short", spec_of(1000), /*created_unix_ms=*/1);
  jobs_["short"].typical_rank_ms = 1;
  ASSERT_TRUE(round());
  EXPECT_EQ(worker.ranks_held(), 101) << "its slot's rank and 100 ms of 1 ms ranks behind it";
  JobSpec long_spec = spec_of(50);
  long_spec.user = "other";
  submit("long", long_spec, /*created_unix_ms=*/2);
  jobs_["long"].typical_rank_ms = 60'000;
  // The short job's first chunk ends; its user has had its turn. The short
  // job's ranks queued at the worker do not keep the long job out.
  dispatcher_.scheduler().charge("ana", 40);
  worker.attempts.erase(worker.attempts.begin());
  ASSERT_TRUE(round());
  EXPECT_EQ(worker.ranks_held_by_job(), (std::map<std::string, int>{{"long", 1}, {"short", 61}}))
      << "a minute's rank behind 61 ms of short ones, and none behind it";
  EXPECT_EQ(host_.assigned.back().second.job_id, "long");
  ASSERT_TRUE(round());
  EXPECT_EQ(worker.ranks_held(), 62);
}

TEST_F(DispatchTest, AStragglerGetsADuplicateOnAnIdleWorkerOnlyWhenItIsLate) {
  submit("j1", spec_of(1));
  add_worker("slow", 1).typical_rank_ms = 100;
  ASSERT_TRUE(round(0));
  ASSERT_EQ(host_.assigned.size(), 1u);
  add_worker("fast", 1).typical_rank_ms = 100;
  ASSERT_TRUE(round(500));
  EXPECT_EQ(host_.assigned.size(), 1u) << "not late yet: at least a second";
  ASSERT_TRUE(round(5'000));
  ASSERT_EQ(host_.assigned.size(), 2u);
  EXPECT_EQ(host_.assigned[1].first, "fast");
  EXPECT_EQ(host_.assigned[1].second.rank, 0);
  EXPECT_EQ(ledger_.running_attempts("j1")->size(), 2u);
  ASSERT_TRUE(round(9'000));
  EXPECT_EQ(host_.assigned.size(), 2u) << "one duplicate per rank";
}

TEST_F(DispatchTest, AJobThatAsksForNoDuplicatesGetsNone) {
  JobSpec spec = spec_of(1);
  spec.options.no_duplicates = true;
  submit("j1", spec);
  add_worker("slow", 1).typical_rank_ms = 100;
  ASSERT_TRUE(round(0));
  add_worker("fast", 1).typical_rank_ms = 100;
  ASSERT_TRUE(round(60'000));
  EXPECT_EQ(host_.assigned.size(), 1u);
}

TEST_F(DispatchTest, AFailedLedgerCallEndsTheRoundAndTellsNoWorker) {
  submit("j1", spec_of(2));
  add_worker("w1", 2);
  ledger_.fail_writes(absl::ResourceExhaustedError("disk full"));
  EXPECT_FALSE(round());
  EXPECT_TRUE(host_.assigned.empty());
  EXPECT_EQ(host_.failures, (std::vector<std::string>{"starting attempts"}));
  EXPECT_EQ(jobs_["j1"].pending, 2) << "memory did not run ahead of the ledger";
  EXPECT_TRUE(workers_.find("w1")->attempts.empty());
  ledger_.fail_writes(absl::OkStatus());
  EXPECT_TRUE(round());
  EXPECT_EQ(host_.assigned.size(), 2u);
}

TEST_F(DispatchTest, AGangWhoseStartFailsIsTakenBackWhole) {
  JobSpec spec = spec_of(2);
  spec.options.parallel = true;
  submit("gang", spec);
  add_worker("w1", 2);
  ledger_.fail_writes(absl::ResourceExhaustedError("disk full"));
  EXPECT_FALSE(round());
  EXPECT_EQ(host_.failures, (std::vector<std::string>{"starting a gang"}));
  EXPECT_FALSE(dispatcher_.gangs().launched("gang")) << "the next round tries again";
}

}  // namespace
}  // namespace pesc
