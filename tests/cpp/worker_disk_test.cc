// A worker whose disk fills up: real daemons, a real tmpfs filled to the
// last byte (as root; skipped otherwise). Nothing it runs then may come back
// as a success with lost bytes, its ranks run elsewhere, it says why it
// takes no ranks, and it takes them again by itself once there is room,
// with no broken copy of a process left in its cache.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include "archive/archive.h"
#include "common/files.h"
#include "common/sha256.h"
#include "attempt_runs.h"
#include "farm_harness.h"
#include "gtest/gtest.h"
#include "pesc/pesc.h"
#include "pesc/v1/pesc.grpc.pb.h"
#include "transport/transport.h"
#include "worker/assignment_conversion.h"
#include "worker/coordinator_blobs.h"
#include "worker/disk_room.h"
#include "worker/process_cache.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;
using testing::SmallTmpfs;
using testing::TestFarm;
using testing::eventually;
using testing::run_command;
using testing::write_script;

bool is_root() { return ::geteuid() == 0; }

// Each rank prints a line and leaves a file of known bytes in its output_dir.
constexpr const char* kWritingRank =
    "printf 'rank %s\\n' \"$PESC_RANK\"\n"
    "i=0\n"
    "while [ $i -lt 40 ]; do echo \"line $i of rank $PESC_RANK\"; i=$((i + 1)); done > \"$PESC_OUTPUT_DIR/data.txt\"\n";

std::string data_of(int rank) {
  std::string text;
  for (int i = 0; i < 40; ++i) text += "line " + std::to_string(i) + " of rank " + std::to_string(rank) + "\n";
  return text;
}

void expect_every_rank_once_with_its_bytes(const Results& results, int n) {
  ASSERT_EQ(results.size(), static_cast<size_t>(n));
  for (int rank = 0; rank < n; ++rank) {
    const RankResult& result = results[static_cast<size_t>(rank)];
    ASSERT_TRUE(result.ok()) << "rank " << rank << " on " << result.worker << ": " << result.error;
    ASSERT_EQ(result.output, "rank " + std::to_string(rank) + "\n") << "rank " << rank << " on " << result.worker;
    ASSERT_EQ(results.read_file(static_cast<size_t>(rank), "data.txt"), data_of(rank))
        << "rank " << rank << " on " << result.worker;
  }
  EXPECT_EQ(testing::attempts_not_in_runs(results), "");
}

// The job's results; when it has not finished within a minute, a failure
// and what it has (cancelled), so that the test fails instead of hanging.
Results wait_a_minute(Job& job) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (!job.done() && std::chrono::steady_clock::now() < deadline) job.next(std::chrono::seconds(1));
  if (!job.done()) {
    ADD_FAILURE() << "the job did not finish: " << job.progress().waiting;
    job.cancel();
  }
  return job.wait();
}

std::string workers_listing(const TestFarm& farm) {
  return run_command({PESC_CLI_BINARY, "--coordinator", farm.address(), "workers"}).out;
}

// worker0 with plenty of room, and worker1 whose work dir is an 8 MiB
// tmpfs; worker1 alone serves the room "small".
class WorkerDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "mounting a small tmpfs needs root";
    disk_ = std::make_unique<SmallTmpfs>(farm_.dir() / "worker1", "8m");
    ASSERT_TRUE(disk_->mounted()) << "cannot mount a tmpfs on " << (farm_.dir() / "worker1");
    farm_.add_worker(2, {"--room=public,small", "--disk-reserve-mb=1"});
    ASSERT_TRUE(eventually([&] { return listing().find("worker1") != std::string::npos; }));
  }
  void TearDown() override { disk_.reset(); }

  std::string listing() const { return workers_listing(farm_); }

  // Once the disk has room again worker1 takes ranks by itself, and runs
  // `script` right: nothing broken stayed in its cache.
  void expect_resumes_and_runs_alone(const fs::path& script, int ranks) {
    disk_->free_space();
    ASSERT_TRUE(eventually([&] { return listing().find("disk full") == std::string::npos; })) << listing();
    Job on_worker1 = client_.map(script, ranks, {}, {.rooms = {"small"}});
    Results alone = wait_a_minute(on_worker1);
    expect_every_rank_once_with_its_bytes(alone, ranks);
    for (const RankResult& rank : alone) EXPECT_EQ(rank.worker, "worker1");
  }

  ScratchDir scratch_;
  TestFarm farm_{1, 2};
  std::unique_ptr<SmallTmpfs> disk_;
  Farm client_{"shell", {.coordinator = farm_.address()}};
};

