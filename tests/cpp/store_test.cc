#include "store/job_store.h"

#include <filesystem>
#include <fstream>
#include <set>

#include "common/files.h"
#include "farm_harness.h"
#include "gtest/gtest.h"
#include "store/blob_store.h"

namespace pesc {
namespace {

v1::JobSpec spec_of(int repetitions, const std::string& user = "ana") {
  v1::JobSpec spec;
  spec.set_domain("shell");
  spec.set_process_kind(v1::PROCESS_KIND_FILE);
  spec.mutable_process()->set_sha256(std::string(64, 'a'));
  spec.set_entry("run.sh");
  spec.set_repetitions(repetitions);
  spec.add_parameters("x y");
  spec.set_user(user);
  return spec;
}

v1::RankResult exited(int code, int64_t start = 1000, int64_t end = 1500) {
  v1::RankResult result;
  result.set_exit_code(code);
  result.set_state(code == 0 ? v1::RANK_STATE_SUCCEEDED : v1::RANK_STATE_FAILED);
  result.set_start_unix_ms(start);
  result.set_end_unix_ms(end);
  result.mutable_output_txt()->set_inline_data("out " + std::to_string(code));
  return result;
}

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = reopen(); }
  std::unique_ptr<JobStore> reopen() {
    store_.reset();
    auto store = JobStore::open(dir_->path() / "pesc.sqlite");
    EXPECT_TRUE(store.ok()) << store.status();
    return *std::move(store);
  }
  absl::StatusOr<TempDirectory> dir_ = TempDirectory::create("pesc-store-test-");
  std::unique_ptr<JobStore> store_;
};

TEST_F(JobStoreTest, NewJobHasEveryRankPending) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(5), 42).ok());
  auto job = store_->job("j1");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->spec.parameters(0), "x y");
  EXPECT_EQ(job->state, v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job->progress.total(), 5);
  EXPECT_EQ(job->progress.pending(), 5);
  EXPECT_EQ(*store_->pending_ranks("j1", 3), (std::vector<int>{0, 1, 2}));
}

v1::RankResult of_rank(int rank, int code) {
  v1::RankResult result = exited(code);
  result.set_rank(rank);
  result.set_files_inline("tar of rank " + std::to_string(rank));
  return result;
}

