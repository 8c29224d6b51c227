// The job ledger's contract, run against both backends: every test here
// passes on SQLite and in memory alike.

#include <filesystem>
#include <memory>
#include <set>

#include "common/clock.h"
#include "common/files.h"
#include "gtest/gtest.h"
#include "job_store_examples.h"
#include "ledger/memory_job_store.h"
#include "ledger/sqlite_job_store.h"

namespace pesc {
namespace {

struct SqliteBackend {
  absl::StatusOr<TempDirectory> dir = TempDirectory::create("pesc-ledger-test-");
  std::unique_ptr<JobStore> open() {
    auto store = SqliteJobStore::open(dir->path() / "pesc.sqlite");
    EXPECT_TRUE(store.ok()) << store.status();
    return *std::move(store);
  }
  // Closed and opened again: what was committed is there.
  std::unique_ptr<JobStore> reopen(std::unique_ptr<JobStore> store) {
    store.reset();
    return open();
  }
};

struct MemoryBackend {
  std::unique_ptr<JobStore> open() { return std::make_unique<MemoryJobStore>(); }
  std::unique_ptr<JobStore> reopen(std::unique_ptr<JobStore> store) { return store; }
};

template <typename Backend>
class JobStoreConformance : public ::testing::Test {
 protected:
  void reopen() { store_ = backend_.reopen(std::move(store_)); }
  Backend backend_;
  std::unique_ptr<JobStore> store_ = backend_.open();
};

using Backends = ::testing::Types<SqliteBackend, MemoryBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, SqliteBackend> ? "Sqlite" : "Memory";
  }
};
TYPED_TEST_SUITE(JobStoreConformance, Backends, BackendNames);

TYPED_TEST(JobStoreConformance, NewJobHasEveryRankPending) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(5), 42).ok());
  auto job = this->store_->job("j1");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->spec.parameters, std::vector<std::string>{"x y"});
  EXPECT_EQ(job->state, JobState::kRunning);
  EXPECT_EQ(job->progress.total, 5);
  EXPECT_EQ(job->progress.pending, 5);
  EXPECT_EQ(*this->store_->pending_ranks("j1", 3), (std::vector<int>{0, 1, 2}));
}

