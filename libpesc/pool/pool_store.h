#ifndef PESC_POOL_POOL_STORE_H_
#define PESC_POOL_POOL_STORE_H_

// The pools an admin added, kept in the coordinator's SQLite database so a
// restarted coordinator has them again.
//
// Thread-safety: not thread-safe; the pool manager serialises its calls.

#include <filesystem>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "pesc/v1/admin.pb.h"

namespace SQLite {
class Database;
}

namespace pesc {

class PoolStore {
 public:
  static absl::StatusOr<std::unique_ptr<PoolStore>> open(const std::filesystem::path& database_file);
  ~PoolStore();

  absl::StatusOr<std::vector<v1::PoolSpec>> list();
  // Adds or replaces the pool of that name.
  absl::Status put(const v1::PoolSpec& spec);
  absl::Status remove(const std::string& name);

 private:
  explicit PoolStore(std::unique_ptr<SQLite::Database> db);
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace pesc

#endif  // PESC_POOL_POOL_STORE_H_
