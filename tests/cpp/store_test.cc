#include "ledger/sqlite_job_store.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>

#include "common/files.h"
#include "farm_harness.h"
#include "job_store_examples.h"
#include "gtest/gtest.h"
#include "pesc/v1/pesc.pb.h"
#include "store/blob_store.h"

namespace pesc {
namespace {

class SqliteJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = reopen(); }
  std::unique_ptr<JobStore> reopen() {
    store_.reset();
    auto store = SqliteJobStore::open(dir_->path() / "pesc.sqlite");
    EXPECT_TRUE(store.ok()) << store.status();
    return *std::move(store);
  }
  absl::StatusOr<TempDirectory> dir_ = TempDirectory::create("pesc-store-test-");
  std::unique_ptr<JobStore> store_;
};

TEST_F(SqliteJobStoreTest, DatabaseFilesAreTheOwnersAlone) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(2), 1).ok());
  for (const char* name : {"pesc.sqlite", "pesc.sqlite-wal", "pesc.sqlite-shm"}) {
    const auto mode = std::filesystem::status(dir_->path() / name).permissions();
    EXPECT_EQ(mode, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write) << name;
  }
}

TEST_F(SqliteJobStoreTest, ACommittedJobIsSyncedWhenAskedAlsoBesideOtherCalls) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(2), 1).ok());
  ASSERT_TRUE(store_->wait_for_disk().ok());
  // A coordinator syncs without its lock while the next calls go on.
  std::thread syncing([&] {
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(store_->wait_for_disk().ok());
  });
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(store_->create_job("k" + std::to_string(i), spec_of(1), 2).ok());
  syncing.join();
  store_ = reopen();
  EXPECT_EQ(store_->jobs()->size(), 51u);
  EXPECT_TRUE(store_->wait_for_disk().ok()) << "the reopened store syncs its own log";
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

TEST_F(SqliteJobStoreTest, ADamagedPageIsFoundAtOpenNotWhenResultsAreRead) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(200), 1).ok());
  store_.reset();  // closing checkpoints the log into the file
  damage_pages(dir_->path() / "pesc.sqlite");
  auto reopened = SqliteJobStore::open(dir_->path() / "pesc.sqlite");
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kDataLoss) << reopened.status();
  EXPECT_NE(reopened.status().message().find("damaged"), std::string::npos) << reopened.status();
}

TEST_F(SqliteJobStoreTest, ABackupTakenWhileOpenHasTheSameJobsAndResults) {
  ASSERT_TRUE(store_->create_job("j1", spec_of(3), 42).ok());
  int64_t attempt = store_->start_attempt("j1", 1, "w1", 50)->id;
  ASSERT_TRUE(store_->finish_attempt(attempt, exited(0), 51)->has_value());
  const std::filesystem::path copy = dir_->path() / "copy.sqlite";
  ASSERT_TRUE(SqliteJobStore::back_up(dir_->path() / "pesc.sqlite", copy).ok());
  EXPECT_EQ(std::filesystem::status(copy).permissions(),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_FALSE(SqliteJobStore::back_up(dir_->path() / "pesc.sqlite", copy).ok()) << "never over an existing file";
  auto restored = SqliteJobStore::open(copy);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->job("j1")->progress.succeeded, 1);
  auto results = (*restored)->results_after("j1", 0, 10);
  ASSERT_EQ(results->size(), 1u);
  EXPECT_EQ(results->front().output.inline_bytes, "out 0");
}

// The ledger keeps a job's spec and a rank's result as the protocol's bytes,
// so that the state dirs of older builds, which stored those, still open.
TEST_F(SqliteJobStoreTest, SpecsAndResultsAreStoredAsTheProtocolsBytes) {
  JobSpec spec = spec_of(1);
  spec.options.name = "sweep";
  ASSERT_TRUE(store_->create_job("j1", spec, 42).ok());
  const int64_t attempt = store_->start_attempt("j1", 0, "w1", 50)->id;
  ASSERT_TRUE(store_->finish_attempt(attempt, exited(0), 51)->has_value());
  store_.reset();
  SQLite::Database db(dir_->path() / "pesc.sqlite", SQLite::OPEN_READWRITE);
  SQLite::Statement stored_spec(db, "SELECT spec FROM jobs WHERE id = 'j1'");
  ASSERT_TRUE(stored_spec.executeStep());
  v1::JobSpec proto_spec;
  ASSERT_TRUE(proto_spec.ParseFromString(stored_spec.getColumn(0).getString()));
  EXPECT_EQ(proto_spec.name(), "sweep");
  EXPECT_EQ(proto_spec.entry(), "run.sh");
  EXPECT_EQ(proto_spec.process_kind(), v1::PROCESS_KIND_FILE);

  // A result as an older build wrote it.
  v1::RankResult older;
  older.set_state(v1::RANK_STATE_SUCCEEDED);
  older.mutable_output_txt()->set_inline_data("written by an older build");
  older.set_start_unix_ms(50);
  older.set_end_unix_ms(51);
  SQLite::Statement rewrite(db, "UPDATE attempts SET result = ? WHERE id = ?");
  const std::string bytes = older.SerializeAsString();
  rewrite.bind(1, bytes.data(), static_cast<int>(bytes.size()));
  rewrite.bind(2, attempt);
  ASSERT_EQ(rewrite.exec(), 1);
  auto results = reopen()->results_after("j1", 0, 10);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 1u);
  EXPECT_EQ(results->front().output.inline_bytes, "written by an older build");
  EXPECT_EQ(results->front().result.status, RankStatus::kSucceeded);
}

// As root: the database on a small tmpfs that fills up.
TEST(SqliteJobStoreFullDiskTest, AFailedCommitRollsBackTheWholeBatchAndLaterCommitsReachTheDisk) {
  auto dir = TempDirectory::create("pesc-store-full-");
  testing::SmallTmpfs disk(dir->path() / "disk", "2m");
  if (!disk.mounted()) GTEST_SKIP() << "needs root to mount a tmpfs";
  const std::filesystem::path file = dir->path() / "disk" / "pesc.sqlite";
  auto store = *SqliteJobStore::open(file);
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
  EXPECT_EQ(store->job("j1")->progress.succeeded, 0) << "the whole batch is rolled back";
  EXPECT_EQ(store->job("j1")->progress.running, 2);

  disk.free_space();
  // The results come again, and this time they stay.
  ASSERT_TRUE(store->finish_attempt(first, exited(0), 4)->has_value());
  {
    JobStore::Batch batch(*store);
    ASSERT_TRUE(store->finish_attempt(second, exited(0), 4)->has_value());
    ASSERT_TRUE(batch.commit().ok());
  }
  store.reset();
  store = *SqliteJobStore::open(file);
  EXPECT_EQ(store->job("j1")->progress.succeeded, 2) << "what was committed after the failure is on disk";
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