TYPED_TEST(JobStoreConformance, AChunksResultsAreTakenPerRankFailuresAndUnreportedRanksQueueAgain) {
  JobSpec spec = spec_of(6);
  spec.options.max_attempts = 2;
  ASSERT_TRUE(this->store_->create_job("j1", spec, 1).ok());
  auto chunk = this->store_->start_chunk("j1", 0, 4, "w1", 2);
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_EQ(chunk->rank_count, 4);
  EXPECT_EQ(this->store_->job("j1")->progress.running, 4);
  EXPECT_FALSE(this->store_->start_chunk("j1", 3, 2, "w2", 3).ok()) << "rank 3 runs in the first chunk";

  // Rank 2 fails with an attempt left; the worker stopped before rank 3.
  auto accepted = this->store_->finish_chunk(chunk->id, {of_rank(0, 0), of_rank(1, 0), of_rank(2, 3)}, 4);
  ASSERT_TRUE(accepted.ok() && accepted->has_value()) << accepted.status();
  EXPECT_EQ((*accepted)->results.size(), 2u);
  EXPECT_EQ((*accepted)->requeued, 2);
  EXPECT_FALSE((*accepted)->job_finished);
  auto job = this->store_->job("j1");
  EXPECT_EQ(job->progress.succeeded, 2);
  EXPECT_EQ(job->progress.running, 0);
  EXPECT_EQ(job->progress.pending, 4);
  EXPECT_EQ(*this->store_->pending_ranks("j1", 10), (std::vector<int>{2, 3, 4, 5}));
  auto results = this->store_->results_after("j1", 0, 10);
  ASSERT_EQ(results->size(), 2u);
  EXPECT_EQ((*results)[0].result.rank, 0);
  EXPECT_EQ((*results)[1].result.rank, 1);
  EXPECT_EQ((*results)[1].finish_seq, 2);
  EXPECT_EQ((*results)[1].files.inline_bytes, "tar of rank 1");
  EXPECT_EQ((*results)[1].result.worker, "w1");
  EXPECT_FALSE(this->store_->finish_chunk(chunk->id, {of_rank(3, 0)}, 5)->has_value()) << "a finished chunk is stale";

  auto rest = this->store_->start_chunk("j1", 2, 4, "w2", 6);
  ASSERT_TRUE(rest.ok()) << rest.status();
  auto last = this->store_->finish_chunk(rest->id, {of_rank(2, 3), of_rank(3, 0), of_rank(4, 0), of_rank(5, 0)}, 7);
  ASSERT_TRUE(last.ok() && last->has_value());
  EXPECT_TRUE((*last)->job_finished) << "rank 2 failed for good: the job is done";
  job = this->store_->job("j1");
  EXPECT_EQ(job->state, JobState::kFinished);
  EXPECT_EQ(job->progress.succeeded, 5);
  EXPECT_EQ(job->progress.failed, 1);
  results = this->store_->results_after("j1", 0, 10);
  std::set<int> ranks;
  for (const RankRecord& result : *results) ranks.insert(result.result.rank);
  EXPECT_EQ(ranks, (std::set<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(results->back().finish_seq, 6);
}

// A rank's earlier attempts are found however wide the chunk that held it,
// also one wider than any the job had when its results were last read.
TYPED_TEST(JobStoreConformance, ARanksOtherAttemptsAreFoundInChunksOfAnyWidth) {
  JobSpec spec = spec_of(8);
  spec.options.max_attempts = 3;
  ASSERT_TRUE(this->store_->create_job("j1", spec, 1).ok());
  auto first = this->store_->start_chunk("j1", 0, 2, "w1", 2);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(this->store_->finish_chunk(first->id, {of_rank(0, 0)}, 3)->has_value());  // rank 1 goes again
  const int64_t alone = this->store_->start_attempt("j1", 1, "w2", 4)->id;
  ASSERT_TRUE(this->store_->finish_attempt(alone, exited(0), 5)->has_value());
  auto results = this->store_->results_after("j1", 0, 10);
  ASSERT_EQ(results->size(), 2u);
  EXPECT_EQ(results->back().result.other_attempt_workers, std::vector<std::string>{"w1"});

  auto wide = this->store_->start_chunk("j1", 2, 6, "w3", 6);
  ASSERT_TRUE(wide.ok()) << wide.status();
  ASSERT_TRUE(
      this->store_->finish_chunk(wide->id, {of_rank(2, 0), of_rank(3, 0), of_rank(4, 0), of_rank(5, 0)}, 7)->has_value());
  auto last = this->store_->start_chunk("j1", 6, 2, "w4", 8);
  ASSERT_TRUE(last.ok()) << last.status();
  ASSERT_TRUE(this->store_->finish_chunk(last->id, {of_rank(6, 0), of_rank(7, 0)}, 9)->has_value());
  results = this->store_->results_after("j1", results->back().finish_seq, 10);
  ASSERT_EQ(results->size(), 6u);
  for (const RankRecord& result : *results) {
    const bool ran_twice = result.result.rank >= 6;
    EXPECT_EQ(result.result.other_attempt_workers,
              ran_twice ? std::vector<std::string>{"w3"} : std::vector<std::string>{})
        << "rank " << result.result.rank;
  }
}

TYPED_TEST(JobStoreConformance, ALostChunkQueuesItsRanksAgainAndItsLateResultsAreRefused) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(3), 1).ok());
  auto chunk = this->store_->start_chunk("j1", 0, 3, "w1", 2);
  ASSERT_TRUE(chunk.ok());
  auto running = this->store_->running_attempts("j1");
  ASSERT_EQ(running->size(), 1u);
  EXPECT_EQ(running->front().rank_count, 3);
  ASSERT_TRUE(this->store_->requeue_attempts({chunk->id}).ok());
  EXPECT_EQ(this->store_->job("j1")->progress.pending, 3);
  EXPECT_EQ(this->store_->job("j1")->progress.running, 0);
  EXPECT_FALSE(this->store_->finish_chunk(chunk->id, {of_rank(0, 0)}, 3)->has_value());
  EXPECT_TRUE(this->store_->results_after("j1", 0, 10)->empty());
}

TYPED_TEST(JobStoreConformance, CancellingStopsARunningChunkOnce) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(4), 1).ok());
  auto chunk = this->store_->start_chunk("j1", 1, 3, "w1", 2);
  ASSERT_TRUE(chunk.ok());
  auto to_stop = this->store_->cancel_job("j1", 3);
  ASSERT_TRUE(to_stop.ok());
  ASSERT_EQ(to_stop->size(), 1u);
  EXPECT_EQ(to_stop->front().id, chunk->id);
  EXPECT_EQ(this->store_->job("j1")->progress.cancelled, 4);
}

TYPED_TEST(JobStoreConformance, UnknownJobIsNotFound) {
  EXPECT_EQ(this->store_->job("nope").status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST(JobStoreConformance, AcceptsOneResultPerRankAndFinishesTheJob) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(2), 42).ok());
  int64_t a0 = this->store_->start_attempt("j1", 0, "w1", 50)->id;
  int64_t a1 = this->store_->start_attempt("j1", 1, "w2", 50)->id;
  EXPECT_EQ(this->store_->job("j1")->progress.running, 2);
  EXPECT_FALSE(this->store_->start_attempt("j1", 0, "w2", 51).ok()) << "a running rank cannot start twice";

  auto first = this->store_->finish_attempt(a1, exited(3), 60);
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->result.result.rank, 1);
  EXPECT_EQ((*first)->result.result.worker, "w2");
  EXPECT_EQ((*first)->result.finish_seq, 1);
  EXPECT_FALSE((*first)->job_finished);

  auto again = this->store_->finish_attempt(a1, exited(0), 61);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value()) << "a second result for the same attempt is refused";

  auto last = this->store_->finish_attempt(a0, exited(0), 62);
  ASSERT_TRUE(last.ok() && last->has_value());
  EXPECT_TRUE((*last)->job_finished);
  auto job = this->store_->job("j1");
  EXPECT_EQ(job->state, JobState::kFinished);
  EXPECT_EQ(job->progress.succeeded, 1);
  EXPECT_EQ(job->progress.failed, 1);

  auto results = *this->store_->results_after("j1", 0, 10);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].result.rank, 1);
  EXPECT_EQ(results[0].output.inline_bytes, "out 3");
  EXPECT_EQ(results[1].result.rank, 0);
  EXPECT_EQ(this->store_->results_after("j1", 1, 10)->size(), 1u);
}

