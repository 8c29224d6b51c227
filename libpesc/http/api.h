#ifndef PESC_HTTP_API_H_
#define PESC_HTTP_API_H_

// The REST API's edge: routes, who is calling (a session cookie or a Bearer
// token), CSRF on changes, JSON in and out, and absl::Status as a JSON
// error with its HTTP status. Handlers convert HTTP/JSON to the calls the
// gRPC services make (Access, FarmState) and back, and hold no rules of
// their own. The routes themselves live in *_routes.cc, one file a subject.

#include <functional>
#include <string>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/access.h"
#include "coordinator/coordinator.h"
#include "http/sessions.h"

namespace pesc::http {

inline constexpr const char* kSessionCookie = "pesc_session";
inline constexpr const char* kCsrfHeader = "X-CSRF-Token";

// One authenticated call, as a handler sees it.
struct Call {
  const httplib::Request& request;
  httplib::Response& response;
  const Caller& caller;
  // The browser session the call came with; null for a Bearer token.
  const Session* session = nullptr;
  // The token it came with (the session's or the Bearer one), for what
  // outlives the request and must check it again.
  std::string token;
};
using Handler = std::function<absl::Status(Call&)>;

class Api {
 public:
  Api(httplib::Server& server, CoordinatorCore core, Sessions& sessions, bool tls)
      : server_(server), core_(core), sessions_(sessions), tls_(tls) {}

  // GET and HEAD read; POST and DELETE change, and need the CSRF token with
  // a session cookie.
  void get(const std::string& pattern, Needs needs, Handler handler);
  void post(const std::string& pattern, Needs needs, Handler handler);
  void del(const std::string& pattern, Needs needs, Handler handler);
  // A route that needs no caller (login, the pages themselves).
  void open_get(const std::string& pattern, httplib::Server::Handler handler);
  void open_post(const std::string& pattern, httplib::Server::Handler handler);

  CoordinatorCore& core() { return core_; }
  Sessions& sessions() { return sessions_; }
  bool tls() const { return tls_; }

  // The caller of a request: its Bearer token, else its session cookie.
  absl::StatusOr<Caller> caller_of(const httplib::Request& request, Needs needs, std::optional<Session>* session,
                                   std::string* token = nullptr);
  // NotFound unless the caller may see the job: another user's job is not
  // theirs to know of.
  absl::Status check_job(const Caller& caller, const std::string& job_id);
  // The job id a route's pattern caught first, once check_job() allows it.
  absl::StatusOr<std::string> job_of(const Call& call);

 private:
  void add(const std::string& method, const std::string& pattern, Needs needs, Handler handler);

  httplib::Server& server_;
  CoordinatorCore core_;
  Sessions& sessions_;
  const bool tls_;
};

void reply_json(httplib::Response& response, const nlohmann::json& body, int status = 200);
void reply_error(httplib::Response& response, const absl::Status& status);
int http_status_of(const absl::Status& status);

// The body as a JSON object; InvalidArgument saying what is wrong otherwise.
absl::StatusOr<nlohmann::json> json_body(const httplib::Request& request);
// A whole-number query parameter in [min, max], `fallback` when absent.
absl::StatusOr<int64_t> int_param(const httplib::Request& request, const std::string& name, int64_t fallback,
                                  int64_t min, int64_t max);
// The value of one cookie of the request; empty when absent.
std::string cookie_of(const httplib::Request& request, const std::string& name);

// The routes, by subject.
void add_session_routes(Api& api);
void add_farm_routes(Api& api);
void add_job_routes(Api& api);
void add_rank_routes(Api& api);
void add_admin_routes(Api& api);
void add_metrics_routes(Api& api);
void add_asset_routes(Api& api);

}  // namespace pesc::http

#endif  // PESC_HTTP_API_H_
