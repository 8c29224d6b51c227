// The coordinator's edge: the protocol's messages as the ledger's plain
// types and back, every field kept.
#include "ledger/ledger_conversion.h"

#include <string>
#include <vector>

#include "common/clock.h"
#include "gtest/gtest.h"
#include "proto_fields.h"

namespace pesc {
namespace {

v1::JobSpec every_spec_field() {
  v1::JobSpec spec;
  spec.set_domain("python");
  spec.set_process_kind(v1::PROCESS_KIND_ARCHIVE);
  spec.mutable_process()->set_sha256(std::string(64, 'a'));
  spec.mutable_process()->set_size(12);
  spec.set_entry("main.py");
  spec.set_repetitions(8);
  spec.add_parameters("x y");
  spec.add_parameters("");
  spec.set_name("sweep");
  spec.set_user("ana");
  spec.set_max_attempts(3);
  spec.set_timeout_ms(60'000);
  spec.set_checkpoint_interval_ms(5'000);
  spec.set_warm_runner(true);
  spec.add_rooms("lab");
  spec.set_same_machine(true);
  v1::SharedFile& blob = *spec.add_shared();
  blob.set_name("data.csv");
  blob.mutable_blob()->set_sha256(std::string(64, 's'));
  blob.mutable_blob()->set_size(7);
  v1::SharedFile& url = *spec.add_shared();
  url.set_name("big.bin");
  url.set_url("https://example.org/big.bin");
  v1::RankLimits& limits = *spec.mutable_limits();
  limits.set_memory_bytes(1 << 30);
  limits.set_cpu_ms(90'000);
  limits.set_open_files(64);
  limits.set_processes(16);
  limits.set_output_bytes(1 << 20);
  spec.set_network(true);
  spec.set_parallel(true);
  spec.set_no_duplicates(true);
  spec.set_gpus_per_rank(2);
  spec.set_min_capability(7.5);
  spec.set_seed(42);
  spec.add_notify("mailto:ana@example.org");
  return spec;
}

TEST(LedgerConversionTest, AJobSpecKeepsEveryField) {
  const v1::JobSpec proto = every_spec_field();
  ASSERT_EQ(unset_fields(proto), std::vector<std::string>{}) << "set the new fields above";
  const JobSpec spec = from_proto(proto);
  EXPECT_EQ(spec.options.entry, "main.py");
  EXPECT_EQ(spec.options.limits.cpu_time, std::chrono::seconds(90));
  EXPECT_TRUE(spec.archive);
  EXPECT_EQ(spec.shared.at(1).url, "https://example.org/big.bin");
  expect_same(proto, to_proto(spec));
}

TEST(LedgerConversionTest, AOneFileProcessStaysOneFile) {
  v1::JobSpec proto = every_spec_field();
  proto.set_process_kind(v1::PROCESS_KIND_FILE);
  proto.clear_seed();
  EXPECT_FALSE(from_proto(proto).archive);
  expect_same(proto, to_proto(from_proto(proto)));
}

v1::RankResult every_result_field() {
  v1::RankResult result;
  result.set_rank(3);
  result.set_state(v1::RANK_STATE_FAILED);
  result.set_attempt_id(17);
  result.set_worker("w1");
  result.set_exit_code(2);
  result.set_signal(9);
  result.set_start_unix_ms(1'000);
  result.set_end_unix_ms(3'500);
  result.set_cpu_ms(2'000);
  result.set_max_rss_kb(4'096);
  result.mutable_output_txt()->mutable_blob()->set_sha256(std::string(64, 'o'));
  result.mutable_output_txt()->mutable_blob()->set_size(1 << 20);
  result.mutable_files()->set_sha256(std::string(64, 'f'));
  result.mutable_files()->set_size(99);
  result.set_error("could not start");
  result.set_finish_seq(5);
  result.set_attempts(2);
  result.set_timed_out(true);
  result.mutable_checkpoint()->set_sha256(std::string(64, 'c'));
  result.mutable_checkpoint()->set_size(10);
  result.set_files_inline("small tar");
  result.set_limit_exceeded("memory");
  result.set_failure_class(v1::FAILURE_CLASS_OWNER);
  result.add_left_out("link");
  result.add_other_attempt_workers("w0");
  return result;
}

TEST(LedgerConversionTest, ARankResultKeepsEveryField) {
  v1::RankResult proto = every_result_field();
  ASSERT_EQ(unset_fields(proto), std::vector<std::string>{}) << "set the new fields above";
  const RankRecord rank = rank_record_of(proto);
  EXPECT_EQ(rank.result.status, RankStatus::kFailed);
  EXPECT_EQ(rank.result.failure_class, FailureClass::kOwner);
  EXPECT_EQ(rank.result.duration, std::chrono::milliseconds(2'500));
  EXPECT_TRUE(rank.result.has_files);
  EXPECT_EQ(rank.output.blob->size, 1u << 20);
  EXPECT_EQ(rank.checkpoint->sha256, std::string(64, 'c'));
  // files and files_inline are one or the other: the blob wins.
  proto.clear_files_inline();
  expect_same(proto, to_proto(rank));

  v1::RankResult small = every_result_field();
  small.clear_files();
  small.mutable_output_txt()->set_inline_data("hello\n");
  expect_same(small, to_proto(rank_record_of(small)));
}

TEST(LedgerConversionTest, ARanksOutputNowIsTheRankOutputClientsSee) {
  v1::RankOutput expected;
  expected.set_state(v1::RANK_STATE_FAILED);
  expected.set_data("lo, world\n");
  expected.set_attempt_id(17);
  *expected.mutable_result() = every_result_field();
  expected.mutable_result()->clear_files_inline();  // files and files_inline are one or the other
  ASSERT_EQ(unset_fields(expected), std::vector<std::string>{"pesc.v1.RankResult.files_inline"})
      << "set the new fields above";
  const RankOutputNow output{.state = RankStatus::kFailed,
                             .data = "lo, world\n",
                             .attempt_id = 17,
                             .result = rank_record_of(expected.result())};
  expect_same(expected, to_proto(output));
  EXPECT_FALSE(to_proto(RankOutputNow{.state = RankStatus::kRunning}).has_result()) << "no result while it runs";
}

TEST(LedgerConversionTest, AWorkersAnswerToAnOutputReadKeepsEveryField) {
  v1::OutputRead proto;
  proto.set_request_id(3);
  proto.set_data("bytes");
  proto.set_gone(true);
  ASSERT_EQ(unset_fields(proto), std::vector<std::string>{}) << "set the new fields above";
  const OutputAnswer answer = from_proto(proto);
  EXPECT_EQ(answer.request_id, 3);
  EXPECT_EQ(answer.data, "bytes");
  EXPECT_TRUE(answer.gone);
}

TEST(LedgerConversionTest, AWorkersReportIsOneEndedAttemptPerRankFinished) {
  v1::AttemptsFinished batch;
  v1::RankFinished& single = *batch.add_finished();
  single.set_attempt_id(7);
  *single.mutable_result() = every_result_field();
  v1::RankFinished& chunk = *batch.add_finished();
  chunk.set_attempt_id(8);
  *chunk.add_chunk() = every_result_field();
  chunk.mutable_chunk(0)->set_rank(4);
  *chunk.add_chunk() = every_result_field();
  const std::vector<AttemptEnded> ended = attempts_ended_of(batch);
  ASSERT_EQ(ended.size(), 2u);
  EXPECT_EQ(ended[0].attempt_id, 7);
  EXPECT_EQ(ended[0].result.result.rank, 3);
  EXPECT_TRUE(ended[0].chunk.empty());
  EXPECT_EQ(ended[1].attempt_id, 8);
  ASSERT_EQ(ended[1].chunk.size(), 2u);
  EXPECT_EQ(ended[1].chunk[0].result.rank, 4);
}

TEST(LedgerConversionTest, EveryStateAndFailureClassHasItsOwnName) {
  for (int state = v1::RANK_STATE_PENDING; state <= v1::RANK_STATE_CANCELLED; ++state) {
    EXPECT_EQ(to_proto(from_proto(static_cast<v1::RankState>(state))), state);
  }
  for (int failure = v1::FAILURE_CLASS_UNSPECIFIED; failure <= v1::FAILURE_CLASS_OWNER; ++failure) {
    EXPECT_EQ(to_proto(from_proto(static_cast<v1::FailureClass>(failure))), failure);
  }
  for (int state = v1::JOB_STATE_UNSPECIFIED; state <= v1::JOB_STATE_FAILED; ++state) {
    EXPECT_EQ(to_proto(from_proto(static_cast<v1::JobState>(state))), state);
  }
}

TEST(LedgerConversionTest, AJobRecordIsTheJobInfoClientsSee) {
  JobRecord job{.id = "j1",
                .spec = from_proto(every_spec_field()),
                .state = JobState::kFailed,
                .progress = {.total = 8, .pending = 1, .running = 2, .succeeded = 3, .failed = 1, .cancelled = 1,
                             .waiting = "no worker", .queued_at_workers = 4},
                .created_unix_ms = 10,
                .finished_unix_ms = 20,
                .failure = "cannot run"};
  v1::JobInfo expected;
  expected.set_id("j1");
  *expected.mutable_spec() = every_spec_field();
  expected.set_state(v1::JOB_STATE_FAILED);
  v1::JobProgress& progress = *expected.mutable_progress();
  progress.set_total(8);
  progress.set_pending(1);
  progress.set_running(2);
  progress.set_succeeded(3);
  progress.set_failed(1);
  progress.set_cancelled(1);
  progress.set_waiting("no worker");
  progress.set_queued_at_workers(4);
  expected.set_created_unix_ms(10);
  expected.set_finished_unix_ms(20);
  expected.set_failure("cannot run");
  v1::WorkerPause& pause = *expected.add_pauses();
  pause.set_worker_id("w1");
  pause.set_start_unix_ms(11);
  pause.set_end_unix_ms(12);
  pause.set_reason("owner present");
  ASSERT_EQ(unset_fields(expected), std::vector<std::string>{}) << "set the new fields above";

  const WorkerPause paused{.worker = "w1", .start = from_unix_ms(11), .end = from_unix_ms(12), .reason = "owner present"};
  expect_same(expected, to_proto(JobView{.record = job, .pauses = {paused}}));
}

TEST(LedgerConversionTest, AWorkersRecordFillsWhatTheLedgerKnowsOfIt) {
  const v1::WorkerInfo info =
      to_proto(WorkerRecord{.id = "w1", .host = "h", .slots = 4, .last_seen_unix_ms = 7, .ranks_done = 9});
  EXPECT_EQ(info.id(), "w1");
  EXPECT_EQ(info.host(), "h");
  EXPECT_EQ(info.slots(), 4);
  EXPECT_EQ(info.last_seen_unix_ms(), 7);
  EXPECT_EQ(info.ranks_done(), 9);
}

}  // namespace
}  // namespace pesc