TYPED_TEST(JobStoreConformance, RequeuedAttemptIsStaleAndTheRankRunsAgain) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(1), 42).ok());
  int64_t lost = this->store_->start_attempt("j1", 0, "w1", 50)->id;
  ASSERT_TRUE(this->store_->requeue_attempts({lost}).ok());
  EXPECT_EQ(this->store_->job("j1")->progress.pending, 1);
  int64_t retry = this->store_->start_attempt("j1", 0, "w2", 51)->id;
  EXPECT_FALSE(this->store_->finish_attempt(lost, exited(0), 52)->has_value())
      << "the lost attempt's result is refused";
  auto accepted = this->store_->finish_attempt(retry, exited(0), 53);
  ASSERT_TRUE(accepted->has_value());
  EXPECT_EQ((*accepted)->result.result.worker, "w2");
}

TYPED_TEST(JobStoreConformance, CancelStopsRunningAndPendingRanks) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(4), 42).ok());
  int64_t done = this->store_->start_attempt("j1", 0, "w1", 50)->id;
  ASSERT_TRUE(this->store_->finish_attempt(done, exited(0), 51)->has_value());
  int64_t running = this->store_->start_attempt("j1", 1, "w1", 52)->id;
  auto to_stop = this->store_->cancel_job("j1", 60);
  ASSERT_TRUE(to_stop.ok());
  ASSERT_EQ(to_stop->size(), 1u);
  EXPECT_EQ((*to_stop)[0].id, running);
  auto job = this->store_->job("j1");
  EXPECT_EQ(job->state, JobState::kCancelled);
  EXPECT_EQ(job->progress.cancelled, 3);
  EXPECT_EQ(job->progress.succeeded, 1);
  EXPECT_FALSE(this->store_->finish_attempt(running, exited(0), 61)->has_value());
  auto results = *this->store_->results_after("j1", 0, 10);
  ASSERT_EQ(results.size(), 4u) << "cancelled ranks are reported too";
  std::set<int> ranks;
  for (const auto& result : results) ranks.insert(result.result.rank);
  EXPECT_EQ(ranks.size(), 4u);
  EXPECT_TRUE(this->store_->cancel_job("j1", 62)->empty()) << "cancelling twice is harmless";
}

TYPED_TEST(JobStoreConformance, StateSurvivesReopening) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(3, "bob"), 42).ok());
  int64_t attempt = this->store_->start_attempt("j1", 2, "w1", 50)->id;
  ASSERT_TRUE(this->store_->finish_attempt(attempt, exited(0, 1000, 1700), 51)->has_value());
  int64_t running = this->store_->start_attempt("j1", 0, "w1", 52)->id;
  this->reopen();
  EXPECT_EQ(this->store_->job("j1")->progress.succeeded, 1);
  EXPECT_EQ(this->store_->results_after("j1", 0, 10)->at(0).result.rank, 2);
  ASSERT_EQ(this->store_->running_attempts()->size(), 1u);
  EXPECT_EQ(this->store_->running_attempts()->at(0).id, running);
  EXPECT_EQ(this->store_->usage_by_user()->at("bob"), 700);
  EXPECT_EQ(this->store_->running_jobs()->size(), 1u);
}

TYPED_TEST(JobStoreConformance, FailedRankIsRetriedUpToMaxAttempts) {
  JobSpec spec = spec_of(1);
  spec.options.max_attempts = 3;
  ASSERT_TRUE(this->store_->create_job("j1", spec, 42).ok());
  for (int attempt = 1; attempt <= 2; ++attempt) {
    int64_t id = this->store_->start_attempt("j1", 0, "w1", 50)->id;
    auto retried = this->store_->finish_attempt(id, exited(1), 51);
    ASSERT_TRUE(retried->has_value());
    EXPECT_TRUE((*retried)->requeued) << "attempt " << attempt;
    EXPECT_EQ(this->store_->job("j1")->progress.pending, 1);
  }
  int64_t last = this->store_->start_attempt("j1", 0, "w1", 52)->id;
  auto final_result = this->store_->finish_attempt(last, exited(1), 53);
  ASSERT_TRUE(final_result->has_value());
  EXPECT_FALSE((*final_result)->requeued);
  EXPECT_TRUE((*final_result)->job_finished);
  EXPECT_EQ((*final_result)->result.result.attempts, 3);
  EXPECT_EQ(this->store_->job("j1")->progress.failed, 1);
}

TYPED_TEST(JobStoreConformance, RankThatNeverRanIsRetriedAFewTimesWhateverMaxAttempts) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(1), 42).ok());
  RankRecord never_ran = exited(127);
  never_ran.result.error = "python3 is not installed";
  int requeued = 0;
  while (true) {
    int64_t id = this->store_->start_attempt("j1", 0, "w1", 50)->id;
    auto taken = this->store_->finish_attempt(id, never_ran, 51);
    ASSERT_TRUE(taken->has_value());
    if (!(*taken)->requeued) break;
    ++requeued;
  }
  EXPECT_EQ(requeued, 2);
  EXPECT_EQ(this->store_->job("j1")->state, JobState::kFinished);
}

