// The coordinator's wiring on the in-memory ledger, with outboxes standing
// in for worker streams: no daemons, no SQLite. What it checks is the
// durability rule: a worker hears of nothing the ledger has not committed.

#include "coordinator/farm_state.h"

#include <chrono>
#include <future>
#include <memory>
#include <numeric>
#include <optional>
#include <vector>

#include "common/files.h"
#include "gtest/gtest.h"
#include "job_store_examples.h"
#include "ledger/memory_job_store.h"

namespace pesc {
namespace {

class FarmStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ledger = std::make_unique<MemoryJobStore>();
    ledger_ = ledger.get();
    CoordinatorOptions options;
    options.state_dir = dir_->path();
    options.prefetch_per_slot = 0;
    auto state = FarmState::open(options, std::move(ledger));
    ASSERT_TRUE(state.ok()) << state.status();
    state_ = *std::move(state);
  }
  // Joins a worker of `slots` slots; returns its stream's outbox.
  std::shared_ptr<Outbox> join(const std::string& worker_id, int slots, const std::vector<int64_t>& in_hand = {}) {
    const WorkerRegistration registration{
        .worker_id = worker_id, .host = worker_id + ".lab", .slots = slots, .attempts_in_hand = in_hand};
    auto outbox = std::make_shared<Outbox>();
    EXPECT_TRUE(state_->connect_worker(registration, "127.0.0.1", "token", outbox).ok());
    EXPECT_TRUE(outbox->pop()->has_registered());
    return outbox;
  }
  std::string submit(int repetitions) {
    JobSpec spec = spec_of(repetitions);
    spec.process.sha256 = *state_->blobs().put_bytes("#!/bin/sh\n");
    auto job_id = state_->submit(spec);
    EXPECT_TRUE(job_id.ok()) << job_id.status();
    return *job_id;
  }
  static std::vector<v1::CoordinatorMessage> messages(Outbox& outbox) {
    std::vector<v1::CoordinatorMessage> all;
    while (auto message = outbox.pop()) all.push_back(*std::move(message));
    return all;
  }
  static std::vector<v1::Assignment> assignments(Outbox& outbox) {
    std::vector<v1::Assignment> all;
    while (auto message = outbox.pop()) {
      if (message->has_assign_batch()) {
        all.insert(all.end(), message->assign_batch().assignments().begin(),
                   message->assign_batch().assignments().end());
      }
    }
    return all;
  }
  // What a worker's stream told it of jobs and ranks, acknowledgements aside.
  struct Told {
    std::vector<std::string> described;  // job ids, in the order told
    std::vector<v1::Assignment> assigned;
    std::vector<std::string> forgotten;
  };
  static Told told(Outbox& outbox) {
    Told told;
    while (auto message = outbox.pop()) {
      if (message->has_assign_batch()) {
        for (const v1::JobDescription& job : message->assign_batch().jobs()) told.described.push_back(job.job_id());
        for (const v1::Assignment& assignment : message->assign_batch().assignments()) {
          told.assigned.push_back(assignment);
        }
      }
      if (message->has_forget_jobs()) {
        told.forgotten.insert(told.forgotten.end(), message->forget_jobs().job_ids().begin(),
                              message->forget_jobs().job_ids().end());
      }
    }
    return told;
  }
  static std::vector<int64_t> acks(Outbox& outbox) {
    std::vector<int64_t> all;
    while (auto message = outbox.pop()) {
      if (message->has_ack())
        all.insert(all.end(), message->ack().attempt_ids().begin(), message->ack().attempt_ids().end());
    }
    return all;
  }
  static std::vector<AttemptEnded> finished(int64_t attempt_id) {
    return {AttemptEnded{.attempt_id = attempt_id, .result = exited(0)}};
  }

  absl::StatusOr<TempDirectory> dir_ = TempDirectory::create("pesc-farm-state-test-");
  MemoryJobStore* ledger_ = nullptr;
  std::unique_ptr<FarmState> state_;
};

TEST_F(FarmStateTest, ASubmittedJobsRanksReachAJoinedWorker) {
  auto outbox = join("w1", 2);
  const std::string job_id = submit(2);
  const std::vector<v1::Assignment> sent = assignments(*outbox);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].job_id(), job_id);
  EXPECT_EQ(ledger_->job(job_id)->progress.running, 2);
  EXPECT_EQ(state_->workers()->at(0).running, 2);
}

TEST_F(FarmStateTest, AResultIsAcknowledgedOnlyOnceTheLedgerCommittedIt) {
  auto outbox = join("w1", 1);
  const std::string job_id = submit(1);
  const std::vector<v1::Assignment> sent = assignments(*outbox);
  ASSERT_EQ(sent.size(), 1u);
  const int64_t attempt = sent[0].attempt_id();

  ledger_->fail_writes(absl::ResourceExhaustedError("disk full"));
  state_->worker_finished("w1", finished(attempt));
  EXPECT_TRUE(acks(*outbox).empty()) << "not stored, not acknowledged: the worker sends it again";
  EXPECT_EQ(ledger_->job(job_id)->progress.succeeded, 0);

  ledger_->fail_writes(absl::OkStatus());
  state_->worker_finished("w1", finished(attempt));
  EXPECT_EQ(acks(*outbox), (std::vector<int64_t>{attempt}));
  EXPECT_EQ(ledger_->job(job_id)->state, JobState::kFinished);
  EXPECT_EQ(state_->results_after(job_id, 0)->size(), 1u);
}

