#include "http/http_server.h"

#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "http/api.h"
#include "http/event_stream.h"
#include "http/sessions.h"

namespace pesc::http {
namespace {

// Event streams each hold a thread while open; requests keep the rest.
constexpr size_t kThreads = 64;
constexpr int kMaxEventStreams = 48;
// Forms upload the process and shared files in the request itself; larger
// inputs go through `pesc run`, which streams them.
constexpr size_t kMaxRequestBytes = size_t{1} << 30;

absl::StatusOr<std::pair<std::string, int>> split_address(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--http takes HOST:PORT (port 0 picks a free one), not \"", address, "\""));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::pair{host, port};
}

absl::StatusOr<std::unique_ptr<httplib::Server>> make_server(const HttpOptions& options) {
  if (options.tls_cert.empty()) return std::make_unique<httplib::Server>();
  auto server = std::make_unique<httplib::SSLServer>(options.tls_cert.c_str(), options.tls_key.c_str());
  if (!server->is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot serve HTTPS with ", options.tls_cert.string(), " and ",
                                                   options.tls_key.string(), ": not a readable PEM certificate and key"));
  }
  return server;
}

void add_routes(Api& api, EventStreams& events) {
  add_session_routes(api);
  add_farm_routes(api);
  add_job_routes(api);
  add_rank_routes(api);
  add_admin_routes(api);
  add_metrics_routes(api);
  add_event_routes(api, events, kMaxEventStreams);
  add_asset_routes(api);
}

}  // namespace

absl::Status check_http_options(const HttpOptions& options) {
  auto address = split_address(options.listen);
  if (!address.ok()) return address.status();
  if (options.tls_cert.empty() && !is_loopback_host(address->first)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "will not serve the web dashboard on ", options.listen, " without TLS: session cookies and tokens would "
        "cross the network in the clear. Give the coordinator --tls-cert and --tls-key (it then serves HTTPS), "
        "or serve on 127.0.0.1 and reach it with `ssh -L 8080:127.0.0.1:PORT host`"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::start(CoordinatorCore core, const HttpOptions& options) {
  if (absl::Status checked = check_http_options(options); !checked.ok()) return checked;
  auto address = split_address(options.listen);
  if (!address.ok()) return address.status();
  const auto& [host, port] = *address;
  auto server = std::unique_ptr<HttpServer>(new HttpServer());
  auto made = make_server(options);
  if (!made.ok()) return made.status();
  server->server_ = *std::move(made);
  server->sessions_ = std::make_unique<Sessions>();
  server->events_ = std::make_unique<EventStreams>(core);
  httplib::Server& http = *server->server_;
  http.new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  http.set_payload_max_length(kMaxRequestBytes);
  http.set_exception_handler([](const httplib::Request&, httplib::Response& response, std::exception_ptr error) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& exception) {
      what = exception.what();
    } catch (...) {
    }
    std::cerr << "pesc-coordinator: http: a request failed: " << what << std::endl;
    reply_error(response, absl::InternalError(absl::StrCat("the coordinator failed on this request: ", what)));
  });
  auto api = std::make_shared<Api>(http, core, *server->sessions_, !options.tls_cert.empty());
  add_routes(*api, *server->events_);
  http.set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty()) return;
    // What cpp-httplib refused before any route saw the request.
    std::string error;
    switch (response.status) {
      case 404:
        error = absl::StrCat("no such page or API call: ", request.method, " ", request.path,
                             " (see /api/v1/ in the README)");
        break;
      case 400: error = "the request is malformed: its headers or body (a form's parts) cannot be read"; break;
      case 413:
        error = absl::StrCat("the request is larger than the ", kMaxRequestBytes >> 20,
                             " MiB a form may send; submit larger inputs with `pesc run`");
        break;
      default: error = absl::StrCat("HTTP ", response.status);
    }
    reply_json(response, {{"error", error}}, response.status);
  });
  const int bound = port == 0 ? http.bind_to_any_port(host) : (http.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve HTTP on ", options.listen, ": the address is in use or not an address of this host"));
  }
  const std::string shown_host = host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host;
  server->url_ = absl::StrCat(options.tls_cert.empty() ? "http" : "https", "://", shown_host, ":", bound);
  server->thread_ = std::thread([&http, api] { http.listen_after_bind(); });
  return server;
}

HttpServer::~HttpServer() {
  if (events_) events_->stop();
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace pesc::http