TYPED_TEST(JobStoreConformance, RankFailedByItsWorkersDiskIsPlacedAgainOutsideMaxAttempts) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(1), 42).ok());  // max_attempts 1
  for (int fault = 1; fault <= 4; ++fault) {
    int64_t id = this->store_->start_attempt("j1", 0, "w1", 50)->id;
    auto taken = this->store_->finish_attempt(id, spoilt_by_a_full_disk(), 51);
    ASSERT_TRUE(taken->has_value());
    EXPECT_TRUE((*taken)->requeued) << "fault " << fault;
  }
  int64_t id = this->store_->start_attempt("j1", 0, "w2", 52)->id;
  auto taken = this->store_->finish_attempt(id, exited(0), 53);
  ASSERT_TRUE(taken->has_value());
  EXPECT_EQ((*taken)->result.result.status, RankStatus::kSucceeded);
  EXPECT_EQ((*taken)->result.result.worker, "w2");
  EXPECT_EQ(this->store_->job("j1")->progress.succeeded, 1);
}

TYPED_TEST(JobStoreConformance, WorkersFaultsInAChunkQueueTheirRanksAgainAndStillEnd) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(2), 42).ok());
  int placed = 0;
  while (this->store_->job("j1")->progress.pending > 0) {
    auto chunk = this->store_->start_chunk("j1", 0, 2, "w1", 50);
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    RankRecord first = spoilt_by_a_full_disk();
    first.result.rank = 0;
    RankRecord second = spoilt_by_a_full_disk();
    second.result.rank = 1;
    ASSERT_TRUE(this->store_->finish_chunk(chunk->id, {first, second}, 51)->has_value());
    ++placed;
    ASSERT_LT(placed, 100) << "a rank failing on every disk must end";
  }
  EXPECT_EQ(placed, 10) << "placed again outside max_attempts (1), up to the workers' budget";
  EXPECT_EQ(this->store_->job("j1")->state, JobState::kFinished);
  EXPECT_EQ(this->store_->job("j1")->progress.failed, 2);
}

TYPED_TEST(JobStoreConformance, ARankFailedForTheJobsOwnFaultIsNotRetried) {
  JobSpec spec = spec_of(2);
  spec.options.max_attempts = 3;
  ASSERT_TRUE(this->store_->create_job("j1", spec, 42).ok());
  RankRecord cannot_execute = exited(127);
  cannot_execute.result.error = "cannot start prog: it has no #! line";
  cannot_execute.result.failure_class = FailureClass::kJob;
  int64_t id = this->store_->start_attempt("j1", 0, "w1", 50)->id;
  auto taken = this->store_->finish_attempt(id, cannot_execute, 51);
  ASSERT_TRUE(taken->has_value());
  EXPECT_FALSE((*taken)->requeued) << "it would fail the same way on any worker";
  EXPECT_EQ((*taken)->result.result.failure_class, FailureClass::kJob);
}

TYPED_TEST(JobStoreConformance, FailingAJobEndsItsOtherRanksAndKeepsWhy) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(4), 42).ok());
  int64_t failed = this->store_->start_attempt("j1", 0, "w1", 50)->id;
  ASSERT_TRUE(this->store_->finish_attempt(failed, exited(127), 51)->has_value());
  int64_t running = this->store_->start_attempt("j1", 1, "w1", 52)->id;
  auto to_stop = this->store_->fail_job("j1", "cannot start prog: it has no #! line", 60);
  ASSERT_TRUE(to_stop.ok()) << to_stop.status();
  ASSERT_EQ(to_stop->size(), 1u);
  EXPECT_EQ((*to_stop)[0].id, running);
  this->reopen();
  auto job = this->store_->job("j1");
  EXPECT_EQ(job->state, JobState::kFailed);
  EXPECT_EQ(job->failure, "cannot start prog: it has no #! line");
  EXPECT_EQ(job->progress.failed, 1);
  EXPECT_EQ(job->progress.cancelled, 3);
  EXPECT_TRUE(this->store_->running_jobs()->empty());
  EXPECT_EQ(this->store_->results_after("j1", 0, 10)->size(), 4u) << "every rank has an end to report";

  ASSERT_TRUE(this->store_->create_job("j2", spec_of(1), 70).ok());
  int64_t last = this->store_->start_attempt("j2", 0, "w1", 71)->id;
  ASSERT_TRUE((*this->store_->finish_attempt(last, exited(127), 72))->job_finished);
  ASSERT_TRUE(this->store_->fail_job("j2", "no #! line", 73).ok());
  EXPECT_EQ(this->store_->job("j2")->state, JobState::kFailed) << "a job whose only rank failed so fails too";
}

