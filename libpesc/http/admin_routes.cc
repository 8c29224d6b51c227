// Users, tokens and rooms: what `pesc user`, `pesc worker-token` and
// `pesc room` do, for the admin, through coordinator/administration.h.
#include <set>

#include "absl/strings/str_cat.h"
#include "coordinator/administration.h"
#include "coordinator/farm_state.h"
#include "http/api.h"

namespace pesc::http {
namespace {

using nlohmann::json;

absl::StatusOr<TokenStore*> tokens_of(Api& api) {
  if (api.core().tokens == nullptr) {
    return absl::FailedPreconditionError("this farm has no users or tokens: it authenticates no one");
  }
  return api.core().tokens;
}

json seconds_or_null(int64_t unix_ms) {
  return unix_ms == 0 ? json(nullptr) : json(static_cast<double>(unix_ms) / 1000.0);
}

absl::Status list_tokens(Api& api, Call& call, std::set<Role> roles) {
  auto tokens = tokens_of(api);
  if (!tokens.ok()) return tokens.status();
  auto records = (*tokens)->list();
  if (!records.ok()) return records.status();
  json list = json::array();
  for (const TokenRecord& record : *records) {
    if (!roles.contains(record.role)) continue;
    list.push_back({{"name", record.name},
                    {"role", to_string(record.role)},
                    {"created_at", seconds_or_null(record.created_unix_ms)},
                    {"revoked_at", seconds_or_null(record.revoked_unix_ms)}});
  }
  reply_json(call.response, {{"tokens", list}});
  return absl::OkStatus();
}

absl::Status issue(Api& api, Call& call, std::string name, Role role) {
  auto tokens = tokens_of(api);
  if (!tokens.ok()) return tokens.status();
  auto issued = issue_token(**tokens, std::move(name), role);
  if (!issued.ok()) return issued.status();
  reply_json(call.response, {{"name", issued->name}, {"token", issued->token}}, 201);
  return absl::OkStatus();
}

// The body's "name", required unless `optional`.
absl::StatusOr<std::string> name_in_body(const Call& call, bool optional) {
  if (call.request.body.empty() && optional) return "";
  auto body = json_body(call.request);
  if (!body.ok()) return body.status();
  auto name = body->find("name");
  if (name == body->end() && optional) return "";
  if (name == body->end() || !name->is_string()) return absl::InvalidArgumentError("this takes {\"name\": \"...\"}");
  return name->get<std::string>();
}

absl::Status revoke(Api& api, Call& call) {
  auto tokens = tokens_of(api);
  if (!tokens.ok()) return tokens.status();
  const std::string name = call.request.matches[1];
  auto revoked = revoke_tokens(**tokens, api.core().access, name);
  if (!revoked.ok()) return revoked.status();
  reply_json(call.response, {{"name", name}, {"revoked", *revoked}});
  return absl::OkStatus();
}

// Every room a worker serves or a restriction names, with who may use it
// (null: everyone).
absl::Status list_rooms(Api& api, Call& call) {
  auto tokens = tokens_of(api);
  if (!tokens.ok()) return tokens.status();
  auto workers = api.core().state.workers();
  if (!workers.ok()) return workers.status();
  std::set<std::string> rooms;
  for (const WorkerView& worker : *workers) rooms.insert(worker.rooms.begin(), worker.rooms.end());
  if (const std::string extra = call.request.get_param_value("room"); !extra.empty()) rooms.insert(extra);
  json list = json::array();
  for (const std::string& room : rooms) {
    std::optional<std::set<std::string>> users = (*tokens)->room_users(room);
    list.push_back({{"room", room}, {"users", users ? json(*users) : json(nullptr)}});
  }
  reply_json(call.response, {{"rooms", list}});
  return absl::OkStatus();
}

absl::Status restrict_room(Api& api, Call& call) {
  auto tokens = tokens_of(api);
  if (!tokens.ok()) return tokens.status();
  auto body = json_body(call.request);
  if (!body.ok()) return body.status();
  const json room = body->value("room", json());
  const json users = body->value("users", json::array());
  if (!room.is_string() || room.get<std::string>().empty() || !users.is_array()) {
    return absl::InvalidArgumentError(
        "this takes {\"room\": \"lab1\", \"users\": [\"alice\", ...]}; an empty list opens the room to everyone");
  }
  std::vector<std::string> names;
  for (const json& user : users) {
    if (!user.is_string()) return absl::InvalidArgumentError("\"users\" is a list of user names");
    names.push_back(user.get<std::string>());
  }
  if (absl::Status restricted = (*tokens)->restrict_room(room.get<std::string>(), names); !restricted.ok()) {
    return restricted;
  }
  reply_json(call.response, {{"room", room}, {"users", names.empty() ? json(nullptr) : json(names)}});
  return absl::OkStatus();
}

}  // namespace

void add_admin_routes(Api& api) {
  api.get("/api/v1/admin/users", Needs::kAdmin,
          [&api](Call& call) { return list_tokens(api, call, {Role::kUser, Role::kAdmin}); });
  api.post("/api/v1/admin/users", Needs::kAdmin, [&api](Call& call) -> absl::Status {
    auto name = name_in_body(call, /*optional=*/false);
    if (!name.ok()) return name.status();
    return issue(api, call, *name, Role::kUser);
  });
  api.post("/api/v1/admin/users/([^/]+)/tokens", Needs::kAdmin,
           [&api](Call& call) { return issue(api, call, call.request.matches[1], Role::kUser); });
  api.del("/api/v1/admin/users/([^/]+)", Needs::kAdmin, [&api](Call& call) { return revoke(api, call); });
  api.del("/api/v1/admin/tokens/([^/]+)", Needs::kAdmin, [&api](Call& call) { return revoke(api, call); });
  api.get("/api/v1/admin/worker-tokens", Needs::kAdmin,
          [&api](Call& call) { return list_tokens(api, call, {Role::kWorker}); });
  api.post("/api/v1/admin/worker-tokens", Needs::kAdmin, [&api](Call& call) -> absl::Status {
    auto name = name_in_body(call, /*optional=*/true);
    if (!name.ok()) return name.status();
    return issue(api, call, *name, Role::kWorker);
  });
  api.get("/api/v1/admin/rooms", Needs::kAdmin, [&api](Call& call) { return list_rooms(api, call); });
  api.post("/api/v1/admin/rooms", Needs::kAdmin, [&api](Call& call) { return restrict_room(api, call); });
}

}  // namespace pesc::http