TEST_F(JobStoreTest, AChunksResultsAreTakenPerRankFailuresAndUnreportedRanksQueueAgain) {
  v1::JobSpec spec = spec_of(6);
  spec.set_max_attempts(2);
  ASSERT_TRUE(store_->create_job("j1", spec, 1).ok());
  auto chunk = store_->start_chunk("j1", 0, 4, "w1", 2);
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_EQ(chunk->rank_count, 4);
  EXPECT_EQ(store_->job("j1")->progress.running(), 4);
  EXPECT_FALSE(store_->start_chunk("j1", 3, 2, "w2", 3).ok()) << "rank 3 runs in the first chunk";

  // Rank 2 fails with an attempt left; the worker stopped before rank 3.
  auto accepted = store_->finish_chunk(chunk->id, {of_rank(0, 0), of_rank(1, 0), of_rank(2, 3)}, 4);
  ASSERT_TRUE(accepted.ok() && accepted->has_value()) << accepted.status();
  EXPECT_EQ((*accepted)->results.size(), 2u);
  EXPECT_EQ((*accepted)->requeued, 2);
  EXPECT_FALSE((*accepted)->job_finished);
  auto job = store_->job("j1");
  EXPECT_EQ(job->progress.succeeded(), 2);
  EXPECT_EQ(job->progress.running(), 0);
  EXPECT_EQ(job->progress.pending(), 4);
  EXPECT_EQ(*store_->pending_ranks("j1", 10), (std::vector<int>{2, 3, 4, 5}));
  auto results = store_->results_after("j1", 0, 10);
  ASSERT_EQ(results->size(), 2u);
  EXPECT_EQ((*results)[0].rank(), 0);
  EXPECT_EQ((*results)[1].rank(), 1);
  EXPECT_EQ((*results)[1].finish_seq(), 2);
  EXPECT_EQ((*results)[1].files_inline(), "tar of rank 1");
  EXPECT_EQ((*results)[1].worker(), "w1");
  EXPECT_FALSE(store_->finish_chunk(chunk->id, {of_rank(3, 0)}, 5)->has_value()) << "a finished chunk is stale";

  auto rest = store_->start_chunk("j1", 2, 4, "w2", 6);
  ASSERT_TRUE(rest.ok()) << rest.status();
  auto last = store_->finish_chunk(rest->id, {of_rank(2, 3), of_rank(3, 0), of_rank(4, 0), of_rank(5, 0)}, 7);
  ASSERT_TRUE(last.ok() && last->has_value());
  EXPECT_TRUE((*last)->job_finished) << "rank 2 failed for good: the job is done";
  job = store_->job("j1");
  EXPECT_EQ(job->state, v1::JOB_STATE_FINISHED);
  EXPECT_EQ(job->progress.succeeded(), 5);
  EXPECT_EQ(job->progress.failed(), 1);
  results = store_->results_after("j1", 0, 10);
  std::set<int> ranks;
  for (const v1::RankResult& result : *results) ranks.insert(result.rank());
  EXPECT_EQ(ranks, (std::set<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(results->back().finish_seq(), 6);
}

TEST_F(JobStoreTest, ALostChunkQueuesItsRanksAgainAndItsLateResultsAreRefused) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(3), 1).ok());
  auto chunk = store_->start_chunk("j1", 0, 3, "w1", 2);
  ASSERT_TRUE(chunk.ok());
  auto running = store_->running_attempts("j1");
  ASSERT_EQ(running->size(), 1u);
  EXPECT_EQ(running->front().rank_count, 3);
  ASSERT_TRUE(store_->requeue_attempts({chunk->id}).ok());
  EXPECT_EQ(store_->job("j1")->progress.pending(), 3);
  EXPECT_EQ(store_->job("j1")->progress.running(), 0);
  EXPECT_FALSE(store_->finish_chunk(chunk->id, {of_rank(0, 0)}, 3)->has_value());
  EXPECT_TRUE(store_->results_after("j1", 0, 10)->empty());
}

TEST_F(JobStoreTest, CancellingStopsARunningChunkOnce) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(4), 1).ok());
  auto chunk = store_->start_chunk("j1", 1, 3, "w1", 2);
  ASSERT_TRUE(chunk.ok());
  auto to_stop = store_->cancel_job("j1", 3);
  ASSERT_TRUE(to_stop.ok());
  ASSERT_EQ(to_stop->size(), 1u);
  EXPECT_EQ(to_stop->front().id, chunk->id);
  EXPECT_EQ(store_->job("j1")->progress.cancelled(), 4);
}

TEST_F(JobStoreTest, UnknownJobIsNotFound) {
  EXPECT_EQ(store_->job("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobStoreTest, AcceptsOneResultPerRankAndFinishesTheJob) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(2), 42).ok());
  int64_t a0 = store_->start_attempt("j1", 0, "w1", 50)->id;
  int64_t a1 = store_->start_attempt("j1", 1, "w2", 50)->id;
  EXPECT_EQ(store_->job("j1")->progress.running(), 2);
  EXPECT_FALSE(store_->start_attempt("j1", 0, "w2", 51).ok()) << "a running rank cannot start twice";

  auto first = store_->finish_attempt(a1, exited(3), 60);
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->result.rank(), 1);
  EXPECT_EQ((*first)->result.worker(), "w2");
  EXPECT_EQ((*first)->result.finish_seq(), 1);
  EXPECT_FALSE((*first)->job_finished);

  auto again = store_->finish_attempt(a1, exited(0), 61);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value()) << "a second result for the same attempt is refused";

  auto last = store_->finish_attempt(a0, exited(0), 62);
  ASSERT_TRUE(last.ok() && last->has_value());
  EXPECT_TRUE((*last)->job_finished);
  auto job = store_->job("j1");
  EXPECT_EQ(job->state, v1::JOB_STATE_FINISHED);
  EXPECT_EQ(job->progress.succeeded(), 1);
  EXPECT_EQ(job->progress.failed(), 1);

  auto results = *store_->results_after("j1", 0, 10);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].rank(), 1);
  EXPECT_EQ(results[0].output_txt().inline_data(), "out 3");
  EXPECT_EQ(results[1].rank(), 0);
  EXPECT_EQ(store_->results_after("j1", 1, 10)->size(), 1u);
}