TYPED_TEST(JobStoreConformance, CheckpointGoesToTheNextAttempt) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(1), 42).ok());
  auto first = *this->store_->start_attempt("j1", 0, "w1", 50);
  EXPECT_FALSE(first.checkpoint);
  const BlobId checkpoint{.sha256 = std::string(64, 'c'), .size = 10};
  ASSERT_TRUE(this->store_->save_checkpoint(first.id, checkpoint).ok());
  ASSERT_TRUE(this->store_->requeue_attempts({first.id}).ok());
  auto second = *this->store_->start_attempt("j1", 0, "w2", 51);
  EXPECT_EQ(second.checkpoint, checkpoint);
  const BlobId stale{.sha256 = std::string(64, 'd')};
  ASSERT_TRUE(this->store_->save_checkpoint(first.id, stale).ok());
  ASSERT_TRUE(this->store_->requeue_attempts({second.id}).ok());
  EXPECT_EQ(this->store_->start_attempt("j1", 0, "w3", 52)->checkpoint, checkpoint)
      << "a stale attempt's checkpoint is ignored";
}

TYPED_TEST(JobStoreConformance, FirstSuccessOfAStragglerAndItsDuplicateWinsAndStopsTheOther) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(1), 0).ok());
  int64_t straggler = this->store_->start_attempt("j1", 0, "slow", 10)->id;
  int64_t duplicate = this->store_->start_duplicate("j1", 0, "fast", 20)->id;
  EXPECT_EQ(this->store_->running_attempts("j1")->size(), 2u);

  auto won = this->store_->finish_attempt(duplicate, exited(0), 30);
  ASSERT_TRUE(won.ok() && won->has_value());
  EXPECT_EQ((*won)->result.result.attempt, duplicate);
  EXPECT_EQ((*won)->result.result.attempts, 2);
  ASSERT_EQ((*won)->superseded.size(), 1u);
  EXPECT_EQ((*won)->superseded[0].id, straggler);
  EXPECT_EQ((*won)->superseded[0].worker_id, "slow");
  EXPECT_TRUE((*won)->job_finished);
  EXPECT_FALSE(this->store_->finish_attempt(straggler, exited(0), 40)->has_value()) << "one result per rank";
}

TYPED_TEST(JobStoreConformance, FailedDuplicateIsSetAsideWhileTheStragglerRuns) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(1), 0).ok());
  int64_t straggler = this->store_->start_attempt("j1", 0, "slow", 10)->id;
  int64_t duplicate = this->store_->start_duplicate("j1", 0, "fast", 20)->id;
  EXPECT_FALSE(this->store_->finish_attempt(duplicate, exited(1), 30)->has_value());
  EXPECT_EQ(this->store_->job("j1")->progress.running, 1);
  auto finished = this->store_->finish_attempt(straggler, exited(0), 40);
  ASSERT_TRUE(finished.ok() && finished->has_value());
  EXPECT_TRUE((*finished)->superseded.empty());
}

TYPED_TEST(JobStoreConformance, LostStragglerLeavesItsRankToTheDuplicate) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(1), 0).ok());
  int64_t straggler = this->store_->start_attempt("j1", 0, "lost", 10)->id;
  int64_t duplicate = this->store_->start_duplicate("j1", 0, "fast", 20)->id;
  ASSERT_TRUE(this->store_->requeue_attempts({straggler}).ok());
  EXPECT_TRUE(this->store_->pending_ranks("j1", 1)->empty()) << "not queued again: its duplicate runs";
  auto cancelled = this->store_->cancel_job("j1", 30);
  ASSERT_TRUE(cancelled.ok());
  ASSERT_EQ(cancelled->size(), 1u);
  EXPECT_EQ(cancelled->at(0).id, duplicate);
}

TYPED_TEST(JobStoreConformance, HundredThousandRanksAreRows) {
  ASSERT_TRUE(this->store_->create_job("big", spec_of(100'000), 42).ok());
  EXPECT_EQ(this->store_->job("big")->progress.pending, 100'000);
  EXPECT_EQ(this->store_->pending_ranks("big", 2)->back(), 1);
}

TYPED_TEST(JobStoreConformance, ARefusedStartLeavesNoAttempt) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(2), 1).ok());
  ASSERT_TRUE(this->store_->start_attempt("j1", 0, "w1", 2).ok());
  EXPECT_FALSE(this->store_->start_attempt("j1", 0, "w2", 3).ok());
  auto started =
      this->store_->start_attempts("j1", {{.rank = 0, .worker_id = "w2"}, {.rank = 1, .worker_id = "w2"}}, 3);
  ASSERT_TRUE(started.ok());
  ASSERT_EQ(started->size(), 1u) << "rank 0 runs already";
  EXPECT_EQ(started->front().rank, 1);
  EXPECT_EQ(this->store_->running_attempts("j1")->size(), 2u);
  EXPECT_EQ(this->store_->latest_worker("j1").value(), "w2");
}

TYPED_TEST(JobStoreConformance, ABatchNotCommittedLeavesNothing) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(2), 1).ok());
  const int64_t attempt = this->store_->start_attempt("j1", 0, "w1", 2)->id;
  {
    JobStore::Batch batch(*this->store_);
    ASSERT_TRUE(this->store_->finish_attempt(attempt, exited(0), 3)->has_value());
    {
      JobStore::Batch inner(*this->store_);
      ASSERT_TRUE(this->store_->start_attempt("j1", 1, "w1", 3).ok());
      ASSERT_TRUE(inner.commit().ok());
    }
    EXPECT_EQ(this->store_->job("j1")->progress.running, 1) << "a batch sees its own calls";
  }
  EXPECT_EQ(this->store_->job("j1")->progress.succeeded, 0);
  EXPECT_EQ(this->store_->job("j1")->progress.running, 1);
  EXPECT_EQ(*this->store_->pending_ranks("j1", 5), (std::vector<int>{1}));
  EXPECT_TRUE(this->store_->results_after("j1", 0, 10)->empty());
  {
    JobStore::Batch batch(*this->store_);
    ASSERT_TRUE(this->store_->finish_attempt(attempt, exited(0), 4)->has_value());
    ASSERT_TRUE(batch.commit().ok());
  }
  this->reopen();
  EXPECT_EQ(this->store_->job("j1")->progress.succeeded, 1);
  EXPECT_EQ(this->store_->results_after("j1", 0, 10)->size(), 1u);
}