TEST_F(FarmStateTest, WhileTheLedgerFailsNoWorkerIsToldOfWhatItWouldHaveStarted) {
  auto outbox = join("w1", 1);
  submit(2);
  const std::vector<v1::Assignment> first = assignments(*outbox);
  ASSERT_EQ(first.size(), 1u) << "one slot, no prefetch";

  ledger_->fail_writes(absl::ResourceExhaustedError("disk full"));
  state_->worker_finished("w1", finished(first[0].attempt_id()));
  absl::SleepFor(absl::Milliseconds(600));  // the reaper retries meanwhile, and fails
  std::vector<v1::CoordinatorMessage> none = messages(*outbox);
  EXPECT_TRUE(none.empty()) << none.front().DebugString();

  ledger_->fail_writes(absl::OkStatus());
  state_->worker_finished("w1", finished(first[0].attempt_id()));  // sent again, as workers do
  bool acknowledged = false;
  int assigned = 0;
  for (const v1::CoordinatorMessage& message : messages(*outbox)) {
    if (message.has_ack()) acknowledged = message.ack().attempt_ids(0) == first[0].attempt_id();
    if (message.has_assign_batch()) assigned += message.assign_batch().assignments_size();
  }
  EXPECT_TRUE(acknowledged);
  EXPECT_EQ(assigned, 1) << "rank 1 takes the freed slot";
}

TEST_F(FarmStateTest, ARetriedJobsRanksGoToAWorkerAgainOnceTheLedgerTookTheRetry) {
  auto outbox = join("w1", 2);
  const std::string job_id = submit(2);
  const std::vector<v1::Assignment> sent = assignments(*outbox);
  ASSERT_EQ(sent.size(), 2u);
  std::vector<AttemptEnded> batch = finished(sent[0].attempt_id());
  batch.push_back({.attempt_id = sent[1].attempt_id(), .result = exited(1)});
  state_->worker_finished("w1", batch);
  ASSERT_EQ(ledger_->job(job_id)->state, JobState::kFinished);
  (void)messages(*outbox);

  ledger_->fail_writes(absl::ResourceExhaustedError("disk full"));
  EXPECT_FALSE(state_->retry(job_id, {}).ok());
  EXPECT_TRUE(messages(*outbox).empty()) << "nothing is sent for a retry the ledger did not take";
  ledger_->fail_writes(absl::OkStatus());

  auto retried = state_->retry(job_id, {});
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->ranks.size(), 1u);
  EXPECT_EQ(retried->job.state, JobState::kRunning);
  const std::vector<v1::Assignment> again = assignments(*outbox);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].rank(), sent[1].rank());
  state_->worker_finished("w1", finished(again[0].attempt_id()));
  EXPECT_EQ(ledger_->job(job_id)->state, JobState::kFinished);
  EXPECT_EQ(ledger_->job(job_id)->progress.succeeded, 2);
}

