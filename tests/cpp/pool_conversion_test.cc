// The coordinator's edge: a pool's spec as admins send it and the pool
// store keeps it, and its status as admins are told of it, every field kept.
#include "pool/pool_conversion.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <string>
#include <vector>

#include "common/files.h"
#include "gtest/gtest.h"
#include "pool/pool_store.h"
#include "proto_fields.h"

namespace pesc {

namespace {

v1::PoolSpec every_spec_field() {
  v1::PoolSpec spec;
  spec.set_name("cluster");
  spec.set_batch_system("pbs");
  spec.set_partition("debug");
  spec.set_time_limit_s(7200);
  spec.set_max_workers(20);
  spec.set_slots_per_worker(4);
  spec.set_idle_timeout_s(300);
  spec.add_submit_args("--account=lab42");
  spec.add_worker_args("--work-dir=/scratch");
  spec.set_batch_template("name = pbs\n");
  spec.set_batch_template_file("/etc/pesc/pbs.batch");
  return spec;
}

TEST(PoolConversionTest, ASpecKeepsEveryField) {
  const v1::PoolSpec proto = every_spec_field();
  ASSERT_EQ(unset_fields(proto), std::vector<std::string>{}) << "set the new fields above";
  expect_same(proto, to_proto(from_proto(proto)));

  const PoolSpec spec = from_proto(proto);
  EXPECT_EQ(spec.time_limit, std::chrono::hours(2));
  EXPECT_EQ(spec.idle_timeout, std::chrono::minutes(5));
  EXPECT_EQ(spec.submit_args, std::vector<std::string>{"--account=lab42"});
}

TEST(PoolConversionTest, TheStoreKeepsTheProtocolsBytesAsEveryStateDirHasThem) {
  auto dir = TempDirectory::create("pesc-pool-conversion-test-");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string database_file = (dir->path() / "state.db").string();
  {  // A pool as a coordinator of before the plain types stored it.
    SQLite::Database database(database_file, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    database.exec("CREATE TABLE pools(name TEXT PRIMARY KEY, spec BLOB NOT NULL) WITHOUT ROWID");
    const std::string bytes = every_spec_field().SerializeAsString();
    SQLite::Statement insert(database, "INSERT INTO pools(name, spec) VALUES('cluster', ?)");
    insert.bind(1, bytes.data(), static_cast<int>(bytes.size()));
    insert.exec();
  }
  auto store = PoolStore::open(database_file);
  ASSERT_TRUE(store.ok()) << store.status();
  auto pools = (*store)->list();
  ASSERT_TRUE(pools.ok()) << pools.status();
  ASSERT_EQ(pools->size(), 1u);
  expect_same(every_spec_field(), to_proto(pools->front()));

  PoolSpec other = pools->front();
  other.name = "other";
  ASSERT_TRUE((*store)->put(other).ok());
  SQLite::Database database(database_file, SQLite::OPEN_READONLY);
  SQLite::Statement row(database, "SELECT spec FROM pools WHERE name = 'other'");
  ASSERT_TRUE(row.executeStep());
  v1::PoolSpec stored;
  ASSERT_TRUE(stored.ParseFromArray(row.getColumn(0).getBlob(), row.getColumn(0).getBytes()));
  expect_same(to_proto(other), stored);
}

TEST(PoolConversionTest, AStatusIsThePoolStatusAdminsSee) {
  v1::PoolStatus expected;
  *expected.mutable_spec() = every_spec_field();
  expected.set_pilots_pending(3);
  expected.set_pilots_running(2);
  expected.set_pilots_submitted(9);
  expected.set_paused("paused after 3 failures of slurm in a row");
  expected.set_last_failure("sbatch: error: invalid partition specified: nosuch");
  expected.set_pending_reason("PENDING Resources");
  ASSERT_EQ(unset_fields(expected), std::vector<std::string>{}) << "set the new fields above";

  expect_same(expected, to_proto(PoolStatus{.spec = from_proto(every_spec_field()),
                                            .pilots_pending = 3,
                                            .pilots_running = 2,
                                            .pilots_submitted = 9,
                                            .paused = "paused after 3 failures of slurm in a row",
                                            .last_failure = "sbatch: error: invalid partition specified: nosuch",
                                            .pending_reason = "PENDING Resources"}));
}

TEST(PoolConversionTest, ASessionsOptionsMakeTheSpecOfPoolAdd) {
  PoolOptions options;
  options.partition = "gpu";
  options.worker_args = {"--gpus=all"};
  const PoolSpec spec = pool_spec_of("session", options);
  EXPECT_EQ(spec.name, "session");
  EXPECT_EQ(spec.batch_system, "slurm");
  EXPECT_EQ(spec.partition, "gpu");
  EXPECT_EQ(spec.time_limit, options.time_limit);
  EXPECT_EQ(spec.max_workers, options.max_workers);
  EXPECT_EQ(spec.slots_per_worker, options.slots_per_worker);
  EXPECT_EQ(spec.idle_timeout, options.idle_timeout);
  EXPECT_EQ(spec.worker_args, std::vector<std::string>{"--gpus=all"});
  EXPECT_TRUE(spec.batch_template.empty());
}

}  // namespace
}  // namespace pesc
