#ifndef PESC_TRANSPORT_TRANSPORT_H_
#define PESC_TRANSPORT_TRANSPORT_H_

// What every gRPC peer of pesc shares: status conversion (done here and
// nowhere else), channels with pesc's limits, deadlines, and moving blobs in
// chunks.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/files.h"
#include "pesc/v1/pesc.grpc.pb.h"

namespace pesc {

inline constexpr size_t kBlobChunkBytes = 1 << 20;
// Outputs up to this size travel inside the result message.
inline constexpr size_t kInlinePayloadBytes = 256 * 1024;
inline constexpr int kMaxMessageBytes = 16 * 1024 * 1024;

absl::Status to_absl(const grpc::Status& status);
grpc::Status to_grpc(const absl::Status& status);

// Adds context ("while submitting the job: ...") keeping the code.
absl::Status annotate(const absl::Status& status, std::string_view context);

// How a client or worker proves who it is and checks whom it talks to.
// Everything empty: a plain channel with no token (loopback, tests).
struct ChannelSecurity {
  // Sent as "authorization: Bearer <token>" metadata on every call.
  std::string token;
  // PEM: the CA that signed the coordinator's certificate; set means TLS.
  std::string tls_ca;
  // PEM: this peer's certificate and key, for coordinators that ask for one.
  std::string tls_cert;
  std::string tls_key;
  // The name the coordinator's certificate must carry when it differs from
  // the host in the address.
  std::string tls_server_name;
};

// The metadata key a token travels under, and how it is written.
inline constexpr char kTokenMetadataKey[] = "authorization";
inline constexpr char kTokenScheme[] = "Bearer ";

// Clients and workers ping an idle connection this often, so that a dead
// coordinator or a cut link is noticed while they wait.
inline constexpr std::chrono::milliseconds kKeepaliveInterval{10000};

// A channel to "host:port" with pesc's message limits and keepalive.
std::shared_ptr<grpc::Channel> open_channel(const std::string& address, const ChannelSecurity& security = {});
grpc::ChannelArguments channel_arguments();
// The coordinator's side of keepalive: it accepts the pings its peers send
// every kKeepaliveInterval, with or without calls, instead of answering
// them with a GOAWAY ("too_many_pings") that breaks their waits.
void accept_keepalive_pings(grpc::ServerBuilder& builder);

// Sets a deadline `timeout` from now (gRPC 1.51 wants system_clock).
void set_deadline(grpc::ClientContext& context, std::chrono::milliseconds timeout);

// Unavailable, with the address and what to do about it.
absl::Status coordinator_unreachable(const std::string& address, const absl::Status& cause);

// Uploads a file unless the coordinator already has its content. Asks it
// first, unless `known(sha256)` says it confirmed holding that blob before
// (a caller that trusts this must cope with a blob gone since).
absl::StatusOr<v1::BlobRef> upload_file(
    v1::Blobs::Stub& blobs, const std::filesystem::path& file,
    absl::FunctionRef<bool(const std::string& sha256)> known = [](const std::string&) { return false; });
absl::StatusOr<v1::BlobRef> upload_bytes(v1::Blobs::Stub& blobs, std::string_view bytes);

// Downloads a blob to `destination`, checking its hash and every write.
absl::Status download_blob(v1::Blobs::Stub& blobs, const v1::BlobRef& ref, const std::filesystem::path& destination,
                           Durability durability = Durability::kVisible);
absl::StatusOr<std::string> download_blob_bytes(v1::Blobs::Stub& blobs, const v1::BlobRef& ref);

// Payload helpers: inline bytes or a blob, whichever the size asks for.
absl::StatusOr<v1::Payload> make_payload(v1::Blobs::Stub& blobs, std::string bytes);
absl::StatusOr<std::string> read_payload(v1::Blobs::Stub& blobs, const v1::Payload& payload);

}  // namespace pesc

#endif  // PESC_TRANSPORT_TRANSPORT_H_
