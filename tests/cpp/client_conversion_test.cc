// The client's edge: the protocol's messages as the plain types the client
// library hands out, and a rank's stored bytes through Results' opaque form.
#include "client/client_conversion.h"

#include "gtest/gtest.h"

namespace pesc {
namespace {

TEST(ClientConversionTest, ARankResultKeepsWhereItsOutputAndFilesAre) {
  v1::RankResult proto;
  proto.set_rank(3);
  proto.set_state(v1::RANK_STATE_FAILED);
  proto.set_failure_class(v1::FAILURE_CLASS_WORKER);
  proto.set_start_unix_ms(1000);
  proto.set_end_unix_ms(3500);
  proto.set_finish_seq(7);
  proto.add_other_attempt_workers("w1");
  proto.mutable_output_txt()->mutable_blob()->set_sha256("abc");
  proto.mutable_output_txt()->mutable_blob()->set_size(42);
  proto.set_files_inline("tar bytes");

  const StoredRankResult stored = from_proto(proto);
  EXPECT_EQ(stored.result.rank, 3);
  EXPECT_EQ(stored.result.status, RankStatus::kFailed);
  EXPECT_EQ(stored.result.failure_class, FailureClass::kWorker);
  EXPECT_EQ(stored.result.duration, std::chrono::milliseconds(2500));
  EXPECT_EQ(stored.result.other_attempt_workers, std::vector<std::string>{"w1"});
  EXPECT_TRUE(stored.result.has_files);
  EXPECT_EQ(stored.result.output, "") << "output is fetched by the client, not converted";
  EXPECT_EQ(stored.finish_seq, 7);
  EXPECT_EQ(stored.output.blob_sha256, "abc");
  EXPECT_EQ(stored.output.blob_size, 42u);
  EXPECT_EQ(stored.files.inline_data, "tar bytes");
  EXPECT_TRUE(from_proto(v1::RankResult()).files.empty());
  EXPECT_FALSE(from_proto(v1::RankResult()).result.has_files);
}

TEST(ClientConversionTest, StoredBytesSurviveTheOpaqueForm) {
  const StoredBytes blob{.blob_sha256 = "abc", .blob_size = 42};
  const StoredBytes back = stored_bytes_from_opaque(to_opaque(blob));
  EXPECT_EQ(back.blob_sha256, "abc");
  EXPECT_EQ(back.blob_size, 42u);
  EXPECT_EQ(stored_bytes_from_opaque(to_opaque(StoredBytes{.inline_data = "x"})).inline_data, "x");
  EXPECT_TRUE(stored_bytes_from_opaque(to_opaque(StoredBytes{})).empty());
  EXPECT_EQ(to_payload(blob).blob().sha256(), "abc");
}

TEST(ClientConversionTest, AJobAndAWorkerAsListed) {
  v1::JobInfo job;
  job.set_id("j1");
  job.mutable_spec()->set_name("sweep");
  job.mutable_spec()->set_user("ana");
  job.mutable_spec()->set_warm_runner(true);
  job.set_state(v1::JOB_STATE_CANCELLED);
  job.mutable_progress()->set_total(4);
  job.mutable_progress()->set_waiting("no worker");
  v1::WorkerPause& pause = *job.add_pauses();
  pause.set_worker_id("w1");
  pause.set_end_unix_ms(5);
  const JobSummary summary = from_proto(job);
  EXPECT_EQ(summary.id, "j1");
  EXPECT_EQ(summary.name, "sweep");
  EXPECT_EQ(summary.user, "ana");
  EXPECT_TRUE(summary.warm_runner);
  EXPECT_EQ(summary.state, JobState::kCancelled);
  EXPECT_EQ(summary.progress.total, 4);
  EXPECT_EQ(summary.progress.waiting, "no worker");
  ASSERT_EQ(summary.pauses.size(), 1u);
  EXPECT_EQ(summary.pauses[0].worker, "w1");
  EXPECT_EQ(summary.pauses[0].end, from_unix_ms(5));

  v1::WorkerInfo worker;
  worker.set_id("w1");
  worker.add_rooms("lab");
  v1::Gpu& gpu = *worker.add_gpus();
  gpu.set_index(1);
  gpu.set_memory_bytes(1 << 30);
  v1::UnavailableDomain& python = *worker.add_unavailable_domains();
  python.set_domain("python");
  python.set_why("no python3");
  worker.set_host_cpu_percent(-1);
  const WorkerSummary listed = from_proto(worker);
  EXPECT_EQ(listed.rooms, std::vector<std::string>{"lab"});
  ASSERT_EQ(listed.gpus.size(), 1u);
  EXPECT_EQ(listed.gpus[0].memory_bytes, 1 << 30);
  ASSERT_EQ(listed.unavailable_domains.size(), 1u);
  EXPECT_EQ(listed.unavailable_domains[0].why, "no python3");
  EXPECT_EQ(listed.allocation_end, std::chrono::system_clock::time_point()) << "0: not a pilot";
}

TEST(ClientConversionTest, ARunningRanksOutputHasNoResultYet) {
  v1::RankOutput running;
  running.set_state(v1::RANK_STATE_RUNNING);
  running.set_data("hello");
  running.set_attempt_id(9);
  const RankOutputPiece piece = from_proto(running);
  EXPECT_EQ(piece.state, RankStatus::kRunning);
  EXPECT_EQ(piece.data, "hello");
  EXPECT_EQ(piece.attempt, 9);
  EXPECT_FALSE(piece.result.has_value());
  running.mutable_result()->set_rank(0);
  EXPECT_TRUE(from_proto(running).result.has_value());
}

}  // namespace
}  // namespace pesc
