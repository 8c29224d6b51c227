#include "http/api.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "coordinator/farm_state.h"
#include "security/input_limits.h"

namespace pesc::http {
namespace {

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::string bearer_token_of(const httplib::Request& request) {
  const std::string header = request.get_header_value("Authorization");
  std::string_view value = trimmed(header);
  if (!value.starts_with("Bearer ")) return {};
  return std::string(trimmed(value.substr(7)));
}

}  // namespace

int http_status_of(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

void reply_json(httplib::Response& response, const nlohmann::json& body, int status) {
  response.status = status;
  response.set_header("Cache-Control", "no-store");
  response.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void reply_error(httplib::Response& response, const absl::Status& status) {
  reply_json(response, {{"error", std::string(status.message())}}, http_status_of(status));
}

absl::StatusOr<nlohmann::json> json_body(const httplib::Request& request) {
  nlohmann::json body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return absl::InvalidArgumentError("the request body must be a JSON object");
  }
  return body;
}

absl::StatusOr<int64_t> int_param(const httplib::Request& request, const std::string& name, int64_t fallback,
                                  int64_t min, int64_t max) {
  if (!request.has_param(name.c_str())) return fallback;
  int64_t value = 0;
  if (!absl::SimpleAtoi(request.get_param_value(name.c_str()), &value) || value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat("?", name, "= takes a whole number from ", min, " to ", max,
                                                   ", not \"", request.get_param_value(name.c_str()), "\""));
  }
  return value;
}

std::string cookie_of(const httplib::Request& request, const std::string& name) {
  const std::string header = request.get_header_value("Cookie");
  for (absl::string_view part : absl::StrSplit(header, ';')) {
    std::string_view cookie = trimmed(std::string_view(part.data(), part.size()));
    if (cookie.size() > name.size() && cookie.starts_with(name) && cookie[name.size()] == '=') {
      return std::string(cookie.substr(name.size() + 1));
    }
  }
  return "";
}

absl::StatusOr<Caller> Api::caller_of(const httplib::Request& request, Needs needs, std::optional<Session>* session,
                                      std::string* token) {
  std::string presented = bearer_token_of(request);
  if (presented.empty()) {
    if (std::string id = cookie_of(request, kSessionCookie); !id.empty()) {
      *session = sessions_.find(id);
      if (!*session) return absl::UnauthenticatedError("your session has ended: log in again with your token");
      presented = (*session)->token;
    }
  }
  if (!presented.empty()) {
    if (token != nullptr) *token = presented;
    return core_.access.authenticate_token(presented, needs);
  }
  return core_.access.authenticate_token("", needs);
}

absl::Status Api::check_job(const Caller& caller, const std::string& job_id) {
  if (absl::Status valid = check_job_id(job_id); !valid.ok()) return valid;
  // The admin may see every job, but only one that exists.
  absl::Status allowed = caller.is_admin() ? core_.state.job(job_id).status() : core_.access.check_job(caller, job_id);
  if (allowed.code() == absl::StatusCode::kPermissionDenied) {
    return absl::NotFoundError(absl::StrCat("no job ", job_id));
  }
  return allowed;
}

absl::StatusOr<std::string> Api::job_of(const Call& call) {
  std::string job_id = call.request.matches[1];
  if (absl::Status allowed = check_job(call.caller, job_id); !allowed.ok()) return allowed;
  return job_id;
}

void Api::add(const std::string& method, const std::string& pattern, Needs needs, Handler handler) {
  const bool changes = method != "GET";
  auto serve = [this, needs, changes, handler = std::move(handler)](const httplib::Request& request,
                                                                    httplib::Response& response) {
    std::optional<Session> session;
    std::string token;
    absl::StatusOr<Caller> caller = caller_of(request, needs, &session, &token);
    if (!caller.ok()) return reply_error(response, caller.status());
    // A cookie comes with every request the browser makes, a forged one's
    // too; only the page itself knows the CSRF token.
    if (changes && session && !same_secret(request.get_header_value(kCsrfHeader), session->csrf_token)) {
      return reply_error(response, absl::PermissionDeniedError(absl::StrCat(
                                       "this change lacks the CSRF token: send the csrf_token that login or "
                                       "/api/v1/me returned in the ", kCsrfHeader, " header")));
    }
    Call call{request, response, *caller, session ? &*session : nullptr, std::move(token)};
    if (absl::Status status = handler(call); !status.ok()) reply_error(response, status);
  };
  if (method == "GET") {
    server_.Get(pattern, serve);
  } else if (method == "POST") {
    server_.Post(pattern, serve);
  } else {
    server_.Delete(pattern, serve);
  }
}

void Api::get(const std::string& pattern, Needs needs, Handler handler) { add("GET", pattern, needs, std::move(handler)); }
void Api::post(const std::string& pattern, Needs needs, Handler handler) { add("POST", pattern, needs, std::move(handler)); }
void Api::del(const std::string& pattern, Needs needs, Handler handler) { add("DELETE", pattern, needs, std::move(handler)); }
void Api::open_get(const std::string& pattern, httplib::Server::Handler handler) { server_.Get(pattern, std::move(handler)); }
void Api::open_post(const std::string& pattern, httplib::Server::Handler handler) { server_.Post(pattern, std::move(handler)); }

}  // namespace pesc::http
