#ifndef PESC_STORE_BLOB_STORE_H_
#define PESC_STORE_BLOB_STORE_H_

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/sha256.h"

namespace pesc {

// Files named by the SHA-256 of their bytes, under one directory. Used by the
// coordinator for processes and outputs and by workers as their cache.
// Thread-safe: writers go through temporary files and an atomic rename.
class BlobStore {
 public:
  // Who may read the blobs: kOwnerOnly keeps the directory 0700 and its
  // files 0600 (the coordinator's, which hold every job's code and outputs).
  enum class Access { kAnyone, kOwnerOnly };
  static absl::StatusOr<std::unique_ptr<BlobStore>> open(const std::filesystem::path& root,
                                                         Access access = Access::kAnyone);

  bool contains(std::string_view sha256) const;
  std::filesystem::path path_of(std::string_view sha256) const;
  absl::StatusOr<uint64_t> size_of(std::string_view sha256) const;

  // Receives the bytes of one blob; commit() checks them against the name
  // they claim before the blob becomes visible.
  class Writer {
   public:
    ~Writer();
    absl::Status append(std::string_view bytes);
    // `expected_sha256` empty: accept whatever the bytes hash to.
    absl::StatusOr<std::string> commit(std::string_view expected_sha256 = {});

   private:
    friend class BlobStore;
    Writer(const BlobStore* store, std::filesystem::path temporary);
    const BlobStore* store_;
    std::filesystem::path temporary_;
    std::ofstream out_;
    Sha256 hash_;
    bool committed_ = false;
  };
  absl::StatusOr<std::unique_ptr<Writer>> begin_write() const;

  // Moves a file into the store once its bytes on disk, read back, hash to
  // `sha256`: a write that failed unnoticed never enters it. DataLoss when
  // they do not (the file is removed).
  absl::Status adopt(const std::filesystem::path& file, std::string_view sha256) const;

  // Copies a file in.
  absl::StatusOr<std::string> put_file(const std::filesystem::path& file) const;
  absl::StatusOr<std::string> put_bytes(std::string_view bytes) const;

 private:
  BlobStore(std::filesystem::path root, Access access) : root_(std::move(root)), access_(access) {}
  std::filesystem::path root_;
  Access access_;
};

bool is_sha256_hex(std::string_view text);

}  // namespace pesc

#endif  // PESC_STORE_BLOB_STORE_H_
