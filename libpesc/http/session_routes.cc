// Logging in and out of the dashboard, and who the caller is.
#include "absl/strings/str_cat.h"
#include "http/api.h"

namespace pesc::http {
namespace {

nlohmann::json who(const Caller& caller, const std::string& csrf_token) {
  return {{"user", caller.name}, {"admin", caller.is_admin()}, {"csrf_token", csrf_token}};
}

std::string session_cookie(const std::string& value, bool tls, bool expire) {
  return absl::StrCat(kSessionCookie, "=", value, "; Path=/; HttpOnly; SameSite=Strict", tls ? "; Secure" : "",
                      expire ? "; Max-Age=0" : "");
}

}  // namespace

void add_session_routes(Api& api) {
  api.open_post("/api/v1/login", [&api](const httplib::Request& request, httplib::Response& response) {
    auto body = json_body(request);
    if (!body.ok()) return reply_error(response, body.status());
    auto token = body->find("token");
    if (token == body->end() || !token->is_string() || token->get<std::string>().empty()) {
      return reply_error(response, absl::InvalidArgumentError("login takes {\"token\": \"your pesc token\"}"));
    }
    // Only people log in; a worker's join token opens no dashboard.
    auto caller = api.core().access.authenticate_token(token->get<std::string>(), Needs::kUser);
    if (!caller.ok()) return reply_error(response, caller.status());
    Session session = api.sessions().open(token->get<std::string>());
    response.set_header("Set-Cookie", session_cookie(session.id, api.tls(), false));
    reply_json(response, who(*caller, session.csrf_token));
  });
  api.post("/api/v1/logout", Needs::kAnyone, [&api](Call& call) {
    if (call.session != nullptr) api.sessions().close(call.session->id);
    call.response.set_header("Set-Cookie", session_cookie("", api.tls(), true));
    reply_json(call.response, {{"logged_out", true}});
    return absl::OkStatus();
  });
  api.get("/api/v1/me", Needs::kUser, [](Call& call) {
    reply_json(call.response, who(call.caller, call.session != nullptr ? call.session->csrf_token : ""));
    return absl::OkStatus();
  });
}

}  // namespace pesc::http