TEST_F(WorkerDiskTest, FullDiskLosesNoRankFakesNoSuccessAndResumesByItself) {
  disk_->fill();
  const fs::path script = write_script(scratch_.path(), "writes.sh", kWritingRank);
  constexpr int kRanks = 300;
  Job job = client_.map(script, kRanks, {}, {.rooms = {"public", "small"}});
  Results results = wait_a_minute(job);
  expect_every_rank_once_with_its_bytes(results, kRanks);

  ASSERT_TRUE(eventually([&] { return listing().find("disk full") != std::string::npos; })) << listing();
  EXPECT_NE(listing().find("takes no new ranks: disk full: " + (farm_.dir() / "worker1").string()),
            std::string::npos)
      << listing();
  // A job only worker1 may run waits, and says why.
  Job waiting = client_.map(script, 5, {}, {.rooms = {"small"}});
  EXPECT_TRUE(eventually([&] {
    waiting.next(std::chrono::milliseconds(100));
    return waiting.progress().waiting.find("disk full") != std::string::npos;
  })) << waiting.progress().waiting;
  expect_resumes_and_runs_alone(script, 20);
  expect_every_rank_once_with_its_bytes(wait_a_minute(waiting), 5);
}

TEST_F(WorkerDiskTest, DiskFillingUpUnderRunningRanksFailsThemForTheWorkerAndTheyRunElsewhere) {
  // Ranks that wait for the disk to fill before they write: whatever they
  // write then is lost, and they cannot tell.
  const fs::path go = scratch_.path() / "go";
  const fs::path script = write_script(
      scratch_.path(), "waits.sh",
      std::string("while [ ! -e '") + go.string() + "' ]; do sleep 0.02; done\n" + kWritingRank);
  constexpr int kRanks = 40;
  Job job = client_.map(script, kRanks, {}, {.rooms = {"public", "small"}});
  // Spawned on worker1: its output.txt is open.
  ASSERT_TRUE(eventually([&] { return fs::exists(farm_.dir() / "worker1" / "runs" / "slot-0" / "output" / "output.txt"); }));
  disk_->fill();
  write_script(scratch_.path(), "go", "");
  Results results = wait_a_minute(job);
  expect_every_rank_once_with_its_bytes(results, kRanks);
  int tried_again = 0;
  for (const RankResult& rank : results) {
    EXPECT_EQ(rank.worker, "worker0") << "rank " << rank.rank;
    tried_again += rank.attempts > 1;
  }
  EXPECT_GE(tried_again, 1) << "the ranks that ran on worker1 when its disk filled ran again on worker0";
  expect_resumes_and_runs_alone(script, 10);
}

// A coordinator to fetch blobs from, and a worker's process cache beside it.
class ProcessCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    channel_ = open_channel(farm_.address(), {.token = farm_.admin_token()});
    blobs_ = std::make_unique<CoordinatorBlobs>(channel_);
    auto cache = ProcessCache::open(scratch_.path() / "cache");
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
  }

  // A one-file process of `text`, uploaded.
  JobRun job_of(const std::string& text) {
    const fs::path file = write_script(scratch_.path(), "upload.sh", text);
    auto ref = blobs_->upload_file(file);
    EXPECT_TRUE(ref.ok()) << ref.status();
    JobRun job;
    job.entry = "main.sh";
    if (ref.ok()) job.process = *ref;
    return job;
  }

  std::string staged_text(const JobRun& job) {
    auto dir = cache_->materialize(job, *blobs_);
    EXPECT_TRUE(dir.ok()) << dir.status();
    return dir.ok() ? testing::read_all(*dir / "main.sh") : "";
  }

  fs::path blob_path(const JobRun& job) {
    const std::string& sha = job.process.sha256;
    return scratch_.path() / "cache" / "blobs" / sha.substr(0, 2) / sha;
  }

  TestFarm farm_{0};
  ScratchDir scratch_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<BlobSource> blobs_;
  std::unique_ptr<ProcessCache> cache_;
};