TEST_F(FarmStateTest, ARunningRanksOutputIsAskedOfItsWorkerAndAnEndedOnesIsItsResult) {
  auto outbox = join("w1", 1);
  const std::string job_id = submit(1);
  const std::vector<v1::Assignment> sent = assignments(*outbox);
  ASSERT_EQ(sent.size(), 1u);
  auto reading = std::async(std::launch::async, [&] { return state_->read_output(job_id, 0, 3); });
  std::optional<v1::CoordinatorMessage> asked;
  for (int tries = 0; tries < 500 && !(asked = outbox->pop()); ++tries) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(asked.has_value()) << "the worker is asked";
  ASSERT_TRUE(asked->has_read_output()) << asked->DebugString();
  EXPECT_EQ(asked->read_output().attempt_id(), sent[0].attempt_id());
  EXPECT_EQ(asked->read_output().offset(), 3);
  const OutputAnswer answer{.request_id = asked->read_output().request_id(), .data = "lo, world\n"};
  state_->worker_output_read("w2", answer);  // not the worker asked: ignored
  EXPECT_EQ(reading.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  state_->worker_output_read("w1", answer);
  auto output = reading.get();
  ASSERT_TRUE(output.ok()) << output.status();
  EXPECT_EQ(output->state, RankStatus::kRunning);
  EXPECT_EQ(output->attempt_id, sent[0].attempt_id());
  EXPECT_EQ(output->data, "lo, world\n");
  EXPECT_FALSE(output->result.has_value());

  state_->worker_finished("w1", finished(sent[0].attempt_id()));
  auto ended = state_->read_output(job_id, 0, 0);
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->state, RankStatus::kSucceeded);
  ASSERT_TRUE(ended->result.has_value());
  EXPECT_EQ(ended->result->output.inline_bytes, "out 0");
  EXPECT_TRUE(ended->data.empty());
  EXPECT_EQ(state_->read_output(job_id, 1, 0).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(FarmStateTest, AJobIsDescribedToAWorkerOncePerStream) {
  constexpr int kRanks = 200;
  auto outbox = join("w1", 1);
  const std::string job_id = submit(kRanks);
  std::vector<std::string> described;
  std::vector<int> ranks_run;
  auto next = [&]() -> int64_t {
    Told now = told(*outbox);
    described.insert(described.end(), now.described.begin(), now.described.end());
    EXPECT_EQ(now.assigned.size(), 1u) << "one slot, no prefetch";
    if (now.assigned.empty()) return 0;
    ranks_run.push_back(now.assigned[0].rank());
    return now.assigned[0].attempt_id();
  };
  int64_t attempt = next();
  for (int rank = 0; rank < kRanks; ++rank) {
    if (rank == kRanks / 2) {
      EXPECT_EQ(described, std::vector<std::string>{job_id}) << "once for 100 ranks";
      // The stream breaks with this rank in hand; the worker comes back
      // holding it, on a stream that has described nothing.
      state_->disconnect_worker("w1", outbox.get());
      outbox = join("w1", 1, {attempt});
    }
    state_->worker_finished("w1", finished(attempt));
    if (rank + 1 < kRanks) attempt = next();
  }
  EXPECT_EQ(described, (std::vector<std::string>{job_id, job_id})) << "once per stream";
  std::vector<int> every_rank(kRanks);
  std::iota(every_rank.begin(), every_rank.end(), 0);
  EXPECT_EQ(ranks_run, every_rank) << "each rank once, in order";
  EXPECT_EQ(ledger_->job(job_id)->state, JobState::kFinished);
  EXPECT_EQ(ledger_->job(job_id)->progress.succeeded, kRanks);
  EXPECT_EQ(told(*outbox).forgotten, std::vector<std::string>{job_id}) << "the job ended: the worker drops it";
}

TEST_F(FarmStateTest, ACancelledJobIsForgottenByTheWorkersThatHadIt) {
  auto outbox = join("w1", 1);
  const std::string job_id = submit(3);
  ASSERT_EQ(told(*outbox).described, std::vector<std::string>{job_id});
  ASSERT_TRUE(state_->cancel(job_id).ok());
  EXPECT_EQ(told(*outbox).forgotten, std::vector<std::string>{job_id});
}

AttemptOrder assignment_of(const std::string& job_id) { return AttemptOrder{.job_id = job_id}; }

std::shared_ptr<const v1::JobDescription> description_of(const std::string& job_id) {
  auto job = std::make_shared<v1::JobDescription>();
  job->set_job_id(job_id);
  return job;
}

TEST(OutboxTest, DescribesEachJobOnceUntilToldToForgetIt) {
  Outbox outbox;
  outbox.assign(assignment_of("j1"), description_of("j1"));
  outbox.assign(assignment_of("j1"), description_of("j1"));
  outbox.forget("j2");  // never described: nothing to say
  outbox.forget("j1");
  outbox.assign(assignment_of("j1"), description_of("j1"));
  std::vector<v1::CoordinatorMessage> sent;
  while (auto message = outbox.pop()) sent.push_back(*std::move(message));
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].assign_batch().assignments_size(), 2);
  EXPECT_EQ(sent[0].assign_batch().jobs_size(), 1);
  ASSERT_EQ(sent[1].forget_jobs().job_ids_size(), 1);
  EXPECT_EQ(sent[1].forget_jobs().job_ids(0), "j1");
  EXPECT_EQ(sent[2].assign_batch().jobs_size(), 1) << "described again after forgetting";
}

TEST(OutboxTest, AWorkerHoldsABoundedNumberOfDescriptionsForgettingTheLeastRecentlyAssigned) {
  Outbox outbox;
  for (size_t job = 0; job < Outbox::kDescribedJobs; ++job) {
    const std::string job_id = "j" + std::to_string(job);
    outbox.assign(assignment_of(job_id), description_of(job_id));
  }
  outbox.assign(assignment_of("j0"), description_of("j0"));  // j1 is now the least recent
  outbox.assign(assignment_of("new"), description_of("new"));
  outbox.assign(assignment_of("j0"), description_of("j0"));
  outbox.assign(assignment_of("j1"), description_of("j1"));
  std::vector<std::string> forgotten;
  std::vector<std::string> described;
  while (auto message = outbox.pop()) {
    for (const std::string& job_id : message->forget_jobs().job_ids()) forgotten.push_back(job_id);
    for (const v1::JobDescription& job : message->assign_batch().jobs()) described.push_back(job.job_id());
  }
  EXPECT_EQ(described.size(), Outbox::kDescribedJobs + 2) << "every job once, then new, then j1 again";
  EXPECT_EQ(described.back(), "j1");
  EXPECT_EQ(forgotten, (std::vector<std::string>{"j1", "j2"})) << "at most kDescribedJobs at once";
}

}  // namespace
}  // namespace pesc
