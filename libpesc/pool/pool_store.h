#ifndef PESC_POOL_POOL_STORE_H_
#define PESC_POOL_POOL_STORE_H_

// The pools an admin added, kept in the coordinator's SQLite database so a
// restarted coordinator has them again, each as the protocol's PoolSpec in
// bytes (the format of every state dir so far).
//
// Thread-safety: not thread-safe; the pool manager serialises its calls.

#include <filesystem>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "pool/pool_types.h"

namespace SQLite {
class Database;
}

namespace pesc {

class PoolStore {
 public:
  static absl::StatusOr<std::unique_ptr<PoolStore>> open(const std::filesystem::path& database_file);
  ~PoolStore();

  absl::StatusOr<std::vector<PoolSpec>> list();
  // Adds or replaces the pool of that name.
  absl::Status put(const PoolSpec& spec);
  absl::Status remove(const std::string& name);

 private:
  explicit PoolStore(std::unique_ptr<SQLite::Database> db);
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace pesc

#endif  // PESC_POOL_POOL_STORE_H_
