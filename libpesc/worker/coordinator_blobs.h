#ifndef PESC_WORKER_COORDINATOR_BLOBS_H_
#define PESC_WORKER_COORDINATOR_BLOBS_H_

// The coordinator's blob store over a worker's channel: the BlobSource the
// worker agent gives its rank runner and process cache.

#include <memory>

#include "pesc/v1/pesc.grpc.pb.h"
#include "worker/blob_source.h"

namespace pesc {

class CoordinatorBlobs final : public BlobSource {
 public:
  explicit CoordinatorBlobs(const std::shared_ptr<grpc::Channel>& channel);
  absl::StatusOr<BlobId> upload_file(const std::filesystem::path& file) override;
  absl::Status download(const BlobId& blob, const std::filesystem::path& destination,
                        Durability durability) override;
  absl::StatusOr<Payload> make_payload(std::string bytes) override;

 private:
  std::unique_ptr<v1::Blobs::Stub> stub_;
};

}  // namespace pesc

#endif  // PESC_WORKER_COORDINATOR_BLOBS_H_
