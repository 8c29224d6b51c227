#ifndef PESC_WORKER_PROCESS_CACHE_H_
#define PESC_WORKER_PROCESS_CACHE_H_

// A worker's copy of each process it has run, fetched once and unpacked
// once, from which every rank's app_dir is populated with hard links.
//
// Nothing enters it unchecked: a blob is kept once its bytes on disk hash
// right, and an unpacked process (processes/<key>) counts only with its
// manifest (processes/<key>.manifest: every file's size, written last). Each
// use checks the blob's size or the files against the manifest, and an entry
// that fails (a write lost to a full disk, a rank that truncated a file it
// shares through a hard link) is removed and fetched or unpacked again.

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "worker/blob_source.h"
#include "worker/rank_task.h"
#include "store/blob_store.h"

namespace pesc {

class ProcessCache {
 public:
  static absl::StatusOr<std::unique_ptr<ProcessCache>> open(const std::filesystem::path& root);

  // The directory holding the process of `job`, fetching and unpacking it
  // on first use. Thread-safe.
  absl::StatusOr<std::filesystem::path> materialize(const JobRun& job, BlobSource& blobs);

  // The local copy of a shared file, fetched on first use (from the
  // coordinator, or from its URL). Read-only. Thread-safe.
  absl::StatusOr<std::filesystem::path> shared_file(const SharedInput& shared, BlobSource& blobs);

  // Fills `app_dir` with hard links to the files of `process_dir` (copies
  // where linking is impossible).
  static absl::Status populate(const std::filesystem::path& process_dir, const std::filesystem::path& app_dir);

 private:
  ProcessCache(std::filesystem::path root, std::unique_ptr<BlobStore> blobs)
      : root_(std::move(root)), blobs_(std::move(blobs)) {}
  absl::Status fetch(const BlobId& blob, BlobSource& blobs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Unpacks (or copies) the process into `staging`.
  absl::Status stage(const JobRun& job, const std::filesystem::path& staging)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::filesystem::path root_;
  std::unique_ptr<BlobStore> blobs_;
  absl::Mutex mutex_;  // one fetch or unpack at a time keeps the cache simple
};

}  // namespace pesc

#endif  // PESC_WORKER_PROCESS_CACHE_H_