TYPED_TEST(JobStoreConformance, AWorkersPausesAreKeptAcrossAReopen) {
  ASSERT_TRUE(this->store_->record_pause("w", "", 50).ok()) << "not paused: nothing to keep";
  ASSERT_TRUE(this->store_->record_pause("w", "CPU busy", 100).ok());
  ASSERT_TRUE(this->store_->record_pause("w", "CPU busy", 150).ok()) << "the same pause";
  ASSERT_TRUE(this->store_->record_pause("w", "disk full", 200).ok());
  ASSERT_TRUE(this->store_->record_pause("w", "", 300).ok());
  ASSERT_TRUE(this->store_->record_pause("v", "CPU busy", 1000).ok());
  this->reopen();
  auto pauses = this->store_->pauses_between(0, 2000);
  ASSERT_TRUE(pauses.ok()) << pauses.status();
  ASSERT_EQ(pauses->size(), 3u);
  EXPECT_EQ((*pauses)[0].worker, "v");
  EXPECT_EQ((*pauses)[0].end, from_unix_ms(0)) << "still paused";
  EXPECT_EQ((*pauses)[1].reason, "CPU busy");
  EXPECT_EQ((*pauses)[1].start, from_unix_ms(100));
  EXPECT_EQ((*pauses)[1].end, from_unix_ms(200));
  EXPECT_EQ((*pauses)[2].reason, "disk full");
  EXPECT_EQ((*pauses)[2].end, from_unix_ms(300));
  EXPECT_EQ(this->store_->pauses_between(300, 1000)->size(), 0u) << "none overlaps";
}

TYPED_TEST(JobStoreConformance, WorkersAreRememberedWithTheirCredentialAndRanksDone) {
  ASSERT_TRUE(this->store_->record_worker("w1", "host-a", 2, "token-1", 10).ok());
  ASSERT_TRUE(this->store_->record_worker("w1", "host-a", 4, "token-1", 11).ok());
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(3), 12).ok());
  const int64_t single = this->store_->start_attempt("j1", 0, "w1", 13)->id;
  ASSERT_TRUE(this->store_->finish_attempt(single, exited(0), 14)->has_value());
  const int64_t chunk = this->store_->start_chunk("j1", 1, 2, "w1", 15)->id;
  ASSERT_TRUE(this->store_->finish_chunk(chunk, {of_rank(1, 0), of_rank(2, 0)}, 16)->has_value());
  this->reopen();
  auto workers = this->store_->workers();
  ASSERT_TRUE(workers.ok());
  ASSERT_EQ(workers->size(), 1u);
  EXPECT_EQ(workers->front().slots, 4);
  EXPECT_EQ(workers->front().last_seen_unix_ms, 11);
  EXPECT_EQ(workers->front().ranks_done, 3);
  EXPECT_EQ(this->store_->worker_credentials()->at("w1"), "token-1");
  EXPECT_EQ(this->store_->usage_by_user()->at("ana"), 3 * 500);
}

TYPED_TEST(JobStoreConformance, DeletingAJobFreesTheBlobsNoOtherJobUses) {
  JobSpec first = spec_of(1);
  first.process.sha256 = std::string(64, 'p');
  JobSpec second = spec_of(1);
  second.process.sha256 = std::string(64, 'p');
  second.shared.push_back({.name = "data.csv", .blob = {.sha256 = std::string(64, 's')}});
  ASSERT_TRUE(this->store_->create_job("j1", first, 1).ok());
  ASSERT_TRUE(this->store_->create_job("j2", second, 2).ok());
  auto freed = this->store_->delete_job("j2");
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(*freed, (std::vector<std::string>{std::string(64, 's')})) << "j1 still uses the process";
  EXPECT_EQ(this->store_->delete_job("j2").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(this->store_->jobs()->size(), 1u);
  EXPECT_EQ(*this->store_->delete_job("j1"), (std::vector<std::string>{std::string(64, 'p')}));
}

TYPED_TEST(JobStoreConformance, ACancelledRanksOutputIsKeptUnderANewFinishSeq) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(2), 1).ok());
  const int64_t attempt = this->store_->start_attempt("j1", 0, "w1", 2)->id;
  ASSERT_EQ(this->store_->cancel_job("j1", 3)->size(), 1u);
  const int64_t last_seq = this->store_->results_after("j1", 0, 10)->back().finish_seq;
  RankRecord stopped = exited(143);
  stopped.output.inline_bytes = "half done";
  ASSERT_TRUE(this->store_->keep_cancelled_output(attempt, stopped).ok());
  auto after = this->store_->results_after("j1", last_seq, 10);
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ(after->front().result.rank, 0);
  EXPECT_EQ(after->front().result.status, RankStatus::kCancelled);
  EXPECT_EQ(after->front().output.inline_bytes, "half done");
  ASSERT_TRUE(this->store_->keep_cancelled_output(attempt, stopped).ok());
  EXPECT_EQ(this->store_->results_after("j1", after->front().finish_seq, 10)->size(), 0u) << "kept once";
}

