#include "pool/pool_store.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include "pool/pool_conversion.h"
#include "store/sqlite_guard.h"

namespace pesc {
namespace {

template <typename Fn>
auto guarded(const char* what, Fn&& fn) -> decltype(fn()) {
  return sqlite_guarded("pool store: cannot ", what, std::forward<Fn>(fn));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PoolStore>> PoolStore::open(const std::filesystem::path& database_file) {
  return guarded("open", [&]() -> absl::StatusOr<std::unique_ptr<PoolStore>> {
    auto db = std::make_unique<SQLite::Database>(database_file.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db->setBusyTimeout(5000);
    db->exec("CREATE TABLE IF NOT EXISTS pools(name TEXT PRIMARY KEY, spec BLOB NOT NULL) WITHOUT ROWID");
    return std::unique_ptr<PoolStore>(new PoolStore(std::move(db)));
  });
}

PoolStore::PoolStore(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}
PoolStore::~PoolStore() = default;

absl::StatusOr<std::vector<PoolSpec>> PoolStore::list() {
  return guarded("list pools", [&]() -> absl::StatusOr<std::vector<PoolSpec>> {
    std::vector<PoolSpec> pools;
    SQLite::Statement rows(*db_, "SELECT name, spec FROM pools ORDER BY name");
    while (rows.executeStep()) {
      v1::PoolSpec spec;
      const SQLite::Column blob = rows.getColumn(1);
      if (!spec.ParseFromArray(blob.getBlob(), blob.getBytes())) {
        return absl::DataLossError("pool store: the pool \"" + rows.getColumn(0).getString() + "\" cannot be read");
      }
      pools.push_back(from_proto(spec));
    }
    return pools;
  });
}

absl::Status PoolStore::put(const PoolSpec& spec) {
  return guarded("store a pool", [&]() -> absl::Status {
    const std::string bytes = to_proto(spec).SerializeAsString();
    SQLite::Statement insert(*db_, "INSERT OR REPLACE INTO pools(name, spec) VALUES(?, ?)");
    insert.bind(1, spec.name);
    insert.bind(2, bytes.data(), static_cast<int>(bytes.size()));
    insert.exec();
    return absl::OkStatus();
  });
}

absl::Status PoolStore::remove(const std::string& name) {
  return guarded("remove a pool", [&]() -> absl::Status {
    SQLite::Statement erase(*db_, "DELETE FROM pools WHERE name = ?");
    erase.bind(1, name);
    erase.exec();
    return absl::OkStatus();
  });
}

}  // namespace pesc
