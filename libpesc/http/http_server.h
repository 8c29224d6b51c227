#ifndef PESC_HTTP_HTTP_SERVER_H_
#define PESC_HTTP_HTTP_SERVER_H_

// The coordinator's web dashboard and REST API (/api/v1/..., /metrics, the
// pages at /), served by cpp-httplib on its own threads beside the gRPC
// server, over the same farm state and access rules. HTTPS with the
// coordinator's certificate when it has one; without TLS only on loopback.

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "coordinator/coordinator.h"

namespace httplib {
class Server;
}

namespace pesc::http {

struct HttpOptions {
  std::string listen;  // HOST:PORT; port 0 picks a free one
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
};

// Whether the server could start with these options (the address's form,
// TLS or loopback), before anything else starts.
absl::Status check_http_options(const HttpOptions& options);

class EventStreams;
class Sessions;

class HttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpServer>> start(CoordinatorCore core, const HttpOptions& options);
  ~HttpServer();  // stops serving, ends open event streams
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // http://HOST:PORT or https://HOST:PORT, the port actually bound.
  const std::string& url() const { return url_; }

 private:
  HttpServer() = default;

  std::unique_ptr<Sessions> sessions_;
  std::unique_ptr<EventStreams> events_;
  std::unique_ptr<httplib::Server> server_;
  std::string url_;
  std::thread thread_;
};

}  // namespace pesc::http

#endif  // PESC_HTTP_HTTP_SERVER_H_
