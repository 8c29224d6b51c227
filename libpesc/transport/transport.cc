#include "transport/transport.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include <grpcpp/support/client_interceptor.h>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/sha256.h"
#include "transport/grpc_log.h"

namespace pesc {
namespace fs = std::filesystem;

absl::Status to_absl(const grpc::Status& status) {
  // gRPC and absl share their status codes, number for number.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

grpc::Status to_grpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status annotate(const absl::Status& status, std::string_view context) {
  if (status.ok()) return status;
  absl::Status annotated(status.code(), absl::StrCat(std::string(context), ": ", status.message()));
  // Payloads say more than the code (the errno of a full disk, say).
  status.ForEachPayload(
      [&](absl::string_view type, const absl::Cord& payload) { annotated.SetPayload(type, payload); });
  return annotated;
}

grpc::ChannelArguments channel_arguments() {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(kMaxMessageBytes);
  arguments.SetMaxSendMessageSize(kMaxMessageBytes);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(kKeepaliveInterval.count()));
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // A wait sends nothing for minutes; its pings must go on all the same.
  arguments.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Reconnect quickly after a coordinator restart.
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // A connection attempt whose packets vanish (a cut link) otherwise waits
  // out gRPC's 20 s minimum before the next try once the link is back.
  arguments.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);
  // A new client gets a connection of its own: from the process-wide pool it
  // could inherit one to a coordinator that has since died, and fail once.
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return arguments;
}

void accept_keepalive_pings(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Half the interval: timers fire a little early or late, and a ping that
  // comes too soon counts as a strike towards a GOAWAY.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             static_cast<int>(kKeepaliveInterval.count() / 2));
}

namespace {

// Adds the token to every call's metadata. An interceptor rather than call
// credentials, because gRPC sends call credentials only over TLS and a
// loopback coordinator needs the token just the same.
class TokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(const std::string& header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({kTokenMetadataKey, header_});
    }
    methods->Proceed();
  }

 private:
  const std::string& header_;
};

class TokenInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(const std::string& token) : header_(std::string(kTokenScheme) + token) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new TokenInterceptor(header_);
  }

 private:
  const std::string header_;  // outlives its interceptors: the channel owns this factory
};

}  // namespace

std::shared_ptr<grpc::Channel> open_channel(const std::string& address, const ChannelSecurity& security) {
  quiet_grpc_log();
  grpc::ChannelArguments arguments = channel_arguments();
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!security.tls_ca.empty()) {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = security.tls_ca;
    tls.pem_cert_chain = security.tls_cert;
    tls.pem_private_key = security.tls_key;
    credentials = grpc::SslCredentials(tls);
    if (!security.tls_server_name.empty()) arguments.SetSslTargetNameOverride(security.tls_server_name);
  }
  if (security.token.empty()) return grpc::CreateCustomChannel(address, credentials, arguments);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<TokenInterceptorFactory>(security.token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(address, credentials, arguments,
                                                                 std::move(interceptors));
}

void set_deadline(grpc::ClientContext& context, std::chrono::milliseconds timeout) {
  context.set_deadline(std::chrono::system_clock::now() + timeout);
}

absl::Status coordinator_unreachable(const std::string& address, const absl::Status& cause) {
  return absl::UnavailableError(absl::StrCat(
      "cannot reach the pesc coordinator at ", address, " (", cause.message(),
      "): start one with `pesc-coordinator --listen ", address,
      "`, or leave --coordinator and PESC_COORDINATOR unset to use the embedded local farm"));
}

namespace {

constexpr auto kBlobTimeout = std::chrono::minutes(30);

absl::StatusOr<bool> coordinator_has(v1::Blobs::Stub& blobs, const std::string& sha256) {
  grpc::ClientContext context;
  set_deadline(context, std::chrono::seconds(30));
  v1::StatBlobRequest request;
  request.set_sha256(sha256);
  v1::StatBlobResponse response;
  grpc::Status status = blobs.StatBlob(&context, request, &response);
  if (!status.ok()) return to_absl(status);
  return response.present();
}

// Streams chunks produced by `next_chunk` (which returns false at the end).
template <typename NextChunk>
absl::StatusOr<v1::BlobRef> stream_upload(v1::Blobs::Stub& blobs, const v1::BlobRef& ref, NextChunk next_chunk) {
  grpc::ClientContext context;
  set_deadline(context, kBlobTimeout);
  v1::BlobRef stored;
  auto writer = blobs.UploadBlob(&context, &stored);
  v1::BlobChunk chunk;
  *chunk.mutable_ref() = ref;
  bool first = true;
  std::string data;
  while (next_chunk(data) || first) {
    chunk.set_data(std::move(data));
    if (!writer->Write(chunk)) break;
    chunk.clear_ref();
    first = false;
    data.clear();
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) return to_absl(status);
  return stored;
}

}  // namespace

