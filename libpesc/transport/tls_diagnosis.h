#ifndef PESC_TRANSPORT_TLS_DIAGNOSIS_H_
#define PESC_TRANSPORT_TLS_DIAGNOSIS_H_

// Why a coordinator that is listening still refuses a client. gRPC reports
// a failed TLS handshake as UNAVAILABLE, like a coordinator that is not
// running, and its text ("Socket closed", "failed to connect to all
// addresses") does not say which side is wrong. One short probe of the
// address with OpenSSL tells a plaintext client from a TLS coordinator, a
// TLS client from a plaintext coordinator, a certificate from another CA,
// and a client certificate the coordinator does not accept.

#include <optional>
#include <string>

#include "transport/transport.h"

namespace pesc {

// What is wrong with the TLS settings `security` for the coordinator at
// `address`, in words a user can act on; nullopt when the probe finds
// nothing wrong (nothing listens, or the handshake works).
std::optional<std::string> diagnose_tls(const std::string& address, const ChannelSecurity& security);

// The status a client reports when it cannot talk to the coordinator:
// the TLS mistake when there is one, else coordinator_unreachable.
absl::Status explain_unreachable(const std::string& address, const ChannelSecurity& security,
                                 const absl::Status& cause);

}  // namespace pesc

#endif  // PESC_TRANSPORT_TLS_DIAGNOSIS_H_
