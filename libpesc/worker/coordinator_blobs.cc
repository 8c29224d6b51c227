#include "worker/coordinator_blobs.h"

#include <utility>

#include "transport/transport.h"
#include "worker/assignment_conversion.h"

namespace pesc {

CoordinatorBlobs::CoordinatorBlobs(const std::shared_ptr<grpc::Channel>& channel)
    : stub_(v1::Blobs::NewStub(channel)) {}

absl::StatusOr<v1::BlobRef> CoordinatorBlobs::upload_file(const std::filesystem::path& file) {
  return pesc::upload_file(*stub_, file);
}

absl::Status CoordinatorBlobs::download(const BlobId& blob, const std::filesystem::path& destination,
                                        Durability durability) {
  return download_blob(*stub_, blob_ref_of(blob), destination, durability);
}

absl::StatusOr<v1::Payload> CoordinatorBlobs::make_payload(std::string bytes) {
  return pesc::make_payload(*stub_, std::move(bytes));
}

}  // namespace pesc