absl::StatusOr<v1::BlobRef> upload_file(v1::Blobs::Stub& blobs, const fs::path& file,
                                        absl::FunctionRef<bool(const std::string& sha256)> known) {
  auto sha256 = sha256_file_hex(file);
  if (!sha256.ok()) return sha256.status();
  std::error_code error;
  v1::BlobRef ref;
  ref.set_sha256(*sha256);
  ref.set_size(fs::file_size(file, error));
  if (known(ref.sha256())) return ref;
  auto present = coordinator_has(blobs, ref.sha256());
  if (!present.ok()) return present.status();
  if (*present) return ref;

  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", file.string()));
  return stream_upload(blobs, ref, [&](std::string& data) {
    data.resize(kBlobChunkBytes);
    in.read(data.data(), static_cast<std::streamsize>(data.size()));
    data.resize(static_cast<size_t>(in.gcount()));
    return !data.empty();
  });
}

absl::StatusOr<v1::BlobRef> upload_bytes(v1::Blobs::Stub& blobs, std::string_view bytes) {
  v1::BlobRef ref;
  ref.set_sha256(sha256_hex(bytes));
  ref.set_size(bytes.size());
  size_t offset = 0;
  return stream_upload(blobs, ref, [&](std::string& data) {
    size_t take = std::min(kBlobChunkBytes, bytes.size() - offset);
    data.assign(bytes.substr(offset, take));
    offset += take;
    return take > 0;
  });
}

namespace {

template <typename Sink>
absl::Status stream_download(v1::Blobs::Stub& blobs, const v1::BlobRef& ref, Sink sink) {
  grpc::ClientContext context;
  set_deadline(context, kBlobTimeout);
  v1::DownloadBlobRequest request;
  request.set_sha256(ref.sha256());
  auto reader = blobs.DownloadBlob(&context, request);
  Sha256 hash;
  v1::BlobChunk chunk;
  while (reader->Read(&chunk)) {
    hash.update(chunk.data());
    if (auto status = sink(chunk.data()); !status.ok()) {
      context.TryCancel();
      reader->Finish();
      return status;
    }
  }
  if (grpc::Status status = reader->Finish(); !status.ok()) return to_absl(status);
  if (std::string actual = hash.finish_hex(); actual != ref.sha256()) {
    return absl::DataLossError(absl::StrCat("blob ", ref.sha256(), " arrived as ", actual));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status download_blob(v1::Blobs::Stub& blobs, const v1::BlobRef& ref, const fs::path& destination,
                           Durability durability) {
  fs::path temporary = destination;
  temporary += ".part";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return file_error("write", temporary, errno);
  absl::Status status = stream_download(
      blobs, ref, [&](const std::string& data) { return write_all(fd, data, temporary); });
  if (status.ok() && durability == Durability::kSynced && ::fsync(fd) != 0) {
    status = file_error("write", temporary, errno);
  }
  if (absl::Status closed = close_file(fd, temporary); status.ok()) status = closed;
  if (status.ok() && ::rename(temporary.c_str(), destination.c_str()) != 0) {
    status = file_error("rename to", destination, errno);
  }
  if (!status.ok()) ::unlink(temporary.c_str());
  return status;
}

absl::StatusOr<std::string> download_blob_bytes(v1::Blobs::Stub& blobs, const v1::BlobRef& ref) {
  std::string bytes;
  absl::Status status = stream_download(blobs, ref, [&](const std::string& data) {
    bytes += data;
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return bytes;
}

absl::StatusOr<v1::Payload> make_payload(v1::Blobs::Stub& blobs, std::string bytes) {
  v1::Payload payload;
  if (bytes.size() <= kInlinePayloadBytes) {
    payload.set_inline_data(std::move(bytes));
    return payload;
  }
  auto ref = upload_bytes(blobs, bytes);
  if (!ref.ok()) return ref.status();
  *payload.mutable_blob() = *ref;
  return payload;
}

absl::StatusOr<std::string> read_payload(v1::Blobs::Stub& blobs, const v1::Payload& payload) {
  if (payload.has_blob()) return download_blob_bytes(blobs, payload.blob());
  return payload.inline_data();
}

}  // namespace pesc
