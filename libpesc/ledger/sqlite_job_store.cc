#include "ledger/sqlite_job_store.h"

#include <SQLiteCpp/Backup.h>
#include <SQLiteCpp/SQLiteCpp.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "ledger/ledger_conversion.h"
#include "ledger/retry_rules.h"
#include "store/sqlite_guard.h"

namespace pesc {
namespace {

enum AttemptState : int {
  kAttemptRunning = 1,
  kAttemptAccepted = 2,
  kAttemptLost = 3,
  kAttemptCancelled = 4,
  kAttemptRetried = 5,  // failed, and the rank was given another attempt
};

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs(
  id TEXT PRIMARY KEY,
  user TEXT NOT NULL,
  spec BLOB NOT NULL,
  state INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  next_seq INTEGER NOT NULL DEFAULT 0,
  total INTEGER NOT NULL,
  pending INTEGER NOT NULL,
  running INTEGER NOT NULL DEFAULT 0,
  succeeded INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  cancelled INTEGER NOT NULL DEFAULT 0,
  failure TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS ranks(
  job_id TEXT NOT NULL,
  rank INTEGER NOT NULL,
  state INTEGER NOT NULL,
  attempt_id INTEGER NOT NULL DEFAULT 0,
  finish_seq INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  own_failures INTEGER NOT NULL DEFAULT 0,
  worker_failures INTEGER NOT NULL DEFAULT 0,
  checkpoint BLOB,
  PRIMARY KEY(job_id, rank)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ranks_pending ON ranks(job_id, state, rank);
CREATE INDEX IF NOT EXISTS ranks_finished ON ranks(job_id, finish_seq);
CREATE TABLE IF NOT EXISTS attempts(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL,
  rank INTEGER NOT NULL,
  worker_id TEXT NOT NULL,
  state INTEGER NOT NULL,
  started_ms INTEGER NOT NULL,
  result BLOB,
  rank_count INTEGER NOT NULL DEFAULT 1);
CREATE INDEX IF NOT EXISTS attempts_by_state ON attempts(state);
-- The accepted results of ranks a chunk ran (a one-rank attempt keeps its
-- own in attempts.result); apart from ranks, whose rows stay small.
CREATE TABLE IF NOT EXISTS chunk_results(
  job_id TEXT NOT NULL,
  rank INTEGER NOT NULL,
  result BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS chunk_results_by_rank ON chunk_results(job_id, rank);
DROP INDEX IF EXISTS attempts_by_job;
CREATE INDEX IF NOT EXISTS attempts_by_rank ON attempts(job_id, rank);
CREATE TABLE IF NOT EXISTS blob_refs(
  job_id TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  PRIMARY KEY(job_id, sha256)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blob_refs_by_blob ON blob_refs(sha256);
CREATE TABLE IF NOT EXISTS workers(
  id TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  slots INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  ranks_done INTEGER NOT NULL DEFAULT 0,
  credential TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS usage(
  user TEXT PRIMARY KEY,
  used_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS worker_pauses(
  worker_id TEXT NOT NULL,
  start_ms INTEGER NOT NULL,
  end_ms INTEGER,
  reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS worker_pauses_by_end ON worker_pauses(end_ms);
)sql";

}  // namespace

// Prepared statements, kept for reuse: preparing is a third of the
// coordinator's CPU per rank otherwise.
class StatementCache {
 public:
  explicit StatementCache(SQLite::Database& db) : db_(db) {}

  // A statement in use; reset when the use ends, so the next one starts clean.
  class Use {
   public:
    explicit Use(SQLite::Statement& statement) : statement_(statement) {}
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    ~Use() { statement_.tryReset(); }
    SQLite::Statement* operator->() { return &statement_; }
    SQLite::Statement& operator*() { return statement_; }

   private:
    SQLite::Statement& statement_;
  };

  Use operator()(const std::string& text) {
    std::unique_ptr<SQLite::Statement>& statement = statements_[text];
    if (!statement) statement = std::make_unique<SQLite::Statement>(db_, text);
    statement->clearBindings();
    return Use(*statement);
  }

 private:
  SQLite::Database& db_;
  std::unordered_map<std::string, std::unique_ptr<SQLite::Statement>> statements_;
};

namespace {

std::string serialize(const google::protobuf::MessageLite& message) {
  std::string bytes;
  message.SerializeToString(&bytes);
  return bytes;
}

// A transaction that nests (a savepoint), through cached statements; rolled
// back unless committed.
class Atomically {
 public:
  explicit Atomically(StatementCache& sql) : sql_(sql) { sql_("SAVEPOINT pesc")->exec(); }
  Atomically(const Atomically&) = delete;
  Atomically& operator=(const Atomically&) = delete;
  ~Atomically() {
    if (committed_) return;
    try {
      sql_("ROLLBACK TO pesc")->exec();
      sql_("RELEASE pesc")->exec();
    } catch (const std::exception&) {
      // The error that brought us here is already on its way up.
    }
  }
  void commit() {
    sql_("RELEASE pesc")->exec();
    committed_ = true;
  }

 private:
  StatementCache& sql_;
  bool committed_ = false;
};

// For the commits a user is answered on (a submit, a cancel, a delete):
// each waits for the disk (synchronous=FULL), so what the user was told
// outlives a power cut too. At ~1 ms a commit, too slow for every result.
// Inside an open transaction the setting cannot change; its commit decides.
class WaitForDisk {
 public:
  // Waits for nothing in a store opened kVisible.
  WaitForDisk(SQLite::Database& db, Durability durability)
      : db_(db), switched_(durability == Durability::kSynced && sqlite3_get_autocommit(db.getHandle()) != 0) {
    if (switched_) db_.exec("PRAGMA synchronous=FULL");
  }
  WaitForDisk(const WaitForDisk&) = delete;
  WaitForDisk& operator=(const WaitForDisk&) = delete;
  ~WaitForDisk() {
    if (!switched_) return;
    try {
      db_.exec("PRAGMA synchronous=NORMAL");
    } catch (const std::exception&) {
      // Commits then wait for the disk: slower, never less safe.
    }
  }

 private:
  SQLite::Database& db_;
  const bool switched_;
};

// States are stored as the protocol's numbers, as older state dirs hold them.
int stored(RankStatus status) { return static_cast<int>(to_proto(status)); }
int stored(JobState state) { return static_cast<int>(to_proto(state)); }
RankStatus rank_status_of(int number) { return from_proto(static_cast<v1::RankState>(number)); }

// A result as stored (attempts.result, chunk_results.result): the protocol's
// bytes, as older state dirs hold them.
std::string serialize(const RankRecord& result) { return serialize(to_proto(result)); }

const char* counter_column(RankStatus state) {
  switch (state) {
    case RankStatus::kPending: return "pending";
    case RankStatus::kRunning: return "running";
    case RankStatus::kSucceeded: return "succeeded";
    case RankStatus::kFailed: return "failed";
    case RankStatus::kCancelled: return "cancelled";
  }
  return nullptr;
}

// Moves `count` ranks of a job from one counter to another.
void move_counter(StatementCache& sql, const std::string& job_id, RankStatus from, RankStatus to,
                  int count) {
  auto update = sql(absl::StrCat("UPDATE jobs SET ", counter_column(from), " = ",
                                            counter_column(from), " - ?1, ", counter_column(to), " = ",
                                            counter_column(to), " + ?1 WHERE id = ?2"));
  update->bind(1, count);
  update->bind(2, job_id);
  update->exec();
}

// The rank's attempts still running besides `except` (its duplicates, or
// the attempt a duplicate copies).
std::vector<AttemptRecord> other_running_attempts(StatementCache& sql, const std::string& job_id, int rank,
                                                  int64_t except) {
  auto query = sql("SELECT id, worker_id, started_ms FROM attempts "
                   "WHERE state = ? AND job_id = ? AND rank = ? AND id != ? ORDER BY id");
  query->bind(1, static_cast<int>(kAttemptRunning));
  query->bind(2, job_id);
  query->bind(3, rank);
  query->bind(4, except);
  std::vector<AttemptRecord> others;
  while (query->executeStep()) {
    others.push_back({query->getColumn(0).getInt64(), job_id, rank, query->getColumn(1).getString(),
                      query->getColumn(2).getInt64()});
  }
  return others;
}

// Puts the ranks still running under a chunk's attempt (ranks first_rank
// .. first_rank + rank_count - 1) back to pending; returns how many.
int requeue_chunk_ranks(StatementCache& sql, const std::string& job_id, int64_t attempt_id, int first_rank,
                        int rank_count) {
  auto requeue = sql(
      "UPDATE ranks SET state = ?1, attempt_id = 0 "
      "WHERE job_id = ?2 AND rank >= ?5 AND rank < ?5 + ?6 AND attempt_id = ?3 AND state = ?4");
  requeue->bind(1, stored(RankStatus::kPending));
  requeue->bind(2, job_id);
  requeue->bind(3, attempt_id);
  requeue->bind(4, stored(RankStatus::kRunning));
  requeue->bind(5, first_rank);
  requeue->bind(6, rank_count);
  return requeue->exec();
}

void queue_for_retry(StatementCache& sql, const std::string& job_id, int rank, bool workers_charged) {
  auto again = sql(workers_charged ? "UPDATE ranks SET state = ?, attempt_id = 0, worker_failures = "
                               "worker_failures + 1 WHERE job_id = ? AND rank = ?"
                             : "UPDATE ranks SET state = ?, attempt_id = 0, own_failures = "
                               "own_failures + 1 WHERE job_id = ? AND rank = ?");
  again->bind(1, stored(RankStatus::kPending));
  again->bind(2, job_id);
  again->bind(3, rank);
  again->exec();
}

void set_attempt_state(StatementCache& sql, int64_t attempt_id, int state) {
  auto update = sql("UPDATE attempts SET state = ? WHERE id = ?");
  update->bind(1, state);
  update->bind(2, attempt_id);
  update->exec();
}

// The attempt the rank's result now hangs on.
void follow_attempt(StatementCache& sql, const std::string& job_id, int rank, int64_t attempt_id) {
  auto update = sql("UPDATE ranks SET attempt_id = ? WHERE job_id = ? AND rank = ?");
  update->bind(1, attempt_id);
  update->bind(2, job_id);
  update->bind(3, rank);
  update->exec();
}

JobRecord read_job(SQLite::Statement& row) {
  JobRecord job;
  job.id = row.getColumn(0).getString();
  v1::JobSpec spec;
  spec.ParseFromArray(row.getColumn(1).getBlob(), row.getColumn(1).getBytes());
  job.spec = from_proto(spec);
  job.state = from_proto(static_cast<v1::JobState>(row.getColumn(2).getInt()));
  job.created_unix_ms = row.getColumn(3).getInt64();
  job.finished_unix_ms = row.getColumn(4).getInt64();
  job.progress.total = row.getColumn(5).getInt();
  job.progress.pending = row.getColumn(6).getInt();
  job.progress.running = row.getColumn(7).getInt();
  job.progress.succeeded = row.getColumn(8).getInt();
  job.progress.failed = row.getColumn(9).getInt();
  job.progress.cancelled = row.getColumn(10).getInt();
  job.failure = row.getColumn(11).getString();
  return job;
}

constexpr const char* kJobColumns =
    "SELECT id, spec, state, created_ms, finished_ms, total, pending, running, succeeded, failed, cancelled, failure "
    "FROM jobs ";

// Notes that a job uses a blob, so deleting another job keeps it.
void reference_blob(StatementCache& sql, const std::string& job_id, const std::string& sha256) {
  if (sha256.empty()) return;
  auto insert = sql("INSERT OR IGNORE INTO blob_refs(job_id, sha256) VALUES(?, ?)");
  insert->bind(1, job_id);
  insert->bind(2, sha256);
  insert->exec();
}

// Ends a rank with its result's state and finish_seq, and keeps the blobs
// the result names for as long as the job.
void record_ended_rank(StatementCache& sql, const std::string& job_id, const RankRecord& ended) {
  auto rank = sql("UPDATE ranks SET state = ?, finish_seq = ? WHERE job_id = ? AND rank = ?");
  rank->bind(1, stored(ended.result.status));
  rank->bind(2, ended.finish_seq);
  rank->bind(3, job_id);
  rank->bind(4, ended.result.rank);
  rank->exec();
  if (ended.output.blob) reference_blob(sql, job_id, ended.output.blob->sha256);
  if (ended.files.blob) reference_blob(sql, job_id, ended.files.blob->sha256);
}

struct JobAfterRanks {
  int64_t next_seq = 0;   // the finish_seq of the last of them
  bool finished = false;  // they were its last ranks
};

// Counts running ranks of the job as ended: `succeeded` and `failed` ones
// take the job's next finish_seqs, `requeued` ones go back to pending. Closes
// the job when no rank is left pending or running. One statement, as it runs
// for every finished rank or chunk.
JobAfterRanks count_ended_ranks(StatementCache& sql, const std::string& job_id, int succeeded, int failed,
                                int requeued, int64_t now_unix_ms) {
  auto update = sql(
      "UPDATE jobs SET next_seq = next_seq + ?2 + ?3, pending = pending + ?4, running = running - ?2 - ?3 - ?4, "
      "succeeded = succeeded + ?2, failed = failed + ?3, "
      // SET reads the row as it was.
      "finished_ms = CASE WHEN state = ?5 AND pending + ?4 = 0 AND running - ?2 - ?3 - ?4 = 0 "
      "THEN ?6 ELSE finished_ms END, "
      "state = CASE WHEN state = ?5 AND pending + ?4 = 0 AND running - ?2 - ?3 - ?4 = 0 THEN ?7 ELSE state END "
      "WHERE id = ?1 RETURNING next_seq, state");
  update->bind(1, job_id);
  update->bind(2, succeeded);
  update->bind(3, failed);
  update->bind(4, requeued);
  update->bind(5, stored(JobState::kRunning));
  update->bind(6, now_unix_ms);
  update->bind(7, stored(JobState::kFinished));
  JobAfterRanks after;
  if (!update->executeStep()) return after;
  after.next_seq = update->getColumn(0).getInt64();
  // It ran these ranks until now, so it was not finished before.
  after.finished = update->getColumn(1).getInt() == stored(JobState::kFinished);
  update->tryExecuteStep();
  return after;
}

int max_attempts(StatementCache& sql, const std::string& job_id) {
  auto query = sql("SELECT spec FROM jobs WHERE id = ?");
  query->bind(1, job_id);
  if (!query->executeStep()) return 1;
  v1::JobSpec spec;
  spec.ParseFromArray(query->getColumn(0).getBlob(), query->getColumn(0).getBytes());
  return attempts_allowed(spec.max_attempts());
}

// Creates the file empty with mode 0600, or takes an existing one (and its
// -wal and -shm) down to 0600.
absl::Status keep_private(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || ::fchmod(fd, 0600) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    return absl::PermissionDeniedError(absl::StrCat("cannot open ", file.string(), ": ", std::strerror(error)));
  }
  ::close(fd);
  for (const char* suffix : {"-wal", "-shm"}) {
    std::error_code absent;
    std::filesystem::permissions(file.string() + suffix, std::filesystem::perms::owner_read |
                                                             std::filesystem::perms::owner_write, absent);
  }
  return absl::OkStatus();
}

// PRAGMA quick_check: every page readable and well formed. DataLoss, with
// SQLite's first findings, when not.
absl::Status check_integrity(SQLite::Database& db, const std::filesystem::path& file) {
  SQLite::Statement check(db, "PRAGMA quick_check(5)");
  std::vector<std::string> findings;
  while (check.executeStep()) {
    std::string finding = check.getColumn(0).getString();
    if (finding != "ok") findings.push_back(std::move(finding));
  }
  if (findings.empty()) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrCat("state database ", file.string(), " is damaged: ", absl::StrJoin(findings, "; ")));
}

}  // namespace

SqliteJobStore::SqliteJobStore(std::filesystem::path file, std::unique_ptr<SQLite::Database> db,
                               Durability durability)
    : file_(std::move(file)),
      db_(std::move(db)),
      durability_(durability),
      sql_(std::make_unique<StatementCache>(*db_)) {}
SqliteJobStore::~SqliteJobStore() {
  if (const int fd = wal_fd_.load(); fd >= 0) ::close(fd);
}

template <typename Fn>
auto SqliteJobStore::guarded(const char* what, Fn&& fn) -> decltype(fn()) {
  if (!batch_failure_.ok()) return batch_failure_;
  const auto started = std::chrono::steady_clock::now();
  struct Timer {
    LatencyHistogram& histogram;
    std::chrono::steady_clock::time_point started;
    ~Timer() { histogram.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()); }
  } timer{call_latency_, started};
  try {
    return fn();
  } catch (const std::exception& error) {
    absl::Status failure = sqlite_failure(absl::StrCat("state database ", file_.string(), ": cannot ", what), error);
    abandon_transaction(failure);
    return failure;
  }
}

void SqliteJobStore::abandon_transaction(const absl::Status& failure) {
  if (batches_open_ > 0) batch_failure_ = failure;
  // What the failed transaction counted is rolled back with it.
  tally_ = {};
  try {
    // A failed COMMIT (a full disk) may leave the transaction open: every
    // later "commit" would then land in it, and never on disk.
    if (sqlite3_get_autocommit(db_->getHandle()) == 0) db_->exec("ROLLBACK");
  } catch (const std::exception&) {
    // SQLite rolled back on its own meanwhile; nothing is left open.
  }
}

bool SqliteJobStore::begin_batch() {
  try {
    (*sql_)("SAVEPOINT pesc_batch")->exec();
  } catch (const std::exception&) {
    return false;
  }
  batches_open_ += 1;
  return true;
}

absl::Status SqliteJobStore::end_batch(bool keep) {
  absl::Status ended = guarded("commit", [&]() -> absl::Status {
    if (keep && batches_open_ == 1) write_tally();
    if (!keep) (*sql_)("ROLLBACK TO pesc_batch")->exec();
    (*sql_)("RELEASE pesc_batch")->exec();
    return absl::OkStatus();
  });
  batches_open_ -= 1;
  if (batches_open_ > 0) return ended;
  if (!ended.ok()) abandon_transaction(ended);
  return std::exchange(batch_failure_, absl::OkStatus());
}

void SqliteJobStore::write_tally() {
  Tally tally = std::exchange(tally_, {});
  for (const auto& [user, used_ms] : tally.used_ms) {
    auto usage = (*sql_)(
        "INSERT INTO usage(user, used_ms) VALUES(?1, ?2) "
        "ON CONFLICT(user) DO UPDATE SET used_ms = used_ms + ?2");
    usage->bind(1, user);
    usage->bind(2, used_ms);
    usage->exec();
  }
  for (const auto& [worker_id, done] : tally.ranks_done) {
    auto worker = (*sql_)("UPDATE workers SET ranks_done = ranks_done + ? WHERE id = ?");
    worker->bind(1, done);
    worker->bind(2, worker_id);
    worker->exec();
  }
}

absl::StatusOr<std::unique_ptr<JobStore>> SqliteJobStore::open(const std::filesystem::path& file,
                                                              Durability durability) {
  // It holds every job's parameters and results: the owner's alone. SQLite
  // gives the -wal and -shm files the database's mode.
  PESC_RETURN_IF_ERROR(keep_private(file));
  return sqlite_guarded("state database ", file.string(), [&]() -> absl::StatusOr<std::unique_ptr<JobStore>> {
    // The coordinator serialises every use under its own mutex, so SQLite's
    // own locking would be paid for nothing.
    auto db = std::make_unique<SQLite::Database>(file.string(),
                                                 SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX);
    db->setBusyTimeout(5000);
    PESC_RETURN_IF_ERROR(check_integrity(*db, file));
    db->exec("PRAGMA journal_mode=WAL");
    // WAL with NORMAL sync: a commit survives a killed coordinator. What a
    // user is answered on waits for the disk too (WaitForDisk); a power cut
    // may cost the last results acknowledged to workers, whose ranks then
    // run again.
    db->exec(durability == Durability::kSynced ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=OFF");
    // Fewer, larger checkpoints: each one syncs the disk.
    db->exec("PRAGMA wal_autocheckpoint=8000");
    db->exec("PRAGMA cache_size=-32000");
    db->exec("PRAGMA foreign_keys=OFF");
    // Savepoints' sub-journals in memory, not in temporary files.
    db->exec("PRAGMA temp_store=MEMORY");
    auto store = std::unique_ptr<SqliteJobStore>(new SqliteJobStore(file, std::move(db), durability));
    if (auto status = store->migrate(); !status.ok()) return status;
    return std::unique_ptr<JobStore>(std::move(store));
  });
}

absl::Status SqliteJobStore::back_up(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (std::error_code error; std::filesystem::exists(to, error)) {
    return absl::AlreadyExistsError(absl::StrCat(to.string(), " exists already; back up into a new file"));
  }
  PESC_RETURN_IF_ERROR(keep_private(to));
  return sqlite_guarded("back up ", from.string(), [&]() -> absl::Status {
    // Read-only and without the state dir's lock, beside the coordinator
    // that writes it; the backup API copies one consistent snapshot.
    SQLite::Database source(from.string(), SQLite::OPEN_READONLY);
    source.setBusyTimeout(5000);
    SQLite::Database copy(to.string(), SQLite::OPEN_READWRITE);
    SQLite::Backup backup(copy, source);
    // Every page in one step, again while the source is busy.
    while (backup.executeStep() != SQLITE_DONE) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return check_integrity(copy, to);
  });
}

absl::Status SqliteJobStore::migrate() {
  return guarded("create schema", [&]() -> absl::Status {
    // Columns added since the first release, for state dirs made before.
    auto add_column = [&](const char* table, const char* column, const char* definition) {
      SQLite::Statement has(*db_, absl::StrCat("SELECT 1 FROM pragma_table_info('", table, "') WHERE name = ?"));
      has.bind(1, column);
      if (!has.executeStep()) db_->exec(absl::StrCat("ALTER TABLE ", table, " ADD COLUMN ", column, " ", definition));
    };
    db_->exec(kSchema);
    add_column("attempts", "rank_count", "INTEGER NOT NULL DEFAULT 1");
    add_column("workers", "credential", "TEXT NOT NULL DEFAULT ''");
    add_column("jobs", "failure", "TEXT NOT NULL DEFAULT ''");
    return absl::OkStatus();
  });
}

absl::Status SqliteJobStore::create_job(const std::string& id, const JobSpec& spec, int64_t created_unix_ms) {
  return guarded("create job", [&]() -> absl::Status {
    Atomically transaction(*sql_);
    auto job = (*sql_)(
                          "INSERT INTO jobs(id, user, spec, state, created_ms, total, pending) "
                          "VALUES(?, ?, ?, ?, ?, ?, ?)");
    std::string spec_bytes = serialize(to_proto(spec));
    job->bind(1, id);
    job->bind(2, spec.user);
    job->bindNoCopy(3, spec_bytes.data(), static_cast<int>(spec_bytes.size()));
    job->bind(4, stored(JobState::kRunning));
    job->bind(5, created_unix_ms);
    job->bind(6, spec.repetitions);
    job->bind(7, spec.repetitions);
    job->exec();
    reference_blob(*sql_, id, spec.process.sha256);
    for (const SharedInput& shared : spec.shared) reference_blob(*sql_, id, shared.blob.sha256);
    auto rank = (*sql_)("INSERT INTO ranks(job_id, rank, state) VALUES(?, ?, ?)");
    rank->bind(1, id);
    rank->bind(3, stored(RankStatus::kPending));
    for (int r = 0; r < spec.repetitions; ++r) {
      rank->bind(2, r);
      rank->exec();
      rank->reset();
    }
    transaction.commit();
    return absl::OkStatus();
  });
}

absl::Status SqliteJobStore::wait_for_disk() {
  if (durability_ != Durability::kSynced) return absl::OkStatus();
  // SQLite keeps its log beside the database while a connection is open.
  const std::filesystem::path wal = file_.string() + "-wal";
  int fd = wal_fd_.load();
  if (fd < 0) {
    fd = ::open(wal.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return file_error("open", wal, errno);
    if (int none = -1; !wal_fd_.compare_exchange_strong(none, fd)) {
      ::close(fd);
      fd = none;
    }
  }
  if (::fdatasync(fd) != 0) return file_error("sync", wal, errno);
  return absl::OkStatus();
}

absl::StatusOr<JobRecord> SqliteJobStore::job(const std::string& id) {
  return guarded("read job", [&]() -> absl::StatusOr<JobRecord> {
    auto query = (*sql_)(absl::StrCat(kJobColumns, "WHERE id = ?"));
    query->bind(1, id);
    if (!query->executeStep()) {
      return absl::NotFoundError(absl::StrCat("no job \"", id, "\": `pesc jobs` lists the jobs there are"));
    }
    return read_job(*query);
  });
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::jobs() {
  return guarded("list jobs", [&]() -> absl::StatusOr<std::vector<JobRecord>> {
    auto query = (*sql_)(absl::StrCat(kJobColumns, "ORDER BY created_ms, id"));
    std::vector<JobRecord> all;
    while (query->executeStep()) all.push_back(read_job(*query));
    return all;
  });
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::running_jobs() {
  return guarded("list running jobs", [&]() -> absl::StatusOr<std::vector<JobRecord>> {
    auto query = (*sql_)(absl::StrCat(kJobColumns, "WHERE state = ? ORDER BY created_ms, id"));
    query->bind(1, stored(JobState::kRunning));
    std::vector<JobRecord> running;
    while (query->executeStep()) running.push_back(read_job(*query));
    return running;
  });
}

absl::StatusOr<std::vector<int>> SqliteJobStore::pending_ranks(const std::string& job_id, int limit) {
  return guarded("find pending ranks", [&]() -> absl::StatusOr<std::vector<int>> {
    auto query = (*sql_)("SELECT rank FROM ranks WHERE job_id = ? AND state = ? ORDER BY rank LIMIT ?");
    query->bind(1, job_id);
    query->bind(2, stored(RankStatus::kPending));
    query->bind(3, limit);
    std::vector<int> ranks;
    while (query->executeStep()) ranks.push_back(query->getColumn(0).getInt());
    return ranks;
  });
}

absl::StatusOr<std::vector<SqliteJobStore::StartedAttempt>> SqliteJobStore::start_attempts(const std::string& job_id,
                                                                             const std::vector<Placed>& placed,
                                                                             int64_t now_unix_ms) {
  return guarded("start attempts", [&]() -> absl::StatusOr<std::vector<StartedAttempt>> {
    Atomically transaction(*sql_);
    std::vector<StartedAttempt> started;
    for (const Placed& rank : placed) {
      auto attempt = add_attempt(job_id, rank.rank, rank.worker_id, now_unix_ms, RankStatus::kPending);
      if (attempt.ok()) started.push_back(*std::move(attempt));
    }
    if (!started.empty()) {
      move_counter(*sql_, job_id, RankStatus::kPending, RankStatus::kRunning, static_cast<int>(started.size()));
    }
    transaction.commit();
    return started;
  });
}

absl::StatusOr<SqliteJobStore::StartedAttempt> SqliteJobStore::start_duplicate(const std::string& job_id, int rank,
                                                                   const std::string& worker_id, int64_t now_unix_ms) {
  return guarded("start duplicate", [&]() -> absl::StatusOr<StartedAttempt> {
    Atomically transaction(*sql_);
    PESC_ASSIGN_OR_RETURN(StartedAttempt started,
                          add_attempt(job_id, rank, worker_id, now_unix_ms, RankStatus::kRunning));
    transaction.commit();
    return started;
  });
}

// Inserts a running attempt for a rank in state `from`; the rank runs with
// it as its current attempt unless it runs already (a duplicate).
absl::StatusOr<SqliteJobStore::StartedAttempt> SqliteJobStore::add_attempt(const std::string& job_id, int rank,
                                                               const std::string& worker_id, int64_t now_unix_ms,
                                                               RankStatus from) {
  auto insert = (*sql_)(
                           "INSERT INTO attempts(job_id, rank, worker_id, state, started_ms) "
                           "VALUES(?, ?, ?, ?, ?)");
  insert->bind(1, job_id);
  insert->bind(2, rank);
  insert->bind(3, worker_id);
  insert->bind(4, static_cast<int>(kAttemptRunning));
  insert->bind(5, now_unix_ms);
  insert->exec();
  int64_t attempt_id = db_->getLastInsertRowid();
  auto claim = (*sql_)(
                          "UPDATE ranks SET state = ?1, attempt_id = CASE WHEN ?5 = ?1 THEN attempt_id ELSE ?2 END, "
                          "attempts = attempts + 1 "
                          "WHERE job_id = ?3 AND rank = ?4 AND state = ?5 RETURNING checkpoint");
  claim->bind(1, stored(RankStatus::kRunning));
  claim->bind(2, attempt_id);
  claim->bind(3, job_id);
  claim->bind(4, rank);
  claim->bind(5, stored(from));
  if (!claim->executeStep()) {
    // Nothing of a refused start stays (start_attempts goes on with other ranks).
    auto orphan = (*sql_)("DELETE FROM attempts WHERE id = ?");
    orphan->bind(1, attempt_id);
    orphan->exec();
    return absl::FailedPreconditionError(absl::StrCat("rank ", rank, " of job ", job_id, " is not ",
                                                      from == RankStatus::kPending ? "pending" : "running"));
  }
  StartedAttempt started;
  started.id = attempt_id;
  started.rank = rank;
  started.worker_id = worker_id;
  if (!claim->getColumn(0).isNull()) {
    v1::BlobRef checkpoint;
    checkpoint.ParseFromArray(claim->getColumn(0).getBlob(), claim->getColumn(0).getBytes());
    if (!checkpoint.sha256().empty()) started.checkpoint = from_proto(checkpoint);
  }
  claim->tryExecuteStep();  // finish the statement before the next one
  return started;
}

absl::StatusOr<std::optional<SqliteJobStore::Accepted>> SqliteJobStore::finish_attempt(int64_t attempt_id,
                                                                          RankRecord ended,
                                                                          int64_t now_unix_ms) {
  return guarded("finish attempt", [&]() -> absl::StatusOr<std::optional<Accepted>> {
    Atomically transaction(*sql_);
    auto find = (*sql_)(
        "SELECT a.job_id, a.rank, a.worker_id, j.user, r.attempts, r.own_failures, r.worker_failures, "
        "r.attempt_id, EXISTS(SELECT 1 FROM attempts o WHERE o.job_id = a.job_id AND o.rank = a.rank "
        "AND o.state = ?2 AND o.id != a.id) "
        "FROM attempts a "
        "JOIN ranks r ON r.job_id = a.job_id AND r.rank = a.rank "
        "JOIN jobs j ON j.id = a.job_id "
        "WHERE a.id = ?1 AND a.state = ?2 AND r.state = ?3");
    find->bind(1, attempt_id);
    find->bind(2, static_cast<int>(kAttemptRunning));
    find->bind(3, stored(RankStatus::kRunning));
    if (!find->executeStep()) return std::optional<Accepted>();
    Accepted accepted;
    accepted.job_id = find->getColumn(0).getString();
    accepted.user = find->getColumn(3).getString();
    const int own_failures = find->getColumn(5).getInt();
    const int worker_failures = find->getColumn(6).getInt();
    const int64_t current_attempt = find->getColumn(7).getInt64();
    const bool has_others = find->getColumn(8).getInt() != 0;
    RankResult& result = ended.result;
    result.rank = find->getColumn(1).getInt();
    result.worker = find->getColumn(2).getString();
    result.attempt = attempt_id;
    result.attempts = find->getColumn(4).getInt();
    find->tryExecuteStep();  // done with the row
    if (result.status != RankStatus::kSucceeded) result.status = RankStatus::kFailed;

    const bool failed = result.status == RankStatus::kFailed;
    std::vector<AttemptRecord> others;
    if (has_others) others = other_running_attempts(*sql_, accepted.job_id, result.rank, attempt_id);
    if (failed && !others.empty()) {
      set_attempt_state(*sql_, attempt_id, kAttemptLost);
      if (current_attempt == attempt_id) follow_attempt(*sql_, accepted.job_id, result.rank, others.front().id);
      transaction.commit();
      return std::optional<Accepted>();
    }
    if (current_attempt != attempt_id) follow_attempt(*sql_, accepted.job_id, result.rank, attempt_id);
    for (const AttemptRecord& other : others) set_attempt_state(*sql_, other.id, kAttemptCancelled);
    accepted.superseded = std::move(others);
    accepted.requeued =
        failed && goes_again(result, own_failures, worker_failures, max_attempts(*sql_, accepted.job_id));
    if (ended.checkpoint) {
      auto checkpoint = (*sql_)("UPDATE ranks SET checkpoint = ? WHERE job_id = ? AND rank = ?");
      std::string checkpoint_bytes = serialize(to_proto(*ended.checkpoint));
      checkpoint->bind(1, checkpoint_bytes.data(), static_cast<int>(checkpoint_bytes.size()));
      checkpoint->bind(2, accepted.job_id);
      checkpoint->bind(3, result.rank);
      checkpoint->exec();
      reference_blob(*sql_, accepted.job_id, ended.checkpoint->sha256);
    }
    if (!accepted.requeued) {
      const bool succeeded = result.status == RankStatus::kSucceeded;
      JobAfterRanks job = count_ended_ranks(*sql_, accepted.job_id, succeeded ? 1 : 0, succeeded ? 0 : 1, 0,
                                            now_unix_ms);
      ended.finish_seq = job.next_seq;
      accepted.job_finished = job.finished;
    }

    std::string result_bytes = serialize(ended);
    auto attempt = (*sql_)("UPDATE attempts SET state = ?, result = ? WHERE id = ?");
    attempt->bind(1, static_cast<int>(accepted.requeued ? kAttemptRetried : kAttemptAccepted));
    attempt->bindNoCopy(2, result_bytes.data(), static_cast<int>(result_bytes.size()));
    attempt->bind(3, attempt_id);
    attempt->exec();
    if (accepted.requeued) {
      queue_for_retry(*sql_, accepted.job_id, result.rank, never_ran(result));
      move_counter(*sql_, accepted.job_id, RankStatus::kRunning, RankStatus::kPending, 1);
    } else {
      record_ended_rank(*sql_, accepted.job_id, ended);
      tally_.ranks_done[result.worker] += 1;
    }
    tally_.used_ms[accepted.user] += run_time_ms(result);
    if (batches_open_ == 0) write_tally();  // a batch writes it once, at its end
    transaction.commit();
    accepted.result = std::move(ended);
    return std::optional<Accepted>(std::move(accepted));
  });
}

absl::StatusOr<SqliteJobStore::StartedAttempt> SqliteJobStore::start_chunk(const std::string& job_id, int first_rank,
                                                                           int count, const std::string& worker_id,
                                                                           int64_t now_unix_ms) {
  return guarded("start chunk", [&]() -> absl::StatusOr<StartedAttempt> {
    Atomically transaction(*sql_);
    auto insert = (*sql_)(
        "INSERT INTO attempts(job_id, rank, worker_id, state, started_ms, rank_count) VALUES(?, ?, ?, ?, ?, ?)");
    insert->bind(1, job_id);
    insert->bind(2, first_rank);
    insert->bind(3, worker_id);
    insert->bind(4, static_cast<int>(kAttemptRunning));
    insert->bind(5, now_unix_ms);
    insert->bind(6, count);
    insert->exec();
    const int64_t attempt_id = db_->getLastInsertRowid();
    auto claim = (*sql_)(
        "UPDATE ranks SET state = ?1, attempt_id = ?2, attempts = attempts + 1 "
        "WHERE job_id = ?3 AND rank >= ?4 AND rank < ?4 + ?5 AND state = ?6");
    claim->bind(1, stored(RankStatus::kRunning));
    claim->bind(2, attempt_id);
    claim->bind(3, job_id);
    claim->bind(4, first_rank);
    claim->bind(5, count);
    claim->bind(6, stored(RankStatus::kPending));
    if (claim->exec() != count) {
      return absl::FailedPreconditionError(
          absl::StrCat("ranks ", first_rank, "..", first_rank + count - 1, " of job ", job_id, " are not all pending"));
    }
    move_counter(*sql_, job_id, RankStatus::kPending, RankStatus::kRunning, count);
    transaction.commit();
    if (auto widest = widest_chunk_.find(job_id); widest != widest_chunk_.end()) {
      widest->second = std::max(widest->second, count);
    }
    return StartedAttempt{.id = attempt_id, .rank = first_rank, .rank_count = count, .worker_id = worker_id};
  });
}

absl::StatusOr<std::optional<SqliteJobStore::ChunkAccepted>> SqliteJobStore::finish_chunk(int64_t attempt_id,
                                                                             std::vector<RankRecord> results,
                                                                             int64_t now_unix_ms) {
  return guarded("finish chunk", [&]() -> absl::StatusOr<std::optional<ChunkAccepted>> {
    Atomically transaction(*sql_);
    auto find = (*sql_)(
        "SELECT a.job_id, a.rank, a.rank_count, a.worker_id, j.user, j.next_seq FROM attempts a "
        "JOIN jobs j ON j.id = a.job_id WHERE a.id = ? AND a.state = ?");
    find->bind(1, attempt_id);
    find->bind(2, static_cast<int>(kAttemptRunning));
    if (!find->executeStep()) return std::optional<ChunkAccepted>();
    ChunkAccepted chunk;
    chunk.job_id = find->getColumn(0).getString();
    const int first_rank = find->getColumn(1).getInt();
    const int rank_count = find->getColumn(2).getInt();
    const std::string worker_id = find->getColumn(3).getString();
    chunk.user = find->getColumn(4).getString();
    int64_t finish_seq = find->getColumn(5).getInt64();
    find->tryExecuteStep();

    std::optional<int> max_tries;  // read when a rank fails
    int succeeded = 0;
    int failed = 0;
    auto rank_row = (*sql_)(
        "SELECT attempts, own_failures, worker_failures FROM ranks "
        "WHERE job_id = ? AND rank = ? AND attempt_id = ? AND state = ?");
    for (RankRecord& ended : results) {
      RankResult& result = ended.result;
      if (result.rank < first_rank || result.rank >= first_rank + rank_count) continue;
      rank_row->reset();
      rank_row->bind(1, chunk.job_id);
      rank_row->bind(2, result.rank);
      rank_row->bind(3, attempt_id);
      rank_row->bind(4, stored(RankStatus::kRunning));
      if (!rank_row->executeStep()) continue;
      const int tries = rank_row->getColumn(0).getInt();
      const int own_failures = rank_row->getColumn(1).getInt();
      const int worker_failures = rank_row->getColumn(2).getInt();
      rank_row->reset();
      if (result.status != RankStatus::kSucceeded) result.status = RankStatus::kFailed;
      tally_.used_ms[chunk.user] += run_time_ms(result);
      if (result.status == RankStatus::kFailed && !is_job_fault(result)) {
        if (!max_tries) max_tries = max_attempts(*sql_, chunk.job_id);
        if (goes_again(result, own_failures, worker_failures, *max_tries)) {
          queue_for_retry(*sql_, chunk.job_id, result.rank, never_ran(result));
          chunk.requeued += 1;
          continue;
        }
      }
      result.worker = worker_id;
      result.attempt = attempt_id;
      result.attempts = tries;
      ended.finish_seq = ++finish_seq;
      const std::string result_bytes = serialize(ended);
      record_ended_rank(*sql_, chunk.job_id, ended);
      auto keep = (*sql_)("INSERT OR REPLACE INTO chunk_results(job_id, rank, result) VALUES(?, ?, ?)");
      keep->bind(1, chunk.job_id);
      keep->bind(2, result.rank);
      keep->bindNoCopy(3, result_bytes.data(), static_cast<int>(result_bytes.size()));
      keep->exec();
      (result.status == RankStatus::kSucceeded ? succeeded : failed) += 1;
      chunk.results.push_back(std::move(ended));
    }
    // Ranks the worker did not report (it stopped short) go again.
    chunk.requeued += requeue_chunk_ranks(*sql_, chunk.job_id, attempt_id, first_rank, rank_count);

    chunk.job_finished =
        count_ended_ranks(*sql_, chunk.job_id, succeeded, failed, chunk.requeued, now_unix_ms).finished;
    set_attempt_state(*sql_, attempt_id, kAttemptAccepted);
    tally_.ranks_done[worker_id] += succeeded + failed;
    if (batches_open_ == 0) write_tally();  // a batch writes it once, at its end
    transaction.commit();
    return std::optional<ChunkAccepted>(std::move(chunk));
  });
}

absl::Status SqliteJobStore::save_checkpoint(int64_t attempt_id, const BlobId& checkpoint) {
  return guarded("save checkpoint", [&]() -> absl::Status {
    Atomically transaction(*sql_);
    std::string checkpoint_bytes = serialize(to_proto(checkpoint));
    auto save = (*sql_)(
        "UPDATE ranks SET checkpoint = ?1 WHERE attempt_id = ?2 AND state = ?3 AND "
        "(job_id, rank) = (SELECT job_id, rank FROM attempts WHERE id = ?2) RETURNING job_id");
    save->bind(1, checkpoint_bytes.data(), static_cast<int>(checkpoint_bytes.size()));
    save->bind(2, attempt_id);
    save->bind(3, stored(RankStatus::kRunning));
    if (save->executeStep()) {
      std::string job_id = save->getColumn(0).getString();
      save->tryExecuteStep();
      reference_blob(*sql_, job_id, checkpoint.sha256);
    }
    transaction.commit();
    return absl::OkStatus();
  });
}

absl::Status SqliteJobStore::requeue_attempts(const std::vector<int64_t>& attempt_ids) {
  return guarded("requeue attempts", [&]() -> absl::Status {
    Atomically transaction(*sql_);
    for (int64_t attempt_id : attempt_ids) {
      auto lose = (*sql_)(
          "UPDATE attempts SET state = ? WHERE id = ? AND state = ? RETURNING job_id, rank, rank_count");
      lose->bind(1, static_cast<int>(kAttemptLost));
      lose->bind(2, attempt_id);
      lose->bind(3, static_cast<int>(kAttemptRunning));
      if (!lose->executeStep()) continue;
      std::string job_id = lose->getColumn(0).getString();
      int rank = lose->getColumn(1).getInt();
      const int rank_count = lose->getColumn(2).getInt();
      lose->reset();
      if (rank_count > 1) {  // a chunk: its ranks not yet finished queue again
        const int requeued = requeue_chunk_ranks(*sql_, job_id, attempt_id, rank, rank_count);
        if (requeued > 0) move_counter(*sql_, job_id, RankStatus::kRunning, RankStatus::kPending, requeued);
        continue;
      }
      if (auto others = other_running_attempts(*sql_, job_id, rank, attempt_id); !others.empty()) {
        // A duplicate runs on: the rank follows it instead of queueing again.
        auto follow = (*sql_)("UPDATE ranks SET attempt_id = ? WHERE job_id = ? AND rank = ? AND attempt_id = ?");
        follow->bind(1, others.front().id);
        follow->bind(2, job_id);
        follow->bind(3, rank);
        follow->bind(4, attempt_id);
        follow->exec();
        continue;
      }
      auto requeue = (*sql_)(
                                "UPDATE ranks SET state = ?, attempt_id = 0 "
                                "WHERE job_id = ? AND rank = ? AND attempt_id = ? AND state = ?");
      requeue->bind(1, stored(RankStatus::kPending));
      requeue->bind(2, job_id);
      requeue->bind(3, rank);
      requeue->bind(4, attempt_id);
      requeue->bind(5, stored(RankStatus::kRunning));
      if (requeue->exec() == 1) move_counter(*sql_, job_id, RankStatus::kRunning, RankStatus::kPending, 1);
    }
    transaction.commit();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::string> SqliteJobStore::latest_worker(const std::string& job_id) {
  return guarded("find the job's worker", [&]() -> absl::StatusOr<std::string> {
    auto query = (*sql_)("SELECT worker_id FROM attempts WHERE job_id = ? AND state != ? ORDER BY id DESC LIMIT 1");
    query->bind(1, job_id);
    query->bind(2, static_cast<int>(kAttemptLost));
    return query->executeStep() ? query->getColumn(0).getString() : std::string();
  });
}

absl::StatusOr<std::vector<AttemptRecord>> SqliteJobStore::running_attempts(const std::string& job_id) {
  return guarded("list running attempts", [&]() -> absl::StatusOr<std::vector<AttemptRecord>> {
    auto query = (*sql_)(
        "SELECT id, job_id, rank, worker_id, started_ms, rank_count FROM attempts "
        "WHERE state = ?1 AND (?2 = '' OR job_id = ?2) ORDER BY id");
    query->bind(1, static_cast<int>(kAttemptRunning));
    query->bind(2, job_id);
    std::vector<AttemptRecord> running;
    while (query->executeStep()) {
      running.push_back({query->getColumn(0).getInt64(), query->getColumn(1).getString(), query->getColumn(2).getInt(),
                         query->getColumn(3).getString(), query->getColumn(4).getInt64(),
                         query->getColumn(5).getInt()});
    }
    return running;
  });
}

absl::StatusOr<std::vector<AttemptRecord>> SqliteJobStore::end_job(const std::string& job_id, JobState final_state,
                                                             const std::string& failure, int64_t now_unix_ms) {
  return guarded("end job", [&]() -> absl::StatusOr<std::vector<AttemptRecord>> {
    WaitForDisk durable(*db_, durability_);
    Atomically transaction(*sql_);
    std::vector<AttemptRecord> to_stop;
    auto unfinished = (*sql_)(
                                 "SELECT r.rank, r.state, r.attempt_id, a.worker_id FROM ranks r "
                                 "LEFT JOIN attempts a ON a.id = r.attempt_id "
                                 "WHERE r.job_id = ? AND r.state IN (?, ?) ORDER BY r.rank");
    unfinished->bind(1, job_id);
    unfinished->bind(2, stored(RankStatus::kPending));
    unfinished->bind(3, stored(RankStatus::kRunning));
    auto cancel_rank = (*sql_)("UPDATE ranks SET state = ?, finish_seq = ? WHERE job_id = ? AND rank = ?");
    // Numbered here and stored once: one UPDATE per rank of the job row made
    // cancelling 100 000 ranks take seconds.
    int64_t finish_seq = 0;
    {
      auto next = (*sql_)("SELECT next_seq FROM jobs WHERE id = ?");
      next->bind(1, job_id);
      if (next->executeStep()) finish_seq = next->getColumn(0).getInt64();
    }
    auto cancel_attempt = (*sql_)("UPDATE attempts SET state = ? WHERE id = ?");
    while (unfinished->executeStep()) {
      int rank = unfinished->getColumn(0).getInt();
      // A chunk's ranks share their attempt: stopped once.
      if (rank_status_of(unfinished->getColumn(1).getInt()) == RankStatus::kRunning &&
          (to_stop.empty() || to_stop.back().id != unfinished->getColumn(2).getInt64())) {
        int64_t attempt_id = unfinished->getColumn(2).getInt64();
        to_stop.push_back({attempt_id, job_id, rank, unfinished->getColumn(3).getString()});
        cancel_attempt->bind(1, static_cast<int>(kAttemptCancelled));
        cancel_attempt->bind(2, attempt_id);
        cancel_attempt->exec();
        cancel_attempt->reset();
      }
      cancel_rank->bind(1, stored(RankStatus::kCancelled));
      cancel_rank->bind(2, ++finish_seq);
      cancel_rank->bind(3, job_id);
      cancel_rank->bind(4, rank);
      cancel_rank->exec();
      cancel_rank->reset();
    }
    // Stragglers' duplicates still run beside the attempts stopped above.
    auto duplicates = (*sql_)("SELECT id, rank, worker_id FROM attempts WHERE state = ? AND job_id = ?");
    duplicates->bind(1, static_cast<int>(kAttemptRunning));
    duplicates->bind(2, job_id);
    std::vector<AttemptRecord> running_duplicates;
    while (duplicates->executeStep()) {
      running_duplicates.push_back({duplicates->getColumn(0).getInt64(), job_id, duplicates->getColumn(1).getInt(),
                                    duplicates->getColumn(2).getString()});
    }
    for (AttemptRecord& duplicate : running_duplicates) {
      set_attempt_state(*sql_, duplicate.id, kAttemptCancelled);
      to_stop.push_back(std::move(duplicate));
    }
    // A failed job may have failed with its last ranks, which finished it.
    auto close = (*sql_)(
        "UPDATE jobs SET state = ?1, failure = ?2, finished_ms = ?3, cancelled = cancelled + pending + running, "
        "pending = 0, running = 0, next_seq = ?4 WHERE id = ?5 AND (state = ?6 OR (?1 = ?7 AND state = ?8))");
    close->bind(1, stored(final_state));
    close->bind(2, failure);
    close->bind(3, now_unix_ms);
    close->bind(4, finish_seq);
    close->bind(5, job_id);
    close->bind(6, stored(JobState::kRunning));
    close->bind(7, stored(JobState::kFailed));
    close->bind(8, stored(JobState::kFinished));
    close->exec();
    transaction.commit();
    return to_stop;
  });
}

absl::StatusOr<std::vector<int>> SqliteJobStore::unsucceeded_ranks(const std::string& job_id) {
  return guarded("find ranks to retry", [&]() -> absl::StatusOr<std::vector<int>> {
    auto query = (*sql_)("SELECT rank FROM ranks WHERE job_id = ? AND state != ? ORDER BY rank");
    query->bind(1, job_id);
    query->bind(2, stored(RankStatus::kSucceeded));
    std::vector<int> ranks;
    while (query->executeStep()) ranks.push_back(query->getColumn(0).getInt());
    return ranks;
  });
}

absl::StatusOr<JobStore::RankRow> SqliteJobStore::rank_row(const std::string& job_id, int rank) {
  return guarded("read a rank", [&]() -> absl::StatusOr<RankRow> {
    auto query = (*sql_)("SELECT state, finish_seq FROM ranks WHERE job_id = ? AND rank = ?");
    query->bind(1, job_id);
    query->bind(2, rank);
    if (!query->executeStep()) return absl::NotFoundError(absl::StrCat("job ", job_id, " has no rank ", rank));
    return RankRow{.state = rank_status_of(query->getColumn(0).getInt()),
                   .finish_seq = query->getColumn(1).getInt64()};
  });
}

absl::Status SqliteJobStore::reopen_ranks(const std::string& job_id, const std::vector<int>& ranks) {
  return guarded("reopen ranks", [&]() -> absl::Status {
    WaitForDisk durable(*db_, durability_);
    Atomically transaction(*sql_);
    for (int rank : ranks) {
      auto find = (*sql_)("SELECT state, attempt_id FROM ranks WHERE job_id = ? AND rank = ?");
      find->bind(1, job_id);
      find->bind(2, rank);
      if (!find->executeStep()) continue;
      const RankStatus state = rank_status_of(find->getColumn(0).getInt());
      const int64_t attempt_id = find->getColumn(1).getInt64();
      find->tryExecuteStep();
      // The result it had stays with its attempt, as a retried one's does
      // (a chunk's attempt holds its other ranks' results: it stays).
      auto retired = (*sql_)("UPDATE attempts SET state = ? WHERE id = ? AND state = ? AND rank_count = 1");
      retired->bind(1, static_cast<int>(kAttemptRetried));
      retired->bind(2, attempt_id);
      retired->bind(3, static_cast<int>(kAttemptAccepted));
      retired->exec();
      auto chunk = (*sql_)("DELETE FROM chunk_results WHERE job_id = ? AND rank = ?");
      chunk->bind(1, job_id);
      chunk->bind(2, rank);
      chunk->exec();
      auto reopen = (*sql_)(
          "UPDATE ranks SET state = ?, attempt_id = 0, finish_seq = 0, own_failures = 0, worker_failures = 0 "
          "WHERE job_id = ? AND rank = ?");
      reopen->bind(1, stored(RankStatus::kPending));
      reopen->bind(2, job_id);
      reopen->bind(3, rank);
      reopen->exec();
      move_counter(*sql_, job_id, state, RankStatus::kPending, 1);
    }
    auto job = (*sql_)("UPDATE jobs SET state = ?, finished_ms = 0, failure = '' WHERE id = ?");
    job->bind(1, stored(JobState::kRunning));
    job->bind(2, job_id);
    job->exec();
    transaction.commit();
    return absl::OkStatus();
  });
}

absl::Status SqliteJobStore::keep_cancelled_output(int64_t attempt_id, RankRecord result) {
  return guarded("keep a cancelled rank's output", [&]() -> absl::Status {
    Atomically transaction(*sql_);
    auto find = (*sql_)(
        "SELECT a.job_id, a.rank, r.attempts, j.next_seq FROM attempts a "
        "JOIN ranks r ON r.job_id = a.job_id AND r.rank = a.rank JOIN jobs j ON j.id = a.job_id "
        "WHERE a.id = ?1 AND a.state = ?2 AND a.rank_count = 1 AND r.attempt_id = ?1 AND r.state = ?3");
    find->bind(1, attempt_id);
    find->bind(2, static_cast<int>(kAttemptCancelled));
    find->bind(3, stored(RankStatus::kCancelled));
    if (!find->executeStep()) return absl::OkStatus();
    const std::string job_id = find->getColumn(0).getString();
    result.result.rank = find->getColumn(1).getInt();
    result.result.attempts = find->getColumn(2).getInt();
    result.result.attempt = attempt_id;
    result.result.status = RankStatus::kCancelled;
    result.finish_seq = find->getColumn(3).getInt64() + 1;
    auto next = (*sql_)("UPDATE jobs SET next_seq = ? WHERE id = ?");
    next->bind(1, result.finish_seq);
    next->bind(2, job_id);
    next->exec();
    // Kept as the attempt's accepted result, which is where results are read from.
    const std::string bytes = serialize(result);
    auto attempt = (*sql_)("UPDATE attempts SET state = ?, result = ? WHERE id = ?");
    attempt->bind(1, static_cast<int>(kAttemptAccepted));
    attempt->bindNoCopy(2, bytes.data(), static_cast<int>(bytes.size()));
    attempt->bind(3, attempt_id);
    attempt->exec();
    record_ended_rank(*sql_, job_id, result);
    transaction.commit();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<std::string>> SqliteJobStore::delete_job(const std::string& job_id) {
  return guarded("delete job", [&]() -> absl::StatusOr<std::vector<std::string>> {
    WaitForDisk durable(*db_, durability_);
    Atomically transaction(*sql_);
    auto job = (*sql_)("DELETE FROM jobs WHERE id = ?");
    job->bind(1, job_id);
    if (job->exec() == 0) {
      return absl::NotFoundError(absl::StrCat("no job \"", job_id, "\": `pesc jobs` lists the jobs there are"));
    }
    for (const char* table : {"ranks", "attempts", "chunk_results"}) {
      auto rows = (*sql_)(absl::StrCat("DELETE FROM ", table, " WHERE job_id = ?"));
      rows->bind(1, job_id);
      rows->exec();
    }
    auto refs = (*sql_)("DELETE FROM blob_refs WHERE job_id = ? RETURNING sha256");
    refs->bind(1, job_id);
    std::vector<std::string> released;
    while (refs->executeStep()) released.push_back(refs->getColumn(0).getString());
    refs->reset();
    std::vector<std::string> unused;
    auto still_used = (*sql_)("SELECT 1 FROM blob_refs WHERE sha256 = ? LIMIT 1");
    for (const std::string& sha256 : released) {
      still_used->bind(1, sha256);
      if (!still_used->executeStep()) unused.push_back(sha256);
      still_used->reset();
    }
    transaction.commit();
    widest_chunk_.erase(job_id);
    return unused;
  });
}

namespace {

// A row that starts rank, state, finish_seq, accepted result (or NULL).
RankRecord rank_result_of(SQLite::Statement& row) {
  v1::RankResult kept;
  if (!row.getColumn(3).isNull()) kept.ParseFromArray(row.getColumn(3).getBlob(), row.getColumn(3).getBytes());
  RankRecord result = rank_record_of(kept);
  result.result.rank = row.getColumn(0).getInt();
  result.result.status = rank_status_of(row.getColumn(1).getInt());
  result.finish_seq = row.getColumn(2).getInt64();
  return result;
}

}  // namespace

absl::StatusOr<std::vector<RankRecord>> SqliteJobStore::results_after(const std::string& job_id, int64_t after_seq,
                                                                      int limit) {
  return guarded("read results", [&]() -> absl::StatusOr<std::vector<RankRecord>> {
    auto query = (*sql_)(
                            "SELECT r.rank, r.state, r.finish_seq, COALESCE(c.result, a.result) FROM ranks r "
                            "LEFT JOIN attempts a ON a.id = r.attempt_id AND a.state = ? "
                            "LEFT JOIN chunk_results c ON c.job_id = r.job_id AND c.rank = r.rank "
                            "WHERE r.job_id = ? AND r.finish_seq > ? ORDER BY r.finish_seq LIMIT ?");
    query->bind(1, static_cast<int>(kAttemptAccepted));
    query->bind(2, job_id);
    query->bind(3, after_seq);
    query->bind(4, limit);
    std::vector<RankRecord> results;
    while (query->executeStep()) results.push_back(rank_result_of(*query));
    // Most ranks took one attempt; only the others cost a look.
    auto others = (*sql_)(
        "SELECT worker_id FROM attempts WHERE job_id = ?1 AND rank > ?2 - ?4 AND rank <= ?2 AND rank + rank_count > ?2 "
        "AND id <> ?3 ORDER BY id");
    for (RankRecord& ended : results) {
      RankResult& result = ended.result;
      if (result.attempts <= 1) continue;
      others->bind(1, job_id);
      others->bind(2, result.rank);
      others->bind(3, result.attempt);
      others->bind(4, widest_chunk(job_id));
      while (others->executeStep()) result.other_attempt_workers.push_back(others->getColumn(0).getString());
      others->reset();
    }
    return results;
  });
}

int SqliteJobStore::widest_chunk(const std::string& job_id) {
  if (auto known = widest_chunk_.find(job_id); known != widest_chunk_.end()) return known->second;
  auto query = (*sql_)("SELECT COALESCE(MAX(rank_count), 1) FROM attempts WHERE job_id = ?");
  query->bind(1, job_id);
  const int widest = query->executeStep() ? query->getColumn(0).getInt() : 1;
  widest_chunk_[job_id] = widest;
  return widest;
}

absl::StatusOr<JobStore::RankPage> SqliteJobStore::ranks_page(const std::string& job_id,
                                                             std::optional<RankStatus> state, int64_t offset,
                                                             int limit) {
  return guarded("read ranks", [&]() -> absl::StatusOr<RankPage> {
    const bool any_state = !state;
    RankPage page;
    auto count = (*sql_)(any_state ? "SELECT COUNT(*) FROM ranks WHERE job_id = ?1"
                                   : "SELECT COUNT(*) FROM ranks WHERE job_id = ?1 AND state = ?2");
    count->bind(1, job_id);
    if (!any_state) count->bind(2, stored(*state));
    if (count->executeStep()) page.total = count->getColumn(0).getInt64();
    count->reset();
    // The page's ranks are picked from the index alone; only they are joined
    // with their attempts, however deep the offset.
    auto query = (*sql_)(absl::StrCat(
        "WITH page AS (SELECT rank FROM ranks WHERE job_id = ?1", any_state ? "" : " AND state = ?2",
        " ORDER BY rank LIMIT ?3 OFFSET ?4) "
        "SELECT r.rank, r.state, r.finish_seq, COALESCE(c.result, a.result), r.attempts, w.worker_id, w.started_ms "
        "FROM page JOIN ranks r ON r.job_id = ?1 AND r.rank = page.rank "
        "LEFT JOIN attempts a ON a.id = r.attempt_id AND a.state = ?5 "
        "LEFT JOIN chunk_results c ON c.job_id = r.job_id AND c.rank = r.rank "
        "LEFT JOIN attempts w ON w.id = r.attempt_id AND w.state = ?6 ORDER BY r.rank"));
    query->bind(1, job_id);
    if (!any_state) query->bind(2, stored(*state));
    query->bind(3, limit);
    query->bind(4, offset);
    query->bind(5, static_cast<int>(kAttemptAccepted));
    query->bind(6, static_cast<int>(kAttemptRunning));
    while (query->executeStep()) {
      RankRecord result = rank_result_of(*query);
      result.result.attempts = query->getColumn(4).getInt();
      if (!query->getColumn(5).isNull()) {
        result.result.worker = query->getColumn(5).getString();
        result.result.start = from_unix_ms(query->getColumn(6).getInt64());
      }
      page.ranks.push_back(std::move(result));
    }
    return page;
  });
}

absl::StatusOr<std::map<std::string, int64_t>> SqliteJobStore::usage_by_user() {
  return guarded("read usage", [&]() -> absl::StatusOr<std::map<std::string, int64_t>> {
    auto query = (*sql_)("SELECT user, used_ms FROM usage");
    std::map<std::string, int64_t> usage;
    while (query->executeStep()) usage[query->getColumn(0).getString()] = query->getColumn(1).getInt64();
    return usage;
  });
}

absl::Status SqliteJobStore::record_worker(const std::string& id, const std::string& host, int slots,
                                     const std::string& credential, int64_t now_unix_ms) {
  return guarded("record worker", [&]() -> absl::Status {
    auto upsert = (*sql_)(
        "INSERT INTO workers(id, host, slots, last_seen_ms, credential) VALUES(?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT(id) DO UPDATE SET host = ?2, slots = ?3, last_seen_ms = ?4, credential = ?5");
    upsert->bind(1, id);
    upsert->bind(2, host);
    upsert->bind(3, slots);
    upsert->bind(4, now_unix_ms);
    upsert->bind(5, credential);
    upsert->exec();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::map<std::string, std::string>> SqliteJobStore::worker_credentials() {
  return guarded("read worker credentials", [&]() -> absl::StatusOr<std::map<std::string, std::string>> {
    auto query = (*sql_)("SELECT id, credential FROM workers");
    std::map<std::string, std::string> credentials;
    while (query->executeStep()) credentials[query->getColumn(0).getString()] = query->getColumn(1).getString();
    return credentials;
  });
}

absl::StatusOr<std::vector<WorkerRecord>> SqliteJobStore::workers() {
  return guarded("list workers", [&]() -> absl::StatusOr<std::vector<WorkerRecord>> {
    auto query = (*sql_)("SELECT id, host, slots, last_seen_ms, ranks_done FROM workers ORDER BY id");
    std::vector<WorkerRecord> all;
    while (query->executeStep()) {
      all.push_back({.id = query->getColumn(0).getString(),
                     .host = query->getColumn(1).getString(),
                     .slots = query->getColumn(2).getInt(),
                     .last_seen_unix_ms = query->getColumn(3).getInt64(),
                     .ranks_done = query->getColumn(4).getInt64()});
    }
    return all;
  });
}

absl::Status SqliteJobStore::record_pause(const std::string& worker_id, const std::string& reason, int64_t now_unix_ms) {
  return guarded("record a worker's pause", [&]() -> absl::Status {
    Atomically transaction(*sql_);
    auto open = (*sql_)("SELECT reason FROM worker_pauses WHERE worker_id = ? AND end_ms IS NULL");
    open->bind(1, worker_id);
    const std::optional<std::string> open_reason =
        open->executeStep() ? std::optional(open->getColumn(0).getString()) : std::nullopt;
    if (open_reason.value_or("") == reason) return absl::OkStatus();
    if (open_reason) {
      auto close = (*sql_)("UPDATE worker_pauses SET end_ms = ? WHERE worker_id = ? AND end_ms IS NULL");
      close->bind(1, now_unix_ms);
      close->bind(2, worker_id);
      close->exec();
    }
    if (!reason.empty()) {
      auto start = (*sql_)("INSERT INTO worker_pauses(worker_id, start_ms, end_ms, reason) VALUES(?, ?, NULL, ?)");
      start->bind(1, worker_id);
      start->bind(2, now_unix_ms);
      start->bind(3, reason);
      start->exec();
    }
    transaction.commit();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<WorkerPause>> SqliteJobStore::pauses_between(int64_t from_ms, int64_t to_ms) {
  return guarded("read workers' pauses", [&]() -> absl::StatusOr<std::vector<WorkerPause>> {
    auto query = (*sql_)(
        "SELECT worker_id, start_ms, COALESCE(end_ms, 0), reason FROM worker_pauses "
        "WHERE start_ms < ? AND (end_ms IS NULL OR end_ms > ?) ORDER BY worker_id, start_ms");
    query->bind(1, to_ms);
    query->bind(2, from_ms);
    std::vector<WorkerPause> pauses;
    while (query->executeStep()) {
      pauses.push_back({.worker = query->getColumn(0).getString(),
                        .start = from_unix_ms(query->getColumn(1).getInt64()),
                        .end = from_unix_ms(query->getColumn(2).getInt64()),
                        .reason = query->getColumn(3).getString()});
    }
    return pauses;
  });
}

}  // namespace pesc
