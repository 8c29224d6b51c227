#include "worker/coordinator_blobs.h"

#include <utility>

#include "common/status_macros.h"
#include "transport/transport.h"
#include "worker/assignment_conversion.h"

namespace pesc {

CoordinatorBlobs::CoordinatorBlobs(const std::shared_ptr<grpc::Channel>& channel)
    : stub_(v1::Blobs::NewStub(channel)) {}

absl::StatusOr<BlobId> CoordinatorBlobs::upload_file(const std::filesystem::path& file) {
  PESC_ASSIGN_OR_RETURN(v1::BlobRef ref, pesc::upload_file(*stub_, file));
  return from_proto(ref);
}

absl::Status CoordinatorBlobs::download(const BlobId& blob, const std::filesystem::path& destination,
                                        Durability durability) {
  return download_blob(*stub_, to_proto(blob), destination, durability);
}

absl::StatusOr<Payload> CoordinatorBlobs::make_payload(std::string bytes) {
  PESC_ASSIGN_OR_RETURN(v1::Payload payload, pesc::make_payload(*stub_, std::move(bytes)));
  return from_proto(payload);
}

}  // namespace pesc
