// What a client or worker sends the coordinator, as bytes off the wire: the
// request parses or not, and the coordinator's checks (libpesc/security/
// input_limits, the domain in a job) accept or refuse it without crashing.
// The first byte picks the message, the rest is its encoding.
#include <cstdint>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "executor/domain.h"
#include "pesc/v1/pesc.pb.h"
#include "security/input_limits.h"
#include "security/token_store.h"

// Parsing garbage makes protobuf log every invalid UTF-8 string; quiet.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      pesc::v1::SubmitJobRequest request;
      if (!request.ParseFromString(bytes)) return 0;
      if (pesc::check_job_spec(request.spec()).ok()) (void)pesc::parse_domain(request.spec().domain());
      break;
    }
    case 1: {
      pesc::v1::WorkerMessage message;
      if (!message.ParseFromString(bytes)) return 0;
      if (message.has_register_()) (void)pesc::check_registration(message.register_());
      break;
    }
    case 2: {
      pesc::v1::DownloadBlobRequest request;
      if (!request.ParseFromString(bytes)) return 0;
      (void)pesc::check_blob_id(request.sha256());
      break;
    }
    default:
      (void)pesc::check_job_id(bytes);
      (void)pesc::check_identity_name(bytes);
      break;
  }
  return 0;
}