TEST_F(JobStoreTest, RequeuedAttemptIsStaleAndTheRankRunsAgain) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(1), 42).ok());
  int64_t lost = store_->start_attempt("j1", 0, "w1", 50)->id;
  ASSERT_TRUE(store_->requeue_attempts({lost}).ok());
  EXPECT_EQ(store_->job("j1")->progress.pending(), 1);
  int64_t retry = store_->start_attempt("j1", 0, "w2", 51)->id;
  EXPECT_FALSE(store_->finish_attempt(lost, exited(0), 52)->has_value()) << "the lost attempt's result is refused";
  auto accepted = store_->finish_attempt(retry, exited(0), 53);
  ASSERT_TRUE(accepted->has_value());
  EXPECT_EQ((*accepted)->result.worker(), "w2");
}

TEST_F(JobStoreTest, CancelStopsRunningAndPendingRanks) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(4), 42).ok());
  int64_t done = store_->start_attempt("j1", 0, "w1", 50)->id;
  ASSERT_TRUE(store_->finish_attempt(done, exited(0), 51)->has_value());
  int64_t running = store_->start_attempt("j1", 1, "w1", 52)->id;
  auto to_stop = store_->cancel_job("j1", 60);
  ASSERT_TRUE(to_stop.ok());
  ASSERT_EQ(to_stop->size(), 1u);
  EXPECT_EQ((*to_stop)[0].id, running);
  auto job = store_->job("j1");
  EXPECT_EQ(job->state, v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(job->progress.cancelled(), 3);
  EXPECT_EQ(job->progress.succeeded(), 1);
  EXPECT_FALSE(store_->finish_attempt(running, exited(0), 61)->has_value());
  auto results = *store_->results_after("j1", 0, 10);
  ASSERT_EQ(results.size(), 4u) << "cancelled ranks are reported too";
  std::set<int> ranks;
  for (const auto& result : results) ranks.insert(result.rank());
  EXPECT_EQ(ranks.size(), 4u);
  EXPECT_TRUE(store_->cancel_job("j1", 62)->empty()) << "cancelling twice is harmless";
}

TEST_F(JobStoreTest, StateSurvivesReopening) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(3, "bob"), 42).ok());
  int64_t attempt = store_->start_attempt("j1", 2, "w1", 50)->id;
  ASSERT_TRUE(store_->finish_attempt(attempt, exited(0, 1000, 1700), 51)->has_value());
  int64_t running = store_->start_attempt("j1", 0, "w1", 52)->id;
  store_ = reopen();
  EXPECT_EQ(store_->job("j1")->progress.succeeded(), 1);
  EXPECT_EQ(store_->results_after("j1", 0, 10)->at(0).rank(), 2);
  ASSERT_EQ(store_->running_attempts()->size(), 1u);
  EXPECT_EQ(store_->running_attempts()->at(0).id, running);
  EXPECT_EQ(store_->usage_by_user()->at("bob"), 700);
  EXPECT_EQ(store_->running_jobs()->size(), 1u);
}

TEST_F(JobStoreTest, FailedRankIsRetriedUpToMaxAttempts) {
  v1::JobSpec spec = spec_of(1);
  spec.set_max_attempts(3);
  ASSERT_TRUE(store_->create_job("j1", spec, 42).ok());
  for (int attempt = 1; attempt <= 2; ++attempt) {
    int64_t id = store_->start_attempt("j1", 0, "w1", 50)->id;
    auto retried = store_->finish_attempt(id, exited(1), 51);
    ASSERT_TRUE(retried->has_value());
    EXPECT_TRUE((*retried)->requeued) << "attempt " << attempt;
    EXPECT_EQ(store_->job("j1")->progress.pending(), 1);
  }
  int64_t last = store_->start_attempt("j1", 0, "w1", 52)->id;
  auto final_result = store_->finish_attempt(last, exited(1), 53);
  ASSERT_TRUE(final_result->has_value());
  EXPECT_FALSE((*final_result)->requeued);
  EXPECT_TRUE((*final_result)->job_finished);
  EXPECT_EQ((*final_result)->result.attempts(), 3);
  EXPECT_EQ(store_->job("j1")->progress.failed(), 1);
}

