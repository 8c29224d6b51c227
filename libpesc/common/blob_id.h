#ifndef PESC_COMMON_BLOB_ID_H_
#define PESC_COMMON_BLOB_ID_H_

// Names of the files a job brings, as the coordinator and its workers both
// hold them: the coordinator's ledger keeps them with the job, a worker
// fetches them once per job.

#include <cstdint>
#include <optional>
#include <string>

namespace pesc {

// A blob the coordinator holds, named by the hex SHA-256 of its bytes.
struct BlobId {
  std::string sha256;
  uint64_t size = 0;

  bool operator==(const BlobId&) const = default;
};

// A read-only input every rank finds in its app_dir as `name`: the blob
// `blob` when `url` is empty, else what `url` serves.
struct SharedInput {
  std::string name;
  BlobId blob;
  std::string url;

  bool operator==(const SharedInput&) const = default;
};

// Bytes that travel inline when small and as the blob `blob` when large.
struct Payload {
  std::string inline_bytes;
  std::optional<BlobId> blob;

  bool operator==(const Payload&) const = default;
};

}  // namespace pesc

#endif  // PESC_COMMON_BLOB_ID_H_
