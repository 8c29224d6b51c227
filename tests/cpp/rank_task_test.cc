// The worker's edge and what lies below it without a coordinator: an
// assignment and its job's description become a RankTask, a RankOutcome
// becomes a RankResult, and the process cache stages a task's process from
// any BlobSource.

#include <map>
#include <memory>
#include <string>

#include "common/files.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "worker/assignment_conversion.h"
#include "worker/process_cache.h"
#include "worker/rank_task.h"

namespace pesc {
namespace {
namespace fs = std::filesystem;

TEST(AssignmentConversionTest, AnAssignmentBecomesATaskOfItsJobsRun) {
  v1::JobDescription description;
  description.set_job_id("j1");
  description.set_world_size(200);
  description.set_domain("python");
  description.set_process_kind(v1::PROCESS_KIND_ARCHIVE);
  description.mutable_process()->set_sha256("abc");
  description.set_entry("main.py");
  description.add_parameters("--fast");
  description.mutable_limits()->set_memory_bytes(1 << 20);
  description.add_shared()->set_name("data.csv");
  description.mutable_shared(0)->set_url("https://example.org/data.csv");
  description.set_seed(7);
  const std::shared_ptr<const JobRun> job = job_run_from(description);
  EXPECT_EQ(job->world_size, 200);
  EXPECT_TRUE(job->archive);
  EXPECT_EQ(job->parameters, std::vector<std::string>{"--fast"});
  EXPECT_EQ(job->limits.memory_bytes, 1 << 20);
  EXPECT_EQ(job->shared.at(0).url, "https://example.org/data.csv");
  EXPECT_EQ(job->seed, 7u);

  v1::Assignment assignment;
  assignment.set_job_id("j1");
  assignment.set_attempt_id(42);
  assignment.set_rank(3);
  assignment.add_gpus(1);
  const RankTask task = task_from(assignment, job);
  EXPECT_EQ(task.job, job) << "every attempt of the job shares its run";
  EXPECT_EQ(task.attempt_id, 42);
  EXPECT_EQ(task.rank, 3);
  EXPECT_EQ(task.rank_count, 1);
  EXPECT_EQ(task.gpus, std::vector<int>{1});
  EXPECT_FALSE(task.checkpoint);
  EXPECT_EQ(task.master_addr, "127.0.0.1") << "the rank contract's default";
  EXPECT_EQ(task.master_port, 9000);
}

TEST(AssignmentConversionTest, AnOutcomeIsReportedAsARankResult) {
  RankOutcome outcome;
  outcome.rank = 3;
  outcome.attempt_id = 42;
  outcome.exit_code = 2;
  outcome.fault = Fault::kRank;
  outcome.output_txt = Payload{.inline_bytes = "hello\n"};
  outcome.files = BlobId{.sha256 = "f", .size = 9};
  outcome.left_out = {"link"};
  const v1::RankResult result = result_of(outcome);
  EXPECT_EQ(result.rank(), 3);
  EXPECT_EQ(result.attempt_id(), 42);
  EXPECT_EQ(result.state(), v1::RANK_STATE_FAILED);
  EXPECT_EQ(result.failure_class(), v1::FAILURE_CLASS_RANK);
  EXPECT_EQ(result.exit_code(), 2);
  EXPECT_EQ(result.output_txt().inline_data(), "hello\n");
  EXPECT_EQ(result.files().size(), 9u);
  EXPECT_EQ(result.left_out(0), "link");
  EXPECT_FALSE(result.has_checkpoint());

  outcome.succeeded = true;
  outcome.fault = Fault::kNone;
  EXPECT_EQ(result_of(outcome).state(), v1::RANK_STATE_SUCCEEDED);
  EXPECT_EQ(result_of(outcome).failure_class(), v1::FAILURE_CLASS_UNSPECIFIED);
}

// Blobs from memory, by hash.
class MemoryBlobs final : public BlobSource {
 public:
  BlobId put(const std::string& bytes) {
    const BlobId id{.sha256 = sha256_hex(bytes), .size = bytes.size()};
    blobs_[id.sha256] = bytes;
    return id;
  }
  int downloads = 0;

  absl::StatusOr<BlobId> upload_file(const fs::path&) override { return absl::UnimplementedError("upload"); }
  absl::Status download(const BlobId& blob, const fs::path& destination, Durability durability) override {
    ++downloads;
    auto found = blobs_.find(blob.sha256);
    if (found == blobs_.end()) return absl::NotFoundError(blob.sha256);
    fs::create_directories(destination.parent_path());
    return write_file_atomically(destination, found->second, durability);
  }
  absl::StatusOr<Payload> make_payload(std::string) override { return absl::UnimplementedError("payload"); }

 private:
  std::map<std::string, std::string> blobs_;
};

TEST(ProcessCacheTest, StagesATasksProcessOnceFromAnyBlobSource) {
  auto scratch = TempDirectory::create("pesc-rank-task-test-");
  ASSERT_TRUE(scratch.ok()) << scratch.status();
  auto cache = ProcessCache::open(scratch->path() / "cache");
  ASSERT_TRUE(cache.ok()) << cache.status();
  MemoryBlobs blobs;
  JobRun job;
  job.entry = "main.sh";
  job.process = blobs.put("echo hello\n");
  auto dir = (*cache)->materialize(job, blobs);
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_TRUE(fs::exists(*dir / "main.sh"));
  ASSERT_TRUE((*cache)->materialize(job, blobs).ok());
  EXPECT_EQ(blobs.downloads, 1) << "fetched once, then from the cache";
}

}  // namespace
}  // namespace pesc