TEST_F(JobStoreTest, RankThatNeverRanIsRetriedAFewTimesWhateverMaxAttempts) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(1), 42).ok());
  v1::RankResult never_ran = exited(127);
  never_ran.set_error("python3 is not installed");
  int requeued = 0;
  while (true) {
    int64_t id = store_->start_attempt("j1", 0, "w1", 50)->id;
    auto taken = store_->finish_attempt(id, never_ran, 51);
    ASSERT_TRUE(taken->has_value());
    if (!(*taken)->requeued) break;
    ++requeued;
  }
  EXPECT_EQ(requeued, 2);
  EXPECT_EQ(store_->job("j1")->state, v1::JOB_STATE_FINISHED);
}

// A rank the worker's full disk failed: the worker's fault, not the rank's.
v1::RankResult spoilt_by_a_full_disk() {
  v1::RankResult result = exited(0);
  result.set_state(v1::RANK_STATE_FAILED);
  result.set_failure_class(v1::FAILURE_CLASS_WORKER);
  result.set_error("the worker's disk was full while the rank ran");
  return result;
}

TEST_F(JobStoreTest, RankFailedByItsWorkersDiskIsPlacedAgainOutsideMaxAttempts) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(1), 42).ok());  // max_attempts 1
  for (int fault = 1; fault <= 4; ++fault) {
    int64_t id = store_->start_attempt("j1", 0, "w1", 50)->id;
    auto taken = store_->finish_attempt(id, spoilt_by_a_full_disk(), 51);
    ASSERT_TRUE(taken->has_value());
    EXPECT_TRUE((*taken)->requeued) << "fault " << fault;
  }
  int64_t id = store_->start_attempt("j1", 0, "w2", 52)->id;
  auto taken = store_->finish_attempt(id, exited(0), 53);
  ASSERT_TRUE(taken->has_value());
  EXPECT_EQ((*taken)->result.state(), v1::RANK_STATE_SUCCEEDED);
  EXPECT_EQ((*taken)->result.worker(), "w2");
  EXPECT_EQ(store_->job("j1")->progress.succeeded(), 1);
}

TEST_F(JobStoreTest, WorkersFaultsInAChunkQueueTheirRanksAgainAndStillEnd) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(2), 42).ok());
  int placed = 0;
  while (store_->job("j1")->progress.pending() > 0) {
    auto chunk = store_->start_chunk("j1", 0, 2, "w1", 50);
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    v1::RankResult first = spoilt_by_a_full_disk();
    first.set_rank(0);
    v1::RankResult second = spoilt_by_a_full_disk();
    second.set_rank(1);
    ASSERT_TRUE(store_->finish_chunk(chunk->id, {first, second}, 51)->has_value());
    ++placed;
    ASSERT_LT(placed, 100) << "a rank failing on every disk must end";
  }
  EXPECT_EQ(placed, 10) << "placed again outside max_attempts (1), up to the workers' budget";
  EXPECT_EQ(store_->job("j1")->state, v1::JOB_STATE_FINISHED);
  EXPECT_EQ(store_->job("j1")->progress.failed(), 2);
}

TEST_F(JobStoreTest, ARankFailedForTheJobsOwnFaultIsNotRetried) {
  v1::JobSpec spec = spec_of(2);
  spec.set_max_attempts(3);
  ASSERT_TRUE(store_->create_job("j1", spec, 42).ok());
  v1::RankResult cannot_execute = exited(127);
  cannot_execute.set_error("cannot start prog: it has no #! line");
  cannot_execute.set_failure_class(v1::FAILURE_CLASS_JOB);
  int64_t id = store_->start_attempt("j1", 0, "w1", 50)->id;
  auto taken = store_->finish_attempt(id, cannot_execute, 51);
  ASSERT_TRUE(taken->has_value());
  EXPECT_FALSE((*taken)->requeued) << "it would fail the same way on any worker";
  EXPECT_EQ((*taken)->result.failure_class(), v1::FAILURE_CLASS_JOB);
}