TEST_F(ProcessCacheTest, TruncatedEntryIsStagedAgain) {
  const std::string text = "echo the whole process\n";
  const JobRun job = job_of(text);
  auto dir = cache_->materialize(job, *blobs_);
  ASSERT_TRUE(dir.ok()) << dir.status();
  // A rank running as the worker may write through its hard link.
  fs::resize_file(*dir / "main.sh", 0);
  EXPECT_EQ(staged_text(job), text);
  fs::remove(*dir / "main.sh");
  EXPECT_EQ(staged_text(job), text);
}

TEST_F(ProcessCacheTest, TruncatedBlobIsFetchedAgain) {
  const std::string text = "echo fetched again\n";
  const JobRun job = job_of(text);
  ASSERT_EQ(staged_text(job), text);
  fs::resize_file(blob_path(job), 3);
  // The same bytes under another name: a new entry, staged from the blob.
  JobRun renamed = job;
  renamed.entry = "other.sh";
  auto dir = cache_->materialize(renamed, *blobs_);
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ(testing::read_all(*dir / "other.sh"), text);
  EXPECT_EQ(fs::file_size(blob_path(job)), text.size());
}

TEST_F(ProcessCacheTest, FullDiskFailsTheFetchAsADiskFaultAndCachesNothing) {
  if (!is_root()) GTEST_SKIP() << "mounting a small tmpfs needs root";
  SmallTmpfs disk(scratch_.path() / "small", "1m");
  ASSERT_TRUE(disk.mounted());
  auto cache = ProcessCache::open(scratch_.path() / "small" / "cache");
  ASSERT_TRUE(cache.ok()) << cache.status();
  disk.fill();
  const JobRun job = job_of("echo never staged\n");
  auto dir = (*cache)->materialize(job, *blobs_);
  ASSERT_FALSE(dir.ok()) << "staged on a full disk";
  EXPECT_TRUE(is_disk_fault(dir.status())) << dir.status();
  disk.free_space();
  dir = (*cache)->materialize(job, *blobs_);
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ(testing::read_all(*dir / "main.sh"), "echo never staged\n");
}

// A full disk's free space moves with every check; the reason it gave when it
// filled stands, so a job waiting on it is told why once (issue 14).
TEST(DiskRoomTest, AFullDiskKeepsTheReasonItGaveWhenItFilled) {
  ScratchDir scratch;
  const DiskRoom room(scratch.path(), uint64_t{1} << 62);  // more than any disk: always full
  const std::string first = room.shortage();
  ASSERT_TRUE(first.starts_with("disk full: " + scratch.path().string() + " has ")) << first;
  const std::string filled = "disk full: " + scratch.path().string() + " has 12 KiB free, under the 4.0 EiB kept";
  EXPECT_EQ(room.shortage(filled), filled);
  EXPECT_NE(room.shortage("disk unusable: gone"), "disk unusable: gone") << "another reason is not kept";
  EXPECT_EQ(DiskRoom(scratch.path(), 0).shortage(filled), "") << "room again";
}

TEST(ArchiveOnFullDiskTest, ExtractionThatRunsOutOfRoomFailsInsteadOfLeavingShortFiles) {
  if (!is_root()) GTEST_SKIP() << "mounting a small tmpfs needs root";
  ScratchDir scratch;
  const fs::path tree = scratch.path() / "tree";
  fs::create_directories(tree);
  write_script(tree, "big.bin", std::string(3 << 20, 'b'));
  const fs::path tar = scratch.path() / "tree.tar";
  ASSERT_TRUE(archive::pack_directory(tree, tar).ok());
  SmallTmpfs disk(scratch.path() / "small", "1m");
  ASSERT_TRUE(disk.mounted());
  const absl::Status extracted = archive::extract(tar, scratch.path() / "small" / "out");
  ASSERT_FALSE(extracted.ok()) << "a 3 MiB file extracted onto a 1 MiB disk";
  EXPECT_TRUE(is_disk_fault(extracted)) << extracted;
  // And packing onto it fails as well.
  const absl::Status packed = archive::pack_directory(tree, scratch.path() / "small" / "again.tar");
  ASSERT_FALSE(packed.ok());
  EXPECT_TRUE(is_disk_fault(packed)) << packed;
}

}  // namespace
}  // namespace pesc
