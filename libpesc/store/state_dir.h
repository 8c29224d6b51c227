#ifndef PESC_STORE_STATE_DIR_H_
#define PESC_STORE_STATE_DIR_H_

// A coordinator's state dir: pesc.sqlite (jobs, results, the hashes of
// tokens), blobs/ (processes, inputs, outputs) and *.token files. It holds
// every job's parameters and results, so it is its owner's alone (0700,
// files 0600), and one coordinator at a time uses it.

#include <filesystem>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/files.h"
#include "ledger/job_store.h"

namespace pesc {

// An exclusive lock on the state dir (flock on its coordinator.lock), held
// while the object lives; the kernel drops it when the process dies.
class StateDirLock {
 public:
  // FailedPrecondition naming the holder's pid when another process holds it.
  static absl::StatusOr<std::unique_ptr<StateDirLock>> take(const std::filesystem::path& state_dir);
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;
  ~StateDirLock();

 private:
  explicit StateDirLock(int fd) : fd_(fd) {}
  int fd_;
};

std::filesystem::path state_database_file(const std::filesystem::path& state_dir);

// Creates the state dir, or takes an existing one of ours down to mode 0700.
absl::Status make_private_dir(const std::filesystem::path& dir);

// Opens the state dir's database, refusing one that is empty, unreadable or
// damaged while blobs or tokens show that a farm lived here: starting on it
// would silently drop every job. The message says how to restore a backup.
absl::StatusOr<std::unique_ptr<JobStore>> open_state_database(const std::filesystem::path& state_dir,
                                                              Durability durability = Durability::kSynced);

// Copies the state dir of a coordinator that may be running into `destination`
// (a new directory): the database with SQLite's online backup, then the
// blobs and token files. A coordinator started on `destination` (or on a
// state dir it is copied back to) has the same jobs and results.
absl::Status back_up_state_dir(const std::filesystem::path& state_dir, const std::filesystem::path& destination);

}  // namespace pesc

#endif  // PESC_STORE_STATE_DIR_H_