TEST_F(JobStoreTest, FailingAJobEndsItsOtherRanksAndKeepsWhy) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(4), 42).ok());
  int64_t failed = store_->start_attempt("j1", 0, "w1", 50)->id;
  ASSERT_TRUE(store_->finish_attempt(failed, exited(127), 51)->has_value());
  int64_t running = store_->start_attempt("j1", 1, "w1", 52)->id;
  auto to_stop = store_->fail_job("j1", "cannot start prog: it has no #! line", 60);
  ASSERT_TRUE(to_stop.ok()) << to_stop.status();
  ASSERT_EQ(to_stop->size(), 1u);
  EXPECT_EQ((*to_stop)[0].id, running);
  store_ = reopen();
  auto job = store_->job("j1");
  EXPECT_EQ(job->state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(job->to_info().failure(), "cannot start prog: it has no #! line");
  EXPECT_EQ(job->progress.failed(), 1);
  EXPECT_EQ(job->progress.cancelled(), 3);
  EXPECT_TRUE(store_->running_jobs()->empty());
  EXPECT_EQ(store_->results_after("j1", 0, 10)->size(), 4u) << "every rank has an end to report";

  ASSERT_TRUE(store_->create_job("j2", spec_of(1), 70).ok());
  int64_t last = store_->start_attempt("j2", 0, "w1", 71)->id;
  ASSERT_TRUE((*store_->finish_attempt(last, exited(127), 72))->job_finished);
  ASSERT_TRUE(store_->fail_job("j2", "no #! line", 73).ok());
  EXPECT_EQ(store_->job("j2")->state, v1::JOB_STATE_FAILED) << "a job whose only rank failed so fails too";
}

TEST_F(JobStoreTest, CheckpointGoesToTheNextAttempt) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(1), 42).ok());
  auto first = *store_->start_attempt("j1", 0, "w1", 50);
  EXPECT_TRUE(first.checkpoint.sha256().empty());
  v1::BlobRef checkpoint;
  checkpoint.set_sha256(std::string(64, 'c'));
  checkpoint.set_size(10);
  ASSERT_TRUE(store_->save_checkpoint(first.id, checkpoint).ok());
  ASSERT_TRUE(store_->requeue_attempts({first.id}).ok());
  auto second = *store_->start_attempt("j1", 0, "w2", 51);
  EXPECT_EQ(second.checkpoint.sha256(), checkpoint.sha256());
  v1::BlobRef stale;
  stale.set_sha256(std::string(64, 'd'));
  ASSERT_TRUE(store_->save_checkpoint(first.id, stale).ok());
  ASSERT_TRUE(store_->requeue_attempts({second.id}).ok());
  EXPECT_EQ(store_->start_attempt("j1", 0, "w3", 52)->checkpoint.sha256(), checkpoint.sha256())
      << "a stale attempt's checkpoint is ignored";
}

TEST_F(JobStoreTest, FirstSuccessOfAStragglerAndItsDuplicateWinsAndStopsTheOther) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(1), 0).ok());
  int64_t straggler = store_->start_attempt("j1", 0, "slow", 10)->id;
  int64_t duplicate = store_->start_duplicate("j1", 0, "fast", 20)->id;
  EXPECT_EQ(store_->running_attempts("j1")->size(), 2u);

  auto won = store_->finish_attempt(duplicate, exited(0), 30);
  ASSERT_TRUE(won.ok() && won->has_value());
  EXPECT_EQ((*won)->result.attempt_id(), duplicate);
  EXPECT_EQ((*won)->result.attempts(), 2);
  ASSERT_EQ((*won)->superseded.size(), 1u);
  EXPECT_EQ((*won)->superseded[0].id, straggler);
  EXPECT_EQ((*won)->superseded[0].worker_id, "slow");
  EXPECT_TRUE((*won)->job_finished);
  EXPECT_FALSE(store_->finish_attempt(straggler, exited(0), 40)->has_value()) << "one result per rank";
}