// `pesc retry`: ranks 2 and 5 of six failed for good; a retry runs only
// them again, the others keep their results, and the job ends again.
TYPED_TEST(JobStoreConformance, ARetryRunsAnEndedJobsFailedRanksAgainAndKeepsTheRest) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(6), 1).ok());
  for (int rank = 0; rank < 6; ++rank) {
    const int64_t attempt = this->store_->start_attempt("j1", rank, "w1", 2)->id;
    if (rank == 3) {
      EXPECT_EQ(this->store_->retry_ranks("j1", {}).status().code(), absl::StatusCode::kFailedPrecondition)
          << "the job still runs";
    }
    ASSERT_TRUE(this->store_->finish_attempt(attempt, exited(rank == 2 || rank == 5 ? 1 : 0), 3)->has_value());
  }
  ASSERT_EQ(this->store_->job("j1")->state, JobState::kFinished);
  const int64_t last_seq = this->store_->results_after("j1", 0, 10)->back().finish_seq;
  EXPECT_EQ(this->store_->retry_ranks("nope", {}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(this->store_->retry_ranks("j1", {1, 6}).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(this->store_->retry_ranks("j1", {-1}).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(this->store_->job("j1")->state, JobState::kFinished) << "a refused retry changes nothing";

  auto retried = this->store_->retry_ranks("j1", {});
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(*retried, (std::vector<int>{2, 5}));
  this->reopen();
  auto job = this->store_->job("j1");
  EXPECT_EQ(job->state, JobState::kRunning);
  EXPECT_EQ(job->finished_unix_ms, 0);
  EXPECT_EQ(job->progress.pending, 2);
  EXPECT_EQ(job->progress.succeeded, 4);
  EXPECT_EQ(job->progress.failed, 0);
  EXPECT_EQ(*this->store_->pending_ranks("j1", 10), (std::vector<int>{2, 5}));
  auto finished = this->store_->results_after("j1", 0, 10);
  ASSERT_TRUE(finished.ok()) << finished.status();
  std::set<int> kept;
  for (const RankRecord& result : *finished) kept.insert(result.result.rank);
  EXPECT_EQ(kept, (std::set<int>{0, 1, 3, 4})) << "the failed results are gone, the others stay";

  for (int rank : {2, 5}) {
    const int64_t attempt = this->store_->start_attempt("j1", rank, "w2", 4)->id;
    auto accepted = this->store_->finish_attempt(attempt, exited(0), 5);
    ASSERT_TRUE(accepted.ok() && accepted->has_value()) << accepted.status();
    EXPECT_FALSE((*accepted)->requeued) << "a fresh attempt budget, not the one spent";
  }
  EXPECT_EQ(this->store_->job("j1")->state, JobState::kFinished);
  auto again = this->store_->results_after("j1", last_seq, 10);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->size(), 2u);
  for (const RankRecord& result : *again) {
    EXPECT_EQ(result.result.status, RankStatus::kSucceeded);
    EXPECT_EQ(result.result.worker, "w2");
    EXPECT_EQ(result.result.attempts, 2);
    EXPECT_EQ(result.result.other_attempt_workers,
              std::vector<std::string>{"w1"});
  }
  EXPECT_EQ(this->store_->results_after("j1", 0, 10)->size(), 6u) << "every rank once";

  EXPECT_EQ(this->store_->retry_ranks("j1", {}).status().code(), absl::StatusCode::kFailedPrecondition)
      << "nothing failed";
  EXPECT_EQ(*this->store_->retry_ranks("j1", {3, 3}), (std::vector<int>{3})) << "a succeeded rank named runs again";
  EXPECT_EQ(this->store_->job("j1")->progress.succeeded, 5);
}

TYPED_TEST(JobStoreConformance, ARetryOfACancelledJobRunsItsCancelledRanks) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(3), 1).ok());
  const int64_t first = this->store_->start_attempt("j1", 0, "w1", 2)->id;
  ASSERT_TRUE(this->store_->finish_attempt(first, exited(0), 3)->has_value());
  ASSERT_TRUE(this->store_->cancel_job("j1", 4).ok());
  EXPECT_EQ(*this->store_->retry_ranks("j1", {}), (std::vector<int>{1, 2}));
  auto job = this->store_->job("j1");
  EXPECT_EQ(job->state, JobState::kRunning);
  EXPECT_EQ(job->progress.cancelled, 0);
  EXPECT_EQ(job->progress.pending, 2);
}

