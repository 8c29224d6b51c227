#ifndef PESC_WORKER_BLOB_SOURCE_H_
#define PESC_WORKER_BLOB_SOURCE_H_

// Where a worker's ranks get the blobs their assignments name (the process,
// shared files, checkpoints) and leave what they make (outputs, checkpoints,
// a long output.txt). The worker agent hands the rank runner and the process
// cache the coordinator's; nothing below the agent holds a gRPC stub.

#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/files.h"
#include "worker/rank_task.h"

namespace pesc {

class BlobSource {
 public:
  virtual ~BlobSource() = default;
  // Stores a file's content unless the source has it already.
  virtual absl::StatusOr<BlobId> upload_file(const std::filesystem::path& file) = 0;
  // Writes a blob to `destination`, checking its hash and every write.
  virtual absl::Status download(const BlobId& blob, const std::filesystem::path& destination,
                                Durability durability = Durability::kVisible) = 0;
  // The bytes inline, or as a blob when they are too many for a message.
  virtual absl::StatusOr<Payload> make_payload(std::string bytes) = 0;
};

}  // namespace pesc

#endif  // PESC_WORKER_BLOB_SOURCE_H_