TEST_F(JobStoreTest, FailedDuplicateIsSetAsideWhileTheStragglerRuns) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(1), 0).ok());
  int64_t straggler = store_->start_attempt("j1", 0, "slow", 10)->id;
  int64_t duplicate = store_->start_duplicate("j1", 0, "fast", 20)->id;
  EXPECT_FALSE(store_->finish_attempt(duplicate, exited(1), 30)->has_value());
  EXPECT_EQ(store_->job("j1")->progress.running(), 1);
  auto finished = store_->finish_attempt(straggler, exited(0), 40);
  ASSERT_TRUE(finished.ok() && finished->has_value());
  EXPECT_TRUE((*finished)->superseded.empty());
}

TEST_F(JobStoreTest, LostStragglerLeavesItsRankToTheDuplicate) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(1), 0).ok());
  int64_t straggler = store_->start_attempt("j1", 0, "lost", 10)->id;
  int64_t duplicate = store_->start_duplicate("j1", 0, "fast", 20)->id;
  ASSERT_TRUE(store_->requeue_attempts({straggler}).ok());
  EXPECT_TRUE(store_->pending_ranks("j1", 1)->empty()) << "not queued again: its duplicate runs";
  auto cancelled = store_->cancel_job("j1", 30);
  ASSERT_TRUE(cancelled.ok());
  ASSERT_EQ(cancelled->size(), 1u);
  EXPECT_EQ(cancelled->at(0).id, duplicate);
}

TEST_F(JobStoreTest, AWorkersPausesAreKeptAcrossARestart) {
  ASSERT_TRUE(store_->record_pause("w", "", 50).ok()) << "not paused: nothing to keep";
  ASSERT_TRUE(store_->record_pause("w", "CPU busy", 100).ok());
  ASSERT_TRUE(store_->record_pause("w", "CPU busy", 150).ok()) << "the same pause";
  ASSERT_TRUE(store_->record_pause("w", "disk full", 200).ok());
  ASSERT_TRUE(store_->record_pause("w", "", 300).ok());
  ASSERT_TRUE(store_->record_pause("v", "CPU busy", 1000).ok());
  store_ = reopen();
  auto pauses = store_->pauses_between(0, 2000);
  ASSERT_TRUE(pauses.ok()) << pauses.status();
  ASSERT_EQ(pauses->size(), 3u);
  EXPECT_EQ((*pauses)[0].worker_id(), "v");
  EXPECT_EQ((*pauses)[0].end_unix_ms(), 0) << "still paused";
  EXPECT_EQ((*pauses)[1].reason(), "CPU busy");
  EXPECT_EQ((*pauses)[1].start_unix_ms(), 100);
  EXPECT_EQ((*pauses)[1].end_unix_ms(), 200);
  EXPECT_EQ((*pauses)[2].reason(), "disk full");
  EXPECT_EQ((*pauses)[2].end_unix_ms(), 300);
  EXPECT_EQ(store_->pauses_between(300, 1000)->size(), 0u) << "none overlaps";
}

TEST_F(JobStoreTest, HundredThousandRanksAreRows) {
  ASSERT_TRUE(store_->create_job("big", spec_of(100'000), 42).ok());
  EXPECT_EQ(store_->job("big")->progress.pending(), 100'000);
  EXPECT_EQ(store_->pending_ranks("big", 2)->back(), 1);
}

TEST_F(JobStoreTest, DatabaseFilesAreTheOwnersAlone) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(2), 1).ok());
  for (const char* name : {"pesc.sqlite", "pesc.sqlite-wal", "pesc.sqlite-shm"}) {
    const auto mode = std::filesystem::status(dir_->path() / name).permissions();
    EXPECT_EQ(mode, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write) << name;
  }
}

// Writes garbage over every page but the first (the header) of a closed database.
void damage_pages(const std::filesystem::path& file) {
  std::fstream bytes(file, std::ios::in | std::ios::out | std::ios::binary);
  const auto size = static_cast<std::streamoff>(std::filesystem::file_size(file));
  const std::string garbage(4096, '\xA5');
  for (std::streamoff page = 4096; page < size; page += 4096) {
    bytes.seekp(page);
    bytes.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
}

TEST_F(JobStoreTest, ADamagedPageIsFoundAtOpenNotWhenResultsAreRead) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(200), 1).ok());
  store_.reset();  // closing checkpoints the log into the file
  damage_pages(dir_->path() / "pesc.sqlite");
  auto reopened = JobStore::open(dir_->path() / "pesc.sqlite");
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kDataLoss) << reopened.status();
  EXPECT_NE(reopened.status().message().find("damaged"), std::string::npos) << reopened.status();
}