TYPED_TEST(JobStoreConformance, ARankNowIsItsStateItsRunningAttemptOrItsResult) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(3), 1).ok());
  const int64_t attempt = this->store_->start_attempt("j1", 1, "w1", 2)->id;
  const int64_t other = this->store_->start_attempt("j1", 2, "w2", 2)->id;
  ASSERT_TRUE(this->store_->finish_attempt(other, exited(0), 3)->has_value());
  EXPECT_EQ(this->store_->rank_now("j1", 0)->result.status, RankStatus::kPending);
  auto running = this->store_->rank_now("j1", 1);
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->result.status, RankStatus::kRunning);
  EXPECT_EQ(running->result.attempt, attempt);
  EXPECT_EQ(running->result.worker, "w1");
  auto ended = this->store_->rank_now("j1", 2);
  EXPECT_EQ(ended->result.status, RankStatus::kSucceeded);
  EXPECT_EQ(ended->output.inline_bytes, "out 0");
  EXPECT_EQ(this->store_->rank_now("j1", 3).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(this->store_->rank_now("j2", 0).status().code(), absl::StatusCode::kNotFound);
}

// The in-memory ledger stands in for a full disk: writes fail, a batch they
// failed in leaves nothing, and writes work again once space returns.
TEST(MemoryJobStoreTest, FailingWritesRollBackTheWholeBatchAsAFullDiskDoes) {
  MemoryJobStore store;
  ASSERT_TRUE(store.create_job("j1", spec_of(2), 1).ok());
  const int64_t attempt = store.start_attempt("j1", 0, "w1", 2)->id;
  {
    JobStore::Batch batch(store);
    ASSERT_TRUE(store.start_attempt("j1", 1, "w1", 3).ok());
    store.fail_writes(absl::ResourceExhaustedError("disk full"));
    EXPECT_FALSE(store.finish_attempt(attempt, exited(0), 3).ok());
    EXPECT_FALSE(store.job("j1").ok()) << "a failed batch fails every call until it ends";
    EXPECT_EQ(batch.commit().code(), absl::StatusCode::kResourceExhausted);
  }
  EXPECT_EQ(store.job("j1")->progress.running, 1) << "the whole batch is rolled back";
  EXPECT_FALSE(store.start_attempt("j1", 1, "w1", 4).ok());
  store.fail_writes(absl::OkStatus());
  EXPECT_TRUE(store.finish_attempt(attempt, exited(0), 5)->has_value());
}

TYPED_TEST(JobStoreConformance, RanksComeInPagesByRankWithTheirResultsOrTheirRunningAttempt) {
  ASSERT_TRUE(this->store_->create_job("j1", spec_of(7), 1).ok());
  auto chunk = this->store_->start_chunk("j1", 0, 2, "w1", 2);
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  ASSERT_TRUE(this->store_->finish_chunk(chunk->id, {of_rank(0, 0), of_rank(1, 0)}, 3)->has_value());
  auto running = this->store_->start_attempt("j1", 3, "w2", 4);
  ASSERT_TRUE(running.ok()) << running.status();
  auto failed = this->store_->start_attempt("j1", 4, "w1", 5);
  ASSERT_TRUE(this->store_->finish_attempt(failed->id, of_rank(4, 2), 6)->has_value());

  auto page = this->store_->ranks_page("j1", std::nullopt, 1, 3);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 7);
  ASSERT_EQ(page->ranks.size(), 3u);
  EXPECT_EQ(page->ranks[0].result.rank, 1);
  EXPECT_EQ(page->ranks[0].result.status, RankStatus::kSucceeded);
  EXPECT_EQ(page->ranks[0].files.inline_bytes, "tar of rank 1") << "a chunk's rank has its own result";
  EXPECT_EQ(page->ranks[0].result.worker, "w1");
  EXPECT_EQ(page->ranks[1].result.rank, 2);
  EXPECT_EQ(page->ranks[1].result.status, RankStatus::kPending);
  EXPECT_EQ(page->ranks[2].result.rank, 3);
  EXPECT_EQ(page->ranks[2].result.status, RankStatus::kRunning);
  EXPECT_EQ(page->ranks[2].result.worker, "w2") << "a running rank names where it runs";
  EXPECT_EQ(page->ranks[2].result.start, from_unix_ms(4));
  EXPECT_EQ(page->ranks[2].result.attempts, 1);

  auto failures = this->store_->ranks_page("j1", RankStatus::kFailed, 0, 10);
  ASSERT_TRUE(failures.ok());
  EXPECT_EQ(failures->total, 1);
  ASSERT_EQ(failures->ranks.size(), 1u);
  EXPECT_EQ(failures->ranks[0].result.rank, 4);
  EXPECT_EQ(failures->ranks[0].result.exit_code, 2);

  auto pending = this->store_->ranks_page("j1", RankStatus::kPending, 2, 10);
  EXPECT_EQ(pending->total, 3) << "ranks 2, 5 and 6";
  ASSERT_EQ(pending->ranks.size(), 1u);
  EXPECT_EQ(pending->ranks[0].result.rank, 6);
  EXPECT_TRUE(this->store_->ranks_page("j1", std::nullopt, 7, 10)->ranks.empty()) << "past the end";
  EXPECT_EQ(this->store_->ranks_page("nope", std::nullopt, 0, 10)->total, 0);
}

}  // namespace
}  // namespace pesc
