#ifndef PESC_TRANSPORT_BLOB_CONVERSION_H_
#define PESC_TRANSPORT_BLOB_CONVERSION_H_

// Blobs, payloads and shared inputs (common/blob_id.h) onto the protocol
// and back, written once for the worker and the coordinator's ledger.
// Header only: the ledger links no transport.

#include "common/blob_id.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

inline BlobId from_proto(const v1::BlobRef& blob) { return BlobId{.sha256 = blob.sha256(), .size = blob.size()}; }

inline v1::BlobRef to_proto(const BlobId& blob) {
  v1::BlobRef proto;
  proto.set_sha256(blob.sha256);
  proto.set_size(blob.size);
  return proto;
}

inline Payload from_proto(const v1::Payload& payload) {
  if (payload.has_blob()) return Payload{.blob = from_proto(payload.blob())};
  return Payload{.inline_bytes = payload.inline_data()};
}

inline v1::Payload to_proto(const Payload& payload) {
  v1::Payload proto;
  if (payload.blob) {
    *proto.mutable_blob() = to_proto(*payload.blob);
  } else {
    proto.set_inline_data(payload.inline_bytes);
  }
  return proto;
}

inline SharedInput from_proto(const v1::SharedFile& file) {
  return SharedInput{.name = file.name(), .blob = from_proto(file.blob()), .url = file.url()};
}

inline v1::SharedFile to_proto(const SharedInput& shared) {
  v1::SharedFile file;
  file.set_name(shared.name);
  if (shared.url.empty()) {
    *file.mutable_blob() = to_proto(shared.blob);
  } else {
    file.set_url(shared.url);
  }
  return file;
}

}  // namespace pesc

#endif  // PESC_TRANSPORT_BLOB_CONVERSION_H_