TEST_F(JobStoreTest, ABackupTakenWhileOpenHasTheSameJobsAndResults) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(3), 42).ok());
  int64_t attempt = store_->start_attempt("j1", 1, "w1", 50)->id;
  ASSERT_TRUE(store_->finish_attempt(attempt, exited(0), 51)->has_value());
  const std::filesystem::path copy = dir_->path() / "copy.sqlite";
  ASSERT_TRUE(JobStore::back_up(dir_->path() / "pesc.sqlite", copy).ok());
  EXPECT_EQ(std::filesystem::status(copy).permissions(),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_FALSE(JobStore::back_up(dir_->path() / "pesc.sqlite", copy).ok()) << "never over an existing file";
  auto restored = JobStore::open(copy);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->job("j1")->progress.succeeded(), 1);
  auto results = (*restored)->results_after("j1", 0, 10);
  ASSERT_EQ(results->size(), 1u);
  EXPECT_EQ(results->front().output_txt().inline_data(), "out 0");
}

// As root: the database on a small tmpfs that fills up.
TEST(JobStoreFullDiskTest, AFailedCommitRollsBackTheWholeBatchAndLaterCommitsReachTheDisk) {
  auto dir = TempDirectory::create("pesc-store-full-");
  testing::SmallTmpfs disk(dir->path() / "disk", "2m");
  if (!disk.mounted()) GTEST_SKIP() << "needs root to mount a tmpfs";
  const std::filesystem::path file = dir->path() / "disk" / "pesc.sqlite";
  auto store = *JobStore::open(file);
  ASSERT_TRUE(store->create_job("j1", spec_of(4), 1).ok());
  const int64_t first = store->start_attempt("j1", 0, "w1", 2)->id;
  const int64_t second = store->start_attempt("j1", 1, "w1", 2)->id;

  disk.fill();
  {
    JobStore::Batch batch(*store);
    (void)store->finish_attempt(first, exited(0), 3);  // its fate is the batch's
    (void)store->finish_attempt(second, exited(0), 3);
    const absl::Status committed = batch.commit();
    ASSERT_FALSE(committed.ok()) << "nothing could reach the disk";
    EXPECT_EQ(committed.code(), absl::StatusCode::kResourceExhausted) << committed;
  }
  EXPECT_EQ(store->job("j1")->progress.succeeded(), 0) << "the whole batch is rolled back";
  EXPECT_EQ(store->job("j1")->progress.running(), 2);

  disk.free_space();
  // The results come again, and this time they stay.
  ASSERT_TRUE(store->finish_attempt(first, exited(0), 4)->has_value());
  {
    JobStore::Batch batch(*store);
    ASSERT_TRUE(store->finish_attempt(second, exited(0), 4)->has_value());
    ASSERT_TRUE(batch.commit().ok());
  }
  store.reset();
  store = *JobStore::open(file);
  EXPECT_EQ(store->job("j1")->progress.succeeded(), 2) << "what was committed after the failure is on disk";
  EXPECT_EQ(store->results_after("j1", 0, 10)->size(), 2u);
}

TEST(BlobStoreTest, RefusesBytesThatDoNotMatchTheirName) {
  auto dir = TempDirectory::create("pesc-blob-test-");
  auto blobs = *BlobStore::open(dir->path());
  auto writer = *blobs->begin_write();
  ASSERT_TRUE(writer->append("hello").ok());
  auto wrong = writer->commit(std::string(64, '0'));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kDataLoss);
  auto right = blobs->put_bytes("hello");
  ASSERT_TRUE(right.ok());
  EXPECT_EQ(*right, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_TRUE(blobs->contains(*right));
  EXPECT_FALSE(blobs->contains("../../etc/passwd"));
}

}  // namespace
}  // namespace pesc
